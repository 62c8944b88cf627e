/**
 * The public input of `migrateDatabase`, as one zod schema shared by the workflow (which
 * validates it before touching anything), the CLI (which validates before starting, so a
 * pasted password never reaches history) and the generated JSON Schema for the Web UI.
 *
 * Pure module: it is bundled into workflow code, so no Node APIs here.
 */
import { z } from 'zod';
import ms from 'ms';

/** A reference to a secret; the value is resolved inside activities, never carried in history. */
/** Optional on a URL reference: use this database of the referenced server instead (rehearsal scratch databases). */
const databaseOverride = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'must be a plain database name')
  .optional()
  .describe('Connect to this database instead of the one in the referenced URL.');

export const SecretRef = z
  .union([
    z.object({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name'), database: databaseOverride }).strict(),
    z.object({ ssm: z.string().min(1, 'must name an SSM parameter'), database: databaseOverride }).strict(),
    z.object({ secretsManager: z.string().min(1, 'must name a Secrets Manager secret'), database: databaseOverride }).strict(),
  ], {
    error: 'must be a secret reference such as {"env":"SOURCE_DATABASE_URL"}, {"ssm":"/name"} or {"secretsManager":"id"}; literal connection strings are refused',
  })
  .describe('Secret reference: {"env":"NAME"}, {"ssm":"/param/name"} or {"secretsManager":"secret-id"}, optionally with "database". Never a literal URL.');
export type SecretRef = z.infer<typeof SecretRef>;

/** A duration in the `ms` notation Temporal also accepts ("90s", "15m", "72h"). */
export const DurationString = z
  .string()
  .refine((v) => typeof ms(v as ms.StringValue) === 'number' && ms(v as ms.StringValue) > 0, {
    message: 'must be a positive duration such as "30s", "15m" or "2h"',
  });

export function durationMs(value: string): number {
  return ms(value as ms.StringValue);
}

const roleName = z.string().min(1).max(63);

export const METHODS = ['auto', 'dump-restore', 'logical', 'pgcopydb', 'dms'] as const;
/** Methods this build can run; the others are part of the contract and refused clearly until they ship. */
export const IMPLEMENTED_METHODS = ['dump-restore', 'logical', 'dms'] as const;
/** Methods that stream changes (CDC) and so cut over with a short freeze: they have a `cutover` gate. */
export const CDC_METHODS = ['logical', 'pgcopydb', 'dms'] as const;
export type MigrationMethod = Exclude<(typeof METHODS)[number], 'auto'>;

export const GATES = ['cutover', 'go-live'] as const;
export type GateName = (typeof GATES)[number];

const GateConfig = z
  .object({
    timeout: DurationString.default('30m').describe('How long the gate waits for a decision; on timeout the decision is no-go.'),
    approvers: z
      .array(z.string().min(1))
      .optional()
      .describe('Who may decide at this gate. Absent: anyone with access to the namespace.'),
  })
  .strict();

export const EnvFileSink = z
  .object({
    type: z.literal('env-file'),
    path: z.string().min(1).describe('Path of the dotenv file the application reads, on the worker host.'),
    key: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).default('DATABASE_URL'),
  })
  .strict();
export const ConfigSink = z.discriminatedUnion('type', [EnvFileSink]);
export type ConfigSink = z.infer<typeof ConfigSink>;

export const MigrationInput = z
  .object({
    migrationId: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and dashes, at most 63 characters')
      .optional()
      .describe('Stable name of this migration (defaults to the workflow id).'),
    source: z
      .object({
        url: SecretRef.describe('Reference to the source connection URL (Heroku DATABASE_URL).'),
        appRoles: z
          .array(roleName)
          .optional()
          .describe('Application roles to freeze; defaults to the role in the source URL. The database-level freeze covers every other role.'),
      })
      .strict(),
    target: z
      .object({
        url: SecretRef.describe('Reference to the target connection URL used by the migration (RDS master user).'),
        appUrl: SecretRef.optional().describe('Reference to the URL the application should use after cutover; defaults to target.url.'),
        replicationUrl: SecretRef.optional().describe(
          'Reference to the URL of a role allowed to CREATE SUBSCRIPTION on the target (RDS: the master user; self-managed PostgreSQL 15: a superuser). Defaults to target.url.',
        ),
        urlParams: z
          .record(z.string(), z.string())
          .default({})
          .describe('Query parameters added to the URL written to the config sink, e.g. {"sslmode":"verify-full","sslrootcert":"/etc/ssl/rds-global-bundle.pem"}.'),
      })
      .strict(),
    method: z.enum(METHODS).default('auto'),
    parallelJobs: z.number().int().min(1).max(64).default(2).describe('pg_dump / pg_restore -j'),
    downtimeBudget: DurationString.optional().describe('Largest acceptable write-freeze window; the plan is blocked if the estimate exceeds it.'),
    freeze: z
      .object({
        drainTimeout: DurationString.default('5s').describe('How long in-flight transactions may finish before their sessions are terminated.'),
      })
      .strict()
      .default({ drainTimeout: '5s' }),
    replication: z
      .object({
        maxLagBytes: z.number().int().min(0).default(1024 * 1024).describe('logical: catch-up is done (and the cutover gate opens) once the replication lag is at most this many bytes of WAL.'),
        maxLagSeconds: z.number().min(0).default(5).describe('dms: catch-up is done once CloudWatch CDCLatencySource and CDCLatencyTarget are at most this many seconds.'),
        tablesWithoutPrimaryKey: z
          .enum(['refuse', 'replica-identity-full'])
          .default('refuse')
          .describe('CDC methods: refuse tables without a primary key (UPDATE/DELETE on them would fail on the source), or set REPLICA IDENTITY FULL on them for the migration.'),
        drainTimeout: DurationString.default('30s').describe('How long the target may take to apply the last changes after the freeze.'),
      })
      .strict()
      .default({ maxLagBytes: 1024 * 1024, maxLagSeconds: 5, tablesWithoutPrimaryKey: 'refuse', drainTimeout: '30s' }),
    verify: z
      .object({
        fullBeforeGoLive: z
          .boolean()
          .default(false)
          .describe('CDC methods: hold the go-live gate until the full per-table count + checksum comparison (on snapshots taken at the freeze) passes. Off: it runs alongside and its result is reported; the window holds the exact drain, schema, sequence and smoke checks.'),
      })
      .strict()
      .default({ fullBeforeGoLive: false }),
    configSink: ConfigSink,
    gates: z
      .object({
        cutover: GateConfig.default({ timeout: '30m' }).describe('CDC methods: approval to freeze writes once replication has caught up.'),
        'go-live': GateConfig.default({ timeout: '30m' }),
      })
      .strict()
      .default({ cutover: { timeout: '30m' }, 'go-live': { timeout: '30m' } }),
    smoke: z
      .object({
        sql: z.array(z.string().min(1)).default([]).describe('Extra statements run against the target inside a rolled-back READ WRITE transaction.'),
      })
      .strict()
      .default({ sql: [] }),
  })
  .strict()
  .superRefine((input, ctx) => {
    if (input.method !== 'auto' && !(IMPLEMENTED_METHODS as readonly string[]).includes(input.method)) {
      ctx.addIssue({
        code: 'custom',
        path: ['method'],
        message: `method "${input.method}" is not available in this build; use one of: auto, ${IMPLEMENTED_METHODS.join(', ')}`,
      });
    }
  });
export type MigrationInput = z.output<typeof MigrationInput>;
export type MigrationInputDraft = z.input<typeof MigrationInput>;

export interface InputProblem {
  field: string;
  message: string;
}

/** Validates without throwing; each problem names its field (dotted path). Never echoes values: they may be secrets. */
export function checkMigrationInput(raw: unknown): { ok: true; input: MigrationInput } | { ok: false; problems: InputProblem[] } {
  const parsed = MigrationInput.safeParse(raw);
  if (parsed.success) return { ok: true, input: parsed.data };
  return {
    ok: false,
    problems: parsed.error.issues.map((issue) => ({
      field: issue.path.length ? issue.path.join('.') : '(input)',
      message: issue.message,
    })),
  };
}

export function formatProblems(problems: InputProblem[]): string {
  return `invalid migration input: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`;
}
