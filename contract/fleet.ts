/**
 * The input of `migrateFleet` (many migrations as child workflows) and what clients send a running
 * fleet (`pause`, `resume`, `cancel`, `approveWave`): zod schemas whose problems name the field path,
 * bounded in shape and size. The migrations themselves are checked with the migration's own schema
 * (contract/input.ts), each problem prefixed with the entry's path (`migrations.3.source.url`).
 *
 * Pure module (bundled into workflow code).
 */
import { z } from 'zod';
import { ApproverName, checkMigrationInput, duration, SecretRef } from './input';
import { clip, MAX_PROBLEM_CHARS, MAX_REASON_CHARS } from './messages';
import { checkWith, type Checked, type InputProblem } from './problems';

/** Entries one fleet input may list (a larger fleet is several fleets, or a discovery). */
export const MAX_FLEET_ENTRIES = 5_000;
/** Children running at once, at most. */
export const MAX_FLEET_CONCURRENCY = 100;
export const MAX_WAVES = 20;

const Name = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,39}$/, 'lowercase letters, digits and dashes, at most 40 characters')
  .describe('Lowercase letters, digits and dashes, at most 40 characters.');

export const FleetWave = z
  .object({
    name: Name.describe('Name of the wave (shown in status and report; `approveWave` names it).'),
    size: z
      .number()
      .int()
      .min(1)
      .max(MAX_FLEET_ENTRIES)
      .optional()
      .describe('How many migrations this wave takes (the smallest databases not yet taken). Absent: all that are left.'),
    maxFailures: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe(
        'The wave passes (and the next may start) only if at most this many of its migrations failed or ran over budget. Absent: the fleet failure budget alone decides.',
      ),
  })
  .strict();
export type FleetWave = z.infer<typeof FleetWave>;

/** One migration of an explicit list: a migrateDatabase input, and optionally the database's size (ordering). */
export const FleetEntry = z
  .object({
    input: z.unknown().describe('A migrateDatabase input (checked with its own schema).'),
    sizeBytes: z.number().int().min(0).optional().describe('Size of the source database: waves take the smallest first.'),
  })
  .strict();

/**
 * Discovery through the Heroku Platform API: every app of a team (or the apps listed), each app's
 * heroku-postgresql add-on (plan, attachments), optionally the database's size measured through the
 * template's source reference. Each found database becomes a migration built from `template`.
 */
export const HerokuDiscovery = z
  .object({
    type: z.literal('heroku'),
    team: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,99}$/, 'must be a Heroku team name')
      .optional()
      .describe('Heroku team whose apps are migrated.'),
    apps: z
      .array(z.string().regex(/^[a-z][a-z0-9-]{1,29}$/, 'must be a Heroku app name'))
      .max(MAX_FLEET_ENTRIES)
      .optional()
      .describe('These apps (alone, or the team apps restricted to them).'),
    token: SecretRef.describe('Reference to a Heroku Platform API token, e.g. {"env":"HEROKU_API_KEY"}.'),
    apiUrl: z
      .url({ protocol: /^https?$/ })
      .default('https://api.heroku.com')
      .describe('Platform API base URL.'),
    measureSize: z
      .boolean()
      .default(true)
      .describe("Measure each database's size (pg_database_size through the template's source reference) to order the waves."),
  })
  .strict()
  .superRefine((d, ctx) => {
    if (!d.team && !d.apps) ctx.addIssue({ code: 'custom', message: 'give a team, a list of apps, or both', path: ['team'] });
  });
export type HerokuDiscovery = z.infer<typeof HerokuDiscovery>;

/** Placeholders of a discovery template, replaced in every string of it. */
export const TEMPLATE_PLACEHOLDERS = {
  '{app}': 'the app name (my-app)',
  '{APP}': 'the app name as an environment variable part (MY_APP)',
  '{addon}': 'the add-on name (postgresql-curved-12345)',
  '{attachment}': 'the attachment name the app reads (DATABASE)',
} as const;

