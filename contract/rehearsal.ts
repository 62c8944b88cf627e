/**
 * The input of `rehearseMigration`: the same migration input as `migrateDatabase`, plus where the
 * rehearsal's copy of the source comes from, and the margin added to the rehearsed window.
 *
 * Pure module (bundled into workflow code): no Node APIs.
 */
import { z } from 'zod';
import {
  CDC_METHODS,
  duration,
  durationMs,
  MigrationInput,
  SecretRef,
  withLegacyInputRules,
  type GateName,
  type MigrationInputDraft,
  type MigrationMethod,
} from './input';
import { DUMP_RESTORE_COMFORT_BYTES, estimateDumpRestoreMs } from './plan';
import { checkWith, formatProblems, type Checked, type InputProblem } from './problems';

/** `pg_dump` of the real source (read-only) restored into a scratch database the workflow creates. */
export const LogicalSnapshot = z
  .object({
    type: z.literal('logical'),
    scratch: SecretRef.describe(
      'Reference to a server URL whose role may CREATE DATABASE: the scratch source database (and, unless scratchTarget is given, the scratch target) is created there and dropped afterwards.',
    ),
    scratchTarget: SecretRef.optional().describe(
      'Reference to the server URL where the scratch target database is created (default: scratch). Use a server like the real target. Required on another server for method logical: PostgreSQL cannot create a subscription slot on its own cluster in the same command.',
    ),
  })
  .strict();

/** An RDS snapshot restored into a new instance (the scratch source), deleted afterwards. */
export const RdsSnapshot = z
  .object({
    type: z.literal('rds-snapshot'),
    dbSnapshotIdentifier: z.string().min(1).max(255).describe('The snapshot to restore (RestoreDBInstanceFromDBSnapshot).'),
    instanceClass: z
      .string()
      .regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/, 'must be an instance class such as db.t3.medium')
      .default('db.t3.medium'),
    dbSubnetGroupName: z.string().min(1).optional(),
    vpcSecurityGroupIds: z.array(z.string().min(1)).optional(),
    credentials: SecretRef.optional().describe(
      'Reference to a URL whose user, password and database are valid on the restored instance (its master user); host and port are replaced by the restored endpoint. Default: migration.source.url.',
    ),
    scratchTarget: SecretRef.describe(
      'Reference to the server URL where the scratch target database is created (a role that may CREATE DATABASE).',
    ),
    availableWithin: duration('24h').default('45m').describe('How long the restored instance may take to become available (at most 24h).'),
    reachableWithin: duration('1h')
      .default('5m')
      .describe('How long the restored endpoint may take to accept connections from the worker (at most 1h).'),
    parameterPrefix: z
      .string()
      .regex(/^\/[A-Za-z0-9_.\-/]+$/, 'must be an SSM parameter path such as /pgmig/rehearsals')
      .default('/pgmig/rehearsals')
      .describe(
        'The restored instance URL is kept in an SSM SecureString parameter under this path for the rehearsal (deleted at teardown), so it never enters history.',
      ),
  })
  .strict();

export const SnapshotSource = z.discriminatedUnion('type', [LogicalSnapshot, RdsSnapshot]);
export type SnapshotSource = z.output<typeof SnapshotSource>;

export const RehearsalInput = z
  .object({
    migration: MigrationInput.describe('The migrateDatabase input being rehearsed (its target and config sink are never touched).'),
    snapshot: SnapshotSource,
    marginPercent: z
      .number()
      .min(0)
      .max(1000)
      .default(50)
      .describe('Publishable downtime = rehearsed window + max(marginPercent of it, minMarginMs).'),
    minMarginMs: z.number().int().min(0).default(0),
    reportDir: z
      .string()
      .min(1)
      .optional()
      .describe("Directory of this migration's reports on the worker host (default .stack/rehearsals/<migrationId>)."),
  })
  .strict()
  .superRefine((input, ctx) => {
    const snap = input.snapshot;
    if (snap.type === 'logical' && input.migration.method === 'logical') {
      if (!snap.scratchTarget || sameServer(snap.scratch, snap.scratchTarget)) {
        ctx.addIssue({
          code: 'custom',
          path: ['snapshot', 'scratchTarget'],
          message: `method ${input.migration.method} needs the scratch target on another server than snapshot.scratch (PostgreSQL cannot create a subscription's slot on its own cluster in the same command)`,
        });
      }
    }
  });
export type RehearsalInput = z.output<typeof RehearsalInput>;
export type RehearsalInputDraft = z.input<typeof RehearsalInput>;

/** Whether two references name the same server (the `database` part aside). */
export function sameServer(a: SecretRef, b: SecretRef): boolean {
  const key = (r: SecretRef) => ('env' in r ? `env:${r.env}` : 'ssm' in r ? `ssm:${r.ssm}` : `sm:${r.secretsManager}`);
  return key(a) === key(b);
}

/** Validates without throwing; each problem names its dotted field. `legacy`: see `withLegacyInputRules`. */
export function checkRehearsalInput(raw: unknown, opts: { legacy?: boolean } = {}): Checked<RehearsalInput> {
  return opts.legacy ? withLegacyInputRules(() => checkWith(RehearsalInput, raw)) : checkWith(RehearsalInput, raw);
}

export function formatRehearsalProblems(problems: InputProblem[]): string {
  return formatProblems(problems, 'rehearsal');
}

/** The approver recorded for the gates of a rehearsal: approvals are automatic, and say so. */
export const AUTOMATIC_APPROVER = 'rehearsal (automatic)';

