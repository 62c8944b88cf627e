/**
 * Preflight inventory and the migration plan derived from it. `buildPlan` is pure (unit tested):
 * the preflight activity gathers the inventories, this decides method, estimate, blockers and warnings.
 */
import type { MigrationInput, MigrationMethod } from './input';
import { CDC_METHODS, durationMs } from './input';
import { METHOD_TRAITS, type MethodTraits } from './methods';
import { applicationAccess, type ApplicationAccess } from './roles';

export interface TableInventory {
  schema: string;
  name: string;
  /** Planner estimate (pg_class.reltuples); exact counts come at verification. */
  estimatedRows: number;
  bytes: number;
  hasPrimaryKey: boolean;
  /** A unique index on NOT NULL columns only (not partial, no expression): the triggers method's key when there is no primary key. */
  hasUniqueKey?: boolean;
  unlogged: boolean;
  partitioned: boolean;
  /** A partition of a partitioned table (its root is published / verified instead for CDC). */
  isPartition: boolean;
  /** pg_class.relreplident: d(efault, the PK), n(othing), f(ull), i(ndex). */
  replicaIdentity: 'd' | 'n' | 'f' | 'i';
  owner: string;
}

export interface SequenceInventory {
  schema: string;
  name: string;
  lastValue: number | null;
  /** Set when the sequence is owned by a serial or identity column. */
  ownedBy?: { schema: string; table: string; column: string };
}

/** Objects of each kind a role owns or is granted something on (activities/database/privileges.ts). */
export interface RoleObjectCounts {
  schemas: number;
  /** Tables, partitions, views, materialized views and foreign tables. */
  tables: number;
  sequences: number;
  /** Functions, procedures and aggregates. */
  functions: number;
  /** Enums, domains, ranges and composite types. */
  types: number;
  largeObjects: number;
}

/** A role that owns or is granted anything in the database: what the migration replays onto its mapped role. */
export interface RoleInventory {
  name: string;
  /** The application's role (the first of source.appRoles, by default the source URL's user). */
  application: boolean;
  owns: RoleObjectCounts;
  /** Objects it holds a privilege on without owning them. */
  granted: RoleObjectCounts;
  /** Columns it holds a privilege on. */
  columnGrants: number;
  /** ALTER DEFAULT PRIVILEGES entries it set, or that grant it something. */
  defaultPrivileges: number;
}

export interface RoleReadOnlySetting {
  role: string | null;
  /** null: the setting applies to every database. */
  database: string | null;
  value: string;
}

export interface DatabaseInventory {
  serverVersion: string;
  serverVersionNum: number;
  database: string;
  currentUser: string;
  isSuperuser: boolean;
  ownsDatabase: boolean;
  encoding: string;
  sizeBytes: number;
  walLevel: string;
  maxConnections: number;
  connectionsInUse: number;
  tables: TableInventory[];
  sequences: SequenceInventory[];
  extensions: string[];
  /** Extensions the server could install (pg_available_extensions); used on the target. */
  availableExtensions: string[];
  largeObjects: number;
  /** Size of pg_largeobject (all large objects of the database, on disk). */
  largeObjectBytes?: number;
  preparedTransactions: number;
  /** Schemas other than the system ones; recorded on the target so compensation knows what it created. */
  schemas: string[];
  /** User objects in non-system schemas (tables, sequences, types, functions, views). */
  userObjects: number;
  /** default_transaction_read_only settings in pg_db_role_setting that touch this database. */
  readOnlySettings: RoleReadOnlySetting[];
  /** The connecting role may open replication connections (REPLICATION attribute or superuser). */
  canReplicate: boolean;
  /** PostgreSQL 15 needs a superuser to CREATE SUBSCRIPTION (RDS: rds_superuser; 16+: pg_create_subscription). */
  canSubscribe: boolean;
  /** May SET session_replication_role (superuser; RDS's rds_superuser; 15+: GRANT SET ON PARAMETER): appliers skip FK checks and user triggers. */
  canSetReplicationRole?: boolean;
  maxReplicationSlots: number;
  replicationSlotsUsed: number;
  maxWalSenders: number;
  walSendersUsed: number;
  /** WAL written per second, sampled over one second during preflight: the write rate CDC must keep up with. */
  walBytesPerSecond: number;
  identityColumns: number;
  generatedColumns: number;
  /** Sessions of other roles that may write here and that this role can neither see nor end: the freeze would not hold them. */
  unendableSessions?: UnendableSessions[];
  /** Another migration's lease on this database (absent: free, or this migration's own). Set by preflight. */
  lease?: SeenLease;
  /** The roles that own or are granted anything here (absent in plans made before roles were carried). */
  roles?: RoleInventory[];
}