export const FleetInput = z
  .object({
    fleetId: Name.describe('Name of the fleet: the FleetId search attribute of every migration it starts.'),
    migrations: z.array(FleetEntry).max(MAX_FLEET_ENTRIES).optional().describe('The migrations, each a migrateDatabase input.'),
    discovery: HerokuDiscovery.optional().describe('Or: find the databases through the Heroku Platform API.'),
    template: z
      .record(z.string(), z.unknown())
      .optional()
      .describe(
        `With discovery: the migrateDatabase input of each database, with placeholders ${Object.keys(TEMPLATE_PLACEHOLDERS).join(', ')} in its strings (references only, never secrets).`,
      ),
    concurrency: z.number().int().min(1).max(MAX_FLEET_CONCURRENCY).default(4).describe('Migrations running at once, at most.'),
    waves: z
      .array(FleetWave)
      .min(1)
      .max(MAX_WAVES)
      .default([{ name: 'canary', size: 1, maxFailures: 0 }, { name: 'rest' }])
      .describe('Waves in order, smallest databases first; a wave must pass before the next starts.'),
    order: z
      .enum(['smallest-first', 'as-given'])
      .default('smallest-first')
      .describe('smallest-first: by size where known (a database of unknown size counts as 0, keeping its place).'),
    failureBudget: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('How many migrations may fail (or run over the downtime budget); once more have, no new migration starts.'),
    downtimeBudget: duration('24h')
      .optional()
      .describe(
        "A completed migration whose write-freeze window is longer counts against the failure budget (default: each input's own downtimeBudget).",
      ),
    approval: z
      .enum(['per-wave', 'child-gates', 'automatic'])
      .default('per-wave')
      .describe(
        "per-wave: each wave waits for the `approveWave` Update, whose approver then approves the wave's gates; child-gates: each migration waits for its own approvals; automatic: the fleet approves every gate (rehearsed fleets, tests, benchmarks).",
      ),
    startsPerRun: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(200)
      .describe('Migrations one workflow run starts before it continues as new (keeps history bounded for fleets of thousands).'),
    reportDir: z.string().min(1).max(1024).optional().describe('Directory of the fleet report (default .stack/fleets/<fleetId>).'),
  })
  .strict()
  .superRefine((f, ctx) => {
    if (!!f.migrations === !!f.discovery)
      ctx.addIssue({
        code: 'custom',
        path: ['migrations'],
        message: 'give either migrations or discovery (with template), not both or neither',
      });
    if (f.discovery && !f.template) ctx.addIssue({ code: 'custom', path: ['template'], message: 'required with discovery' });
    if (f.migrations && f.template) ctx.addIssue({ code: 'custom', path: ['template'], message: 'only with discovery' });
    const names = new Set<string>();
    f.waves.forEach((w, i) => {
      if (names.has(w.name)) ctx.addIssue({ code: 'custom', path: ['waves', i, 'name'], message: `wave "${w.name}" is named twice` });
      names.add(w.name);
      if (w.size === undefined && i < f.waves.length - 1)
        ctx.addIssue({
          code: 'custom',
          path: ['waves', i, 'size'],
          message: 'only the last wave may leave its size out (it takes the rest)',
        });
    });
  });
export type FleetInput = z.output<typeof FleetInput>;
export type FleetInputDraft = z.input<typeof FleetInput>;

/** Replaces the template's placeholders in every string, recursively. */
export function fillTemplate(template: unknown, values: { app: string; addon: string; attachment: string }): unknown {
  const fill = (s: string) =>
    s
      .replace(/\{app\}/g, values.app)
      .replace(/\{APP\}/g, values.app.toUpperCase().replace(/[^A-Z0-9]/g, '_'))
      .replace(/\{addon\}/g, values.addon)
      .replace(/\{attachment\}/g, values.attachment);
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return fill(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(template);
}

/**
 * The fleet input checked: its own fields, then every listed migration with the migration's schema
 * (problems of entry i named `migrations.i.input.<field>`), and the template filled with sample values.
 */
export function checkFleetInput(raw: unknown): Checked<FleetInput> {
  const checked = checkWith(FleetInput, raw);
  if (!checked.ok) return checked;
  const problems: InputProblem[] = [];
  const prefixed = (prefix: string, raw: unknown) => {
    const c = checkMigrationInput(raw);
    if (!c.ok)
      problems.push(...c.problems.map((p) => ({ field: p.field === '(input)' ? prefix : `${prefix}.${p.field}`, message: p.message })));
  };
  checked.input.migrations?.forEach((m, i) => prefixed(`migrations.${i}.input`, m.input));
  if (checked.input.template)
    prefixed(
      'template',
      fillTemplate(checked.input.template, { app: 'sample-app', addon: 'postgresql-sample-12345', attachment: 'DATABASE' }),
    );
  if (problems.length > 50)
    problems.splice(50, problems.length - 50, { field: '(input)', message: `${problems.length - 50} more problems` });
  return problems.length ? { ok: false, problems } : checked;
}

// --- what clients send a running fleet ------------------------------------------------------------

const Reason = z
  .string()
  .max(MAX_REASON_CHARS, `must be at most ${MAX_REASON_CHARS} characters`)
  .optional()
  .describe(`Why (at most ${MAX_REASON_CHARS} characters).`);

/** `pause`, `resume`, `cancel`: who, and why. */
export const FleetControlPayload = z.object({ by: ApproverName.describe('Who asks (at most 200 characters).'), reason: Reason }).strict();
export type FleetControlPayload = z.infer<typeof FleetControlPayload>;

/** `approveWave`: who approves which wave (its gates are then approved in that name). */
export const WaveApprovalPayload = z
  .object({
    approver: ApproverName.describe('Who approves (at most 200 characters).'),
    wave: Name.describe('The wave approved.'),
    reason: Reason,
  })
  .strict();
export type WaveApprovalPayload = z.infer<typeof WaveApprovalPayload>;

export type FleetMessageCheck<T> = { ok: true; payload: T } | { ok: false; problem: string };

function checkMessage<T>(schema: z.ZodType<T>, raw: unknown): FleetMessageCheck<T> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return { ok: true, payload: parsed.data };
  const problem = parsed.error.issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? i.path.map(String).join('.') : 'payload'}: ${i.message}`)
    .join('; ');
  return { ok: false, problem: clip(problem, MAX_PROBLEM_CHARS) };
}

export const checkFleetControl = (raw: unknown) => checkMessage(FleetControlPayload, raw);
export const checkWaveApproval = (raw: unknown) => checkMessage(WaveApprovalPayload, raw);