/** Names of one rehearsal's scratch resources (all derived from the rehearsal id). */
export function scratchNames(rehearsalId: string) {
  const base = `rehearsal_${rehearsalId.replace(/[^a-z0-9]/g, '_')}`.slice(0, 55);
  return {
    sourceDatabase: `${base}_src`,
    targetDatabase: `${base}_tgt`,
    /** RDS: DBInstanceIdentifier of the restored instance (letters, digits, hyphens; at most 63). */
    instance: `pgmig-${rehearsalId.replace(/[^a-z0-9]/g, '-')}`.replace(/-+/g, '-').replace(/-$/, '').slice(0, 63),
  };
}

/**
 * The method the real migration would use, decided the way preflight decides `auto` (seed 004's
 * tree) from the snapshot's size: the rehearsal forces it on its child, so that the child's plan is
 * not blocked by the very estimate the rehearsal exists to replace with a measurement.
 */
export function rehearsedMethod(migration: MigrationInput, sourceBytes: number): { method: MigrationMethod; reason: string } {
  if (migration.method !== 'auto') return { method: migration.method, reason: `forced by the migration input: ${migration.method}` };
  const estimate = estimateDumpRestoreMs(sourceBytes, migration.parallelJobs);
  const budget = migration.downtimeBudget ? durationMs(migration.downtimeBudget) : undefined;
  if (sourceBytes <= DUMP_RESTORE_COMFORT_BYTES && (budget === undefined || estimate <= budget)) {
    return {
      method: 'dump-restore',
      reason: `auto: ${sourceBytes} bytes, estimated freeze ${estimate} ms${budget !== undefined ? ` fits downtimeBudget ${migration.downtimeBudget}` : ''}: dump-restore`,
    };
  }
  return {
    method: 'logical',
    reason: `auto: a dump-restore of ${sourceBytes} bytes would freeze ~${estimate} ms${budget !== undefined ? `, over downtimeBudget ${migration.downtimeBudget}` : ' (over ~20 GB)'}: logical`,
  };
}

export interface ScratchEndpoints {
  source: SecretRef;
  target: SecretRef;
  /** The role that creates the subscription on the scratch target (CDC methods). */
  replication: SecretRef;
  stagingSinkPath: string;
}

/** Settings of the migration that the rehearsal carries over as they are: they shape the measured window. */
const CARRIED = ['parallelJobs', 'copy', 'freeze', 'replication', 'verify', 'smoke'] as const;
/** Settings the rehearsal replaces (endpoints, sink, gates) or applies itself (the budget). */
const REPLACED = ['migrationId', 'method', 'source', 'target', 'configSink', 'gates', 'downtimeBudget', 'roles'];

/**
 * The child's input, built from an allow-list: the migration's copy, freeze, replication,
 * verification and smoke settings as given; endpoints pointed at the scratch databases; a staging
 * config sink; its method decided; its gates open to the automatic approver; no budget (the
 * rehearsal measures, then compares with the budget itself). Anything else (a hold, application
 * control, DNS) is left out, so a rehearsal can never reach production through a setting added later.
 */
export function childMigrationInput(
  migration: MigrationInput,
  childMigrationId: string,
  scratch: ScratchEndpoints,
  method: MigrationMethod,
): MigrationInputDraft {
  const carried: Record<string, unknown> = {};
  for (const key of CARRIED) if (migration[key] !== undefined) carried[key] = migration[key];
  const gates = Object.fromEntries(
    Object.entries(migration.gates).map(([gate, config]) => [gate, { timeout: (config as { timeout: string }).timeout }]),
  );
  return {
    ...carried,
    migrationId: childMigrationId,
    method,
    // The application roles exist on the real source, not necessarily on the scratch server: the database-level freeze covers every role.
    source: { url: scratch.source },
    target: {
      url: scratch.target,
      appUrl: scratch.target,
      ...((CDC_METHODS as readonly string[]).includes(method) ? { replicationUrl: scratch.replication } : {}),
      urlParams: migration.target.urlParams,
    },
    // The same roles and privileges on the scratch target; the application runs as the scratch role (target.appUrl).
    roles: { map: migration.roles.map },
    configSink: { type: 'env-file', path: scratch.stagingSinkPath, key: 'DATABASE_URL' },
    gates,
  };
}

/** Gates the parent approves ahead of time, in order; the cutover gate exists for CDC methods only. */
export function rehearsedGates(method: MigrationMethod): GateName[] {
  return (CDC_METHODS as readonly string[]).includes(method) ? ['cutover', 'go-live'] : ['go-live'];
}

/** What the rehearsal changes in the migration input, for the report. */
export function rehearsalDeviations(migration: MigrationInput): string[] {
  const notes = [
    'source, target and replication role point at the scratch databases; the real target is never connected to',
    'the config sink is a staging env file in a temporary directory; the real sink is never read or written',
    `gates are approved automatically by "${AUTOMATIC_APPROVER}" (recorded as such in the migration's decisions)`,
  ];
  const gates = migration.gates as Record<string, { approvers?: string[] }>;
  if (Object.values(gates).some((g) => g.approvers)) notes.push("the gates' approver lists are not applied to the automatic approvals");
  if (migration.source.appRoles)
    notes.push(
      `source.appRoles (${migration.source.appRoles.join(', ')}) are not frozen by role on the scratch source: the database-level freeze covers them`,
    );
  if (migration.target.appUrl) notes.push('target.appUrl is replaced by the scratch target URL (smoke tests run as the scratch role)');
  else if (migration.roles.application === 'own')
    notes.push("the application's own role gets no password on the scratch target: smoke tests run as the scratch role");
  const left = Object.keys(migration).filter(
    (k) => !(CARRIED as readonly string[]).includes(k) && !REPLACED.includes(k) && (migration as Record<string, unknown>)[k] !== undefined,
  );
  if (left.length) notes.push(`not rehearsed (production-only settings left out of the rehearsal): ${left.join(', ')}`);
  return notes;
}