/** Roles with sessions the freeze cannot end, and how many each (`activities/database/freeze.ts`). */
export interface UnendableSessions {
  role: string;
  sessions: number;
}

/** Why such sessions make the freeze a pretence, and what to do about them. */
export function describeUnendable(currentUser: string, found: UnendableSessions[]): string {
  return (
    `${found.map((f) => `${f.sessions} session(s) of role "${f.role}"`).join(', ')} may write to the database, and "${currentUser}" can neither see when they began nor end them ` +
    `(it needs membership in those roles or pg_signal_backend), so they would keep writing through the freeze; stop those clients ` +
    `(on Heroku: the dynos or credentials using them, or heroku pg:killall) or grant "${currentUser}" pg_signal_backend`
  );
}

/** Who holds a database for a migration: one migration per database at a time (`activities/database/lease.ts`). */
export interface DatabaseLease {
  workflowId: string;
  runId: string;
  namespace: string;
  migrationId: string;
  /** ISO time the lease was taken. */
  since: string;
}

/** A lease preflight found: `held` by a running workflow (a blocker), or `stale` (its workflow ended; taken over). */
export type SeenLease = DatabaseLease & { state: 'held' | 'stale' };

/** How messages name the migration holding a lease. */
export function describeLease(side: 'source' | 'target', database: string, lease: DatabaseLease): string {
  return `${side} database "${database}" is leased by migration "${lease.migrationId}" (workflow ${lease.workflowId}, run ${lease.runId}, namespace ${lease.namespace}, since ${lease.since})`;
}

/** What preflight checked beside the inventories; each problem becomes a blocker naming its input field. */
export interface PreflightChecks {
  /** source.appRoles entries that do not exist on the source. */
  missingAppRoles?: string[];
  /** source.appRoles entries the source role may not make read-only (ALTER ROLE .. IN DATABASE .. SET), with PostgreSQL's reason. */
  unalterableAppRoles?: { role: string; reason: string }[];
  /** Why the config sink is unusable from this worker, each beginning with its field (`configSink.path: ...`). */
  configSink?: string[];
  /** dump-restore's copy engine on this worker (copy.engine resolved), or why the one asked for is missing. */
  copyEngine?: { engine: 'pgcopydb' | 'pg-dump' } | { problem: string };
  /** Why pgcopydb cannot run on this worker (checked when the initial copy is pgcopydb's). */
  pgcopydbMissing?: string;
  /** The application's target role exists there already (roles.application "own"): its password will be replaced. */
  applicationRoleExists?: boolean;
}

export interface MigrationPlan {
  method: MigrationMethod;
  methodReasons: string[];
  /** Estimated write-freeze window for the chosen method, in ms, with how it was computed. */
  estimatedDowntimeMs: number;
  estimateBasis: string;
  appRoles: string[];
  /** How the application connects to the target after the swap (absent in plans made before roles were carried). */
  application?: ApplicationAccess;
  source: DatabaseInventory;
  target: DatabaseInventory;
  blockers: string[];
  warnings: string[];
}

/** Copy throughput measured on a 2-core box with source and target local (DESIGN.md: ~80 MB/s, CPU-bound). */
export const DUMP_RESTORE_BYTES_PER_SECOND = 80 * 1024 * 1024;
/** Freeze, sequence reconciliation, verification overhead and config swap, measured on the demo data. */
export const DUMP_RESTORE_FIXED_OVERHEAD_MS = 3_000;
export const DUMP_RESTORE_COMFORT_BYTES = 20 * 1024 ** 3;

const SYSTEM_EXTENSIONS = new Set(['plpgsql']);

export function estimateDumpRestoreMs(sizeBytes: number, parallelJobs: number): number {
  // Parallel jobs help until the two cores saturate; beyond 2 the measured gain is small.
  const speedup = Math.min(parallelJobs, 2) / 2 + 0.5;
  return Math.round((sizeBytes / (DUMP_RESTORE_BYTES_PER_SECOND * speedup)) * 1000 * 2 + DUMP_RESTORE_FIXED_OVERHEAD_MS);
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function formatMs(msValue: number): string {
  if (msValue < 1000) return `${Math.round(msValue)} ms`;
  if (msValue < 120_000) return `${(msValue / 1000).toFixed(1)} s`;
  return `${(msValue / 60_000).toFixed(1)} min`;
}

/** A copy's progress in one line: `copy 45.2% (3/11 tables, 12.0 MB/s, ETA 14 s)`. */
export function describeCopyProgress(copy: {
  percent: number;
  tablesDone: number;
  tablesTotal: number;
  bytesPerSecond: number;
  etaSeconds: number | null;
}): string {
  const eta = copy.etaSeconds === null ? 'ETA unknown' : `ETA ${formatMs(copy.etaSeconds * 1000)}`;
  return `copy ${copy.percent}% (${copy.tablesDone}/${copy.tablesTotal} tables, ${formatBytes(copy.bytesPerSecond)}/s, ${eta})`;
}

/** Cutover window of a CDC method measured on the local stack (freeze, drain, sequences, swap, smoke): see bench/. */
export const CDC_CUTOVER_ESTIMATE_MS = 1_000;

const names = (tables: TableInventory[]) =>
  tables
    .slice(0, 5)
    .map((t) => `${t.schema}.${t.name}`)
    .join(', ') + (tables.length > 5 ? ', ...' : '');

/**
 * The window's copy of what no change stream carries, measured on the local stack (2 cores shared, source
 * and target on one box): an UNLOGGED table of 37 MB (pg_total_relation_size; 200k rows, 20 MB of COPY
 * data) emptied and copied in 0.41-0.68 s, 202 large objects of 64 kB (880 kB on disk, compressed) in
 * 0.43-0.62 s. The estimate takes the table's size at about half that rate, and 3 ms per large object
 * beside its size on disk (what the inventory can see of it).
 */
export const WINDOW_COPY_BYTES_PER_SECOND = 40 * 1024 * 1024;
export const WINDOW_COPY_MS_PER_LARGE_OBJECT = 3;
/**
 * The window's copy is one local activity (2 minutes at most, `PROFILES.window`), retried on failure with
 * writes frozen: a copy estimated beyond half of that is refused rather than tried.
 */
export const WINDOW_COPY_MAX_MS = 60_000;

/** What a replication method copies inside its write-freeze window because its change stream does not carry it. */
export interface WindowCopy {
  /** UNLOGGED tables (leaves): emptied on the target and copied from the frozen source. */
  unlogged: TableInventory[];
  unloggedBytes: number;
  unloggedMs: number;
  largeObjects: number;
  largeObjectBytes: number;
  largeObjectsMs: number;
  estimatedMs: number;
}

/**
 * UNLOGGED tables (invisible to logical decoding, so to publications and DMS; the triggers method's capture
 * sees them) and large objects (seen by no change stream): copied inside the window, where they cannot change.
 */
export function windowCopy(
  traits: Pick<MethodTraits, 'shape' | 'largeObjectsInWindow' | 'followsUnlogged'>,
  source: Pick<DatabaseInventory, 'tables' | 'largeObjects' | 'largeObjectBytes'>,
): WindowCopy {
  const replication = traits.shape === 'replication';
  const unlogged = replication && !traits.followsUnlogged ? source.tables.filter((t) => t.unlogged && !t.partitioned) : [];
  const unloggedBytes = unlogged.reduce((n, t) => n + t.bytes, 0);
  const largeObjects = replication && traits.largeObjectsInWindow ? source.largeObjects : 0;
  const largeObjectBytes = largeObjects > 0 ? (source.largeObjectBytes ?? 0) : 0;
  const unloggedMs = unlogged.length ? Math.round((unloggedBytes / WINDOW_COPY_BYTES_PER_SECOND) * 1000) : 0;
  const largeObjectsMs = largeObjects
    ? Math.round((largeObjectBytes / WINDOW_COPY_BYTES_PER_SECOND) * 1000) + largeObjects * WINDOW_COPY_MS_PER_LARGE_OBJECT
    : 0;
  return { unlogged, unloggedBytes, unloggedMs, largeObjects, largeObjectBytes, largeObjectsMs, estimatedMs: unloggedMs + largeObjectsMs };
}

/** "UNLOGGED table(s) a, b (12.0 MB) and 2 large object(s) (1.0 MB)": what a window copy holds. */
function describeWindowCopy(copy: WindowCopy): string {
  return [
    ...(copy.unlogged.length ? [`UNLOGGED table(s) ${names(copy.unlogged)} (${formatBytes(copy.unloggedBytes)})`] : []),
    ...(copy.largeObjects ? [`${copy.largeObjects} large object(s) (${formatBytes(copy.largeObjectBytes)})`] : []),
  ].join(' and ');
}

/** Tables whose UPDATE/DELETE cannot be replicated: no primary key and no other replica identity. */
export function withoutReplicaIdentity(tables: TableInventory[]): TableInventory[] {
  return tables.filter((t) => !t.partitioned && !t.hasPrimaryKey && (t.replicaIdentity === 'd' || t.replicaIdentity === 'n'));
}

/** Why native logical replication cannot run between these two databases (empty: it can). */
export function logicalReplicationProblems(
  input: MigrationInput,
  source: DatabaseInventory,
  target: DatabaseInventory,
  method: MigrationMethod = 'logical',
): string[] {
  const problems: string[] = [];
  if (source.walLevel !== 'logical')
    problems.push(
      `source wal_level is ${source.walLevel}; logical replication needs wal_level=logical (on Heroku: a plan with logical replication enabled)`,
    );
  if (!source.canReplicate) problems.push(`source role "${source.currentUser}" has no REPLICATION privilege`);
  // The subscription's apply worker plus up to two table-sync workers each hold a slot and a WAL sender during the initial copy.
  const needed = 3;
  if (source.maxReplicationSlots - source.replicationSlotsUsed < needed) {
    problems.push(
      `source has ${source.maxReplicationSlots - source.replicationSlotsUsed} free replication slot(s) (max_replication_slots=${source.maxReplicationSlots}); ${needed} are needed during the initial copy`,
    );
  }
  if (source.maxWalSenders - source.walSendersUsed < needed) {
    problems.push(
      `source has ${source.maxWalSenders - source.walSendersUsed} free WAL sender(s) (max_wal_senders=${source.maxWalSenders}); ${needed} are needed during the initial copy`,
    );
  }
  if ((method === 'logical' || method === 'pgcopydb') && !target.canSubscribe) {
    problems.push(
      `target role "${target.currentUser}" cannot CREATE SUBSCRIPTION (PostgreSQL ${target.serverVersion} needs a superuser; on RDS use the master user); set target.replicationUrl`,
    );
  }
  const noIdentity = withoutReplicaIdentity(source.tables);
  if (noIdentity.length && input.replication.tablesWithoutPrimaryKey === 'refuse') {
    problems.push(
      `table(s) without a primary key or replica identity (${names(noIdentity)}): once published, UPDATE and DELETE on them would fail on the source; add a primary key, or set replication.tablesWithoutPrimaryKey to "replica-identity-full"`,
    );
  }
  const notOwned = source.tables.filter((t) => t.owner !== source.currentUser && !t.isPartition);
  if (notOwned.length && !source.isSuperuser) {
    problems.push(`table(s) ${names(notOwned)} are not owned by "${source.currentUser}", which cannot add them to a publication`);
  }
  return problems;
}

/** Tables the triggers method cannot match rows of by a key: neither a primary key nor a unique NOT NULL index. */
export function withoutCaptureKey(tables: TableInventory[]): TableInventory[] {
  return tables.filter((t) => !t.isPartition && !t.hasPrimaryKey && !t.hasUniqueKey);
}

/** The triggers method needs only ownership of the tables (what a Heroku credential has); why it cannot run here (empty: it can). */
export function triggerCaptureProblems(input: MigrationInput, source: DatabaseInventory): string[] {
  const problems: string[] = [];
  if (source.serverVersionNum < 140000) {
    problems.push(
      `source PostgreSQL ${source.serverVersion}: the triggers method needs 14 or later (transaction ids and snapshots as values, CREATE OR REPLACE TRIGGER)`,
    );
  }
  const notOwned = source.tables.filter((t) => t.owner !== source.currentUser && !t.isPartition);
  if (notOwned.length && !source.isSuperuser) {
    problems.push(`table(s) ${names(notOwned)} are not owned by "${source.currentUser}", which cannot create the capture triggers on them`);
  }
  const keyless = withoutCaptureKey(source.tables);
  if (keyless.length && input.replication.tablesWithoutPrimaryKey === 'refuse') {
    problems.push(
      `table(s) ${names(keyless)} have no primary key and no unique index on NOT NULL columns, so their changed rows cannot be found on the target; add a key, or set replication.tablesWithoutPrimaryKey to "replica-identity-full" (rows matched on all their columns)`,
    );
  }
  return problems;
}

/** What capture costs the source: every captured statement writes its rows again (as JSON) into the change log. */
function captureCost(input: MigrationInput, source: DatabaseInventory): string {
  const rate = source.walBytesPerSecond;
  const copyMs = estimateDumpRestoreMs(source.sizeBytes, input.parallelJobs) / 2;
  return rate > 0
    ? `capture writes each changed row a second time (into the change log, as JSON): expect about 2x the source's WAL (${formatBytes(rate)}/s measured, so ~${formatBytes(2 * rate)}/s) and a change log that grows by ~${formatBytes(rate)}/s until applied: ~${formatBytes((rate * copyMs) / 1000)} of disk during the initial copy (~${formatMs(copyMs)}), pruned as the target applies it`
    : 'capture writes each changed row a second time (into the change log, as JSON): about 2x the WAL of each write; no writes were measured during preflight, so the change log should stay small';
}

export function buildPlan(
  input: MigrationInput,
  source: DatabaseInventory,
  target: DatabaseInventory,
  checks: PreflightChecks = {},
): MigrationPlan {
  const blockers: string[] = [];
  const warnings: string[] = [];
  const methodReasons: string[] = [];
  const appRoles = input.source.appRoles ?? [source.currentUser];

  // --- method: the decision tree of seed 004 ---
  const dumpEstimate = estimateDumpRestoreMs(source.sizeBytes, input.parallelJobs);
  const budgetMs = input.downtimeBudget ? durationMs(input.downtimeBudget) : undefined;
  const cdcProblems = logicalReplicationProblems(input, source, target, input.method === 'auto' ? 'logical' : input.method);
  const captureProblems = triggerCaptureProblems(input, source);
  let method: MigrationMethod;
  if (input.method === 'auto') {
    const dumpFits = source.sizeBytes <= DUMP_RESTORE_COMFORT_BYTES && (budgetMs === undefined || dumpEstimate <= budgetMs);
    if (dumpFits) {
      method = 'dump-restore';
      methodReasons.push(
        `auto: source is ${formatBytes(source.sizeBytes)} (under ~20 GB)${budgetMs !== undefined ? ` and the estimated freeze ${formatMs(dumpEstimate)} fits downtimeBudget ${input.downtimeBudget}` : ''}: the simplest method that fits`,
      );
    } else {
      // Native logical replication where the source allows it; else trigger-based capture, which needs only table ownership (Heroku).
      method = cdcProblems.length && !captureProblems.length ? 'triggers' : 'logical';
      methodReasons.push(
        source.sizeBytes > DUMP_RESTORE_COMFORT_BYTES
          ? `auto: source is ${formatBytes(source.sizeBytes)}, too large to freeze for a dump-restore (~${formatMs(dumpEstimate)})`
          : `auto: a dump-restore would freeze writes for ~${formatMs(dumpEstimate)}, over downtimeBudget ${input.downtimeBudget}`,
      );
      methodReasons.push(
        method === 'triggers'
          ? `native logical replication is not possible here (${cdcProblems.join('; ')}): trigger-based change capture needs only ownership of the tables, so copy and catch-up happen while the application runs`
          : cdcProblems.length
            ? 'logical replication is the near-zero-downtime method, but it is not possible here (see blockers), nor is trigger-based capture'
            : 'native logical replication is available (wal_level=logical, replication privilege, free slots): copy and catch-up happen while the application runs',
      );
    }
  } else {
    method = input.method;
    methodReasons.push(`forced by input: ${input.method}`);
  }
  const cdc = (CDC_METHODS as readonly string[]).includes(method);
  // What the method's change stream cannot carry is copied inside its window.
  const inWindow = windowCopy(METHOD_TRAITS[method], source);
  const estimate = cdc ? CDC_CUTOVER_ESTIMATE_MS + inWindow.estimatedMs : dumpEstimate;
  if (inWindow.unlogged.length) {
    warnings.push(
      `${inWindow.unlogged.length} UNLOGGED table(s) (${names(inWindow.unlogged)}, ${formatBytes(inWindow.unloggedBytes)}): invisible to logical decoding, so they are emptied on the target and copied from the frozen source inside the write-freeze window (~${formatMs(inWindow.unloggedMs)} of the estimate)`,
    );
  }
  if (inWindow.largeObjects) {
    warnings.push(
      `${inWindow.largeObjects} large object(s) (${formatBytes(inWindow.largeObjectBytes)}): no change stream carries them, so they are copied inside the write-freeze window (~${formatMs(inWindow.largeObjectsMs)} of the estimate)`,
    );
  }
  if (inWindow.estimatedMs > WINDOW_COPY_MAX_MS) {
    blockers.push(
      `${describeWindowCopy(inWindow)} would be copied inside the write-freeze window in ~${formatMs(inWindow.estimatedMs)}, more than the ${formatMs(WINDOW_COPY_MAX_MS)} one window step may take; make the tables LOGGED (ALTER TABLE ... SET LOGGED) or empty them, move large objects to bytea columns, or use dump-restore`,
    );
  }
  if (method === 'triggers') {
    blockers.push(...captureProblems);
    methodReasons.push(captureCost(input, source));
    if (target.canSetReplicationRole === false) {
      warnings.push(
        `target role "${target.currentUser}" may not SET session_replication_role: the captured changes are applied with the target's user triggers disabled (and foreign keys checked), in change order`,
      );
    }
  } else if (cdc) {
    blockers.push(...cdcProblems);
    if (source.walBytesPerSecond > 0) {
      methodReasons.push(
        `source writes ${formatBytes(source.walBytesPerSecond)}/s of WAL; replication must keep up with that during catch-up`,
      );
    }
  }
  if (budgetMs !== undefined && estimate > budgetMs) {
    blockers.push(
      cdc && inWindow.estimatedMs
        ? `estimated write-freeze window ${formatMs(estimate)} exceeds downtimeBudget ${input.downtimeBudget}: ${describeWindowCopy(inWindow)}, which no change stream carries, are copied inside it (~${formatMs(inWindow.estimatedMs)}); make the tables LOGGED (ALTER TABLE ... SET LOGGED) or empty them, move large objects to bytea columns, or raise the budget`
        : `estimated write-freeze window ${formatMs(estimate)} exceeds downtimeBudget ${input.downtimeBudget}; rehearse to measure, raise the budget, or use a CDC method`,
    );
  } else if (budgetMs === undefined) {
    warnings.push(`no downtimeBudget given; the estimated write-freeze window is ${formatMs(estimate)}`);
  }
  if (source.sizeBytes > DUMP_RESTORE_COMFORT_BYTES && method === 'dump-restore') {
    warnings.push(`source is ${formatBytes(source.sizeBytes)}: dump-restore holds writes frozen for the whole copy`);
  }

  // --- one migration per database at a time ---
  for (const [side, inventory] of [
    ['source', source],
    ['target', target],
  ] as const) {
    const lease = inventory.lease;
    if (lease?.state === 'held') {
      blockers.push(
        `${describeLease(side, inventory.database, lease)}, which is still running: one migration per database at a time; wait for it to end, or cancel it`,
      );
    } else if (lease?.state === 'stale') {
      warnings.push(`${describeLease(side, inventory.database, lease)}, which is no longer running: this migration takes the lease over`);
    }
  }

  // --- every role and sink the migration will touch, before the freeze rather than inside it ---
  if (checks.missingAppRoles?.length) {
    blockers.push(
      `source.appRoles: ${checks.missingAppRoles.map((r) => `"${r}"`).join(', ')} ${checks.missingAppRoles.length === 1 ? 'does' : 'do'} not exist on the source (database "${source.database}"); the freeze would fail with writes already frozen`,
    );
  }
  for (const { role, reason } of checks.unalterableAppRoles ?? []) {
    blockers.push(
      `source.appRoles: "${source.currentUser}" cannot make role "${role}" read-only in database "${source.database}" (${reason})`,
    );
  }
  blockers.push(...(checks.configSink ?? []));
  // The application's role named like the target's master user is that user: its password is the migration's own, never replaced.
  const asked = applicationAccess(input, appRoles[0]);
  const application: ApplicationAccess = asked.mode === 'own' && asked.role === target.currentUser ? { mode: 'master' } : asked;
  if (application.mode === 'own' && checks.applicationRoleExists) {
    warnings.push(
      `role "${application.role}" exists on the target already: the application uses it with a new password set at the swap; anything else logging in as "${application.role}" on that server must get the new password from the config sink`,
    );
  }
  const unknownMapped = source.roles ? Object.keys(input.roles.map).filter((r) => !source.roles!.some((known) => known.name === r)) : [];
  if (unknownMapped.length) {
    warnings.push(
      `roles.map: ${unknownMapped.map((r) => `"${r}"`).join(', ')} ${unknownMapped.length === 1 ? 'owns' : 'own'} nothing and ${unknownMapped.length === 1 ? 'is' : 'are'} granted nothing in database "${source.database}": a typo?`,
    );
  }
  if (method === 'dump-restore' && checks.copyEngine) {
    if ('problem' in checks.copyEngine) blockers.push(checks.copyEngine.problem);
    else methodReasons.push(`copy engine: ${checks.copyEngine.engine} (copy.engine "${input.copy.engine}"), verification during the copy`);
  }
  // The initial copy by pgcopydb runs on the worker: checked at preflight, not found missing after the slot exists.
  if (checks.pgcopydbMissing && (method === 'pgcopydb' || (method === 'logical' && input.replication.initialCopy === 'pgcopydb'))) {
    blockers.push(
      `${method === 'pgcopydb' ? 'method' : 'replication.initialCopy'}: pgcopydb, which makes the initial copy, cannot run on this worker: ${checks.pgcopydbMissing}`,
    );
  }

  // --- target must be empty and at least the source's major version ---
  if (target.userObjects > 0) {
    blockers.push(`target database "${target.database}" is not empty (${target.userObjects} user objects); migrate into an empty database`);
  }
  const sourceMajor = Math.floor(source.serverVersionNum / 10000);
  const targetMajor = Math.floor(target.serverVersionNum / 10000);
  if (targetMajor < sourceMajor) {
    blockers.push(
      `target PostgreSQL ${target.serverVersion} is older than source ${source.serverVersion}; a dump cannot be restored into an older major version`,
    );
  } else if (targetMajor > sourceMajor) {
    warnings.push(
      `version skew: source ${source.serverVersion}, target ${target.serverVersion}; test the application against the new major version`,
    );
  }
  if (source.encoding !== target.encoding) {
    warnings.push(`encoding differs: source ${source.encoding}, target ${target.encoding}`);
  }

  // --- extensions ---
  const available = new Set([...target.availableExtensions, ...target.extensions]);
  for (const ext of source.extensions) {
    if (SYSTEM_EXTENSIONS.has(ext)) continue;
    if (!available.has(ext)) blockers.push(`extension "${ext}" is installed on the source but not available on the target`);
  }

  // --- the write freeze must be possible and must hold ---
  if (!source.ownsDatabase && !source.isSuperuser) {
    blockers.push(
      `source role "${source.currentUser}" does not own database "${source.database}", so it cannot freeze writes (ALTER DATABASE ... SET default_transaction_read_only)`,
    );
  }
  for (const setting of source.readOnlySettings) {
    if (setting.role && setting.role !== source.currentUser && !source.isSuperuser) {
      blockers.push(
        `role "${setting.role}" has its own default_transaction_read_only=${setting.value}, which overrides the database-level freeze and cannot be changed by "${source.currentUser}"`,
      );
    }
  }
  if (source.unendableSessions?.length) blockers.push(`source: ${describeUnendable(source.currentUser, source.unendableSessions)}`);
  if (source.preparedTransactions > 0) {
    blockers.push(`source has ${source.preparedTransactions} prepared transaction(s); commit or roll them back before migrating`);
  }
  if (!target.ownsDatabase && !target.isSuperuser) {
    blockers.push(`target role "${target.currentUser}" does not own database "${target.database}"`);
  }

  // --- capacity ---
  const freeSource = source.maxConnections - source.connectionsInUse;
  if (freeSource < input.parallelJobs + 2) {
    blockers.push(`source has ${freeSource} free connections; parallelJobs=${input.parallelJobs} needs ${input.parallelJobs + 2}`);
  }
  const freeTarget = target.maxConnections - target.connectionsInUse;
  if (freeTarget < input.parallelJobs + 2) {
    blockers.push(`target has ${freeTarget} free connections; parallelJobs=${input.parallelJobs} needs ${input.parallelJobs + 2}`);
  }

  if (input.hold?.reverseReplication && method === 'triggers') {
    // The same capture runs on the target: the same keys (the schema is the source's), no subscription on the source.
    if (target.canSetReplicationRole === false || !source.canSetReplicationRole) {
      warnings.push(
        `a rollback during the hold applies the target's changes to the source as "${source.currentUser}", which may not SET session_replication_role: foreign keys are checked in change order and the user triggers it owns are off during each batch (those of other roles would fire)`,
      );
    }
  } else if (input.hold?.reverseReplication) {
    const noIdentity = withoutReplicaIdentity(source.tables);
    if (noIdentity.length && input.replication.tablesWithoutPrimaryKey === 'refuse') {
      blockers.push(
        `reverse replication publishes the target's tables: ${names(noIdentity)} have no primary key, so UPDATE/DELETE on them would fail on the target; add primary keys or set replication.tablesWithoutPrimaryKey to "replica-identity-full"`,
      );
    }
    const unlogged = source.tables.filter((t) => t.unlogged);
    if (unlogged.length)
      blockers.push(`reverse replication cannot carry UNLOGGED table(s) ${names(unlogged)}: a rollback would lose their rows`);
  }

  // --- things a dump carries but users should know about ---
  if (!cdc) {
    const noPk = withoutReplicaIdentity(source.tables);
    if (noPk.length)
      warnings.push(
        `${noPk.length} table(s) without a primary key (${names(noPk)}): fine for dump-restore, CDC methods will need REPLICA IDENTITY`,
      );
    const unlogged = source.tables.filter((t) => t.unlogged);
    if (unlogged.length)
      warnings.push(
        `${unlogged.length} UNLOGGED table(s) (${names(unlogged)}): dump-restore copies them; CDC methods copy them inside the write-freeze window`,
      );
    if (source.largeObjects > 0)
      warnings.push(
        `${source.largeObjects} large object(s): dump-restore copies them; CDC methods copy them inside the write-freeze window`,
      );
  } else {
    if (source.identityColumns > 0)
      warnings.push(
        `${source.identityColumns} identity column(s): their sequences are not replicated; they are reconciled from the source at cutover`,
      );
    if (source.generatedColumns > 0)
      warnings.push(`${source.generatedColumns} generated column(s): not replicated, recomputed by the target`);
    const partitioned = source.tables.filter((t) => t.partitioned);
    if (partitioned.length)
      warnings.push(
        `${partitioned.length} partitioned table(s) (${names(partitioned)}): published through their root (publish_via_partition_root)`,
      );
    const fullIdentity = withoutReplicaIdentity(source.tables);
    if (fullIdentity.length && input.replication.tablesWithoutPrimaryKey === 'replica-identity-full') {
      warnings.push(
        `${fullIdentity.length} table(s) without a primary key (${names(fullIdentity)}) get REPLICA IDENTITY FULL for the migration (restored afterwards): each UPDATE/DELETE on them is logged with the whole row and applied by a scan`,
      );
    }
  }

  return {
    method,
    methodReasons,
    estimatedDowntimeMs: estimate,
    estimateBasis: cdc
      ? `cutover ${formatMs(CDC_CUTOVER_ESTIMATE_MS)} (measured: freeze, drain, sequences, swap, smoke)${inWindow.estimatedMs ? `, plus ${describeWindowCopy(inWindow)} copied inside the window at ${formatBytes(WINDOW_COPY_BYTES_PER_SECOND)}/s` : ''}`
      : `${formatBytes(source.sizeBytes)} at ${formatBytes(DUMP_RESTORE_BYTES_PER_SECOND)}/s dump plus restore, -j ${input.parallelJobs}, plus ${formatMs(DUMP_RESTORE_FIXED_OVERHEAD_MS)} fixed`,
    appRoles,
    application,
    source,
    target,
    blockers,
    warnings,
  };
}
