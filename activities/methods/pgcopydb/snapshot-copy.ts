/**
 * The initial copy by pgcopydb: a logical replication slot (pgoutput) created over the replication
 * protocol exports a snapshot, `pgcopydb clone --snapshot` copies exactly that snapshot in parallel
 * (schema, data split across jobs, indexes; no --follow), and the session that exported it stays open,
 * idle, until the clone is done. The subscription then streams from the slot (logical/replication.ts):
 * every change committed after the snapshot, none before.
 *
 * Idempotent by starting over: a snapshot lives only as long as the session that exported it, so an
 * attempt after a crash (or after any failure) stops what a previous attempt left running on this
 * host, terminates its sessions, drops its slot, puts the target back to its baseline and begins again
 * from a new slot. The publication comes first (pgoutput reads it as of the position it decodes).
 */
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/common';
import { Client, type ClientConfig } from 'pg';
import type { TableInventory } from '../../../contract/plan';
import { qi, terminateByApplicationName, withClient } from '../../database/pg';
import { resetTargetToBaseline, type TargetBaseline } from '../../database/target-reset';
import { ownSessionsPrefix } from '../../names';
import { killProcessesWithArgument } from '../../processes';
import { redact } from '../../secrets';
import { ensureMarker, MARKER_SCHEMA, replicationNames } from '../cdc/marker';
import { dropSlot, ensurePublication } from '../logical/replication';
import { pgcopydbClone, type CloneProgress } from '../dump-restore/pgcopydb-clone';
import { copyProgress, type CopyProgress } from '../method';
import { cloneDir, filtersFile, label, logFile, pgcopydbAppName, snapshotAppName, type PgcopydbRun } from './names';

/** What no retry fixes when the slot is created: said plainly, non-retryable. */
const PREREQUISITES: { re: RegExp; why: string }[] = [
  {
    re: /must be superuser or replication role|permission denied to create replication slot|must have REPLICATION/,
    why: 'the source role lacks the REPLICATION attribute',
  },
  {
    re: /logical decoding requires wal_level >= logical|wal_level must be set to "logical"/,
    why: 'the source does not have wal_level=logical',
  },
  { re: /password authentication failed|no pg_hba.conf entry/, why: 'a connection was rejected' },
];

function slotFailure(what: string, err: unknown): ApplicationFailure {
  const message = redact((err as Error).message);
  const prerequisite = PREREQUISITES.find((p) => p.re.test(message));
  return prerequisite
    ? ApplicationFailure.nonRetryable(`${what}: ${prerequisite.why}: ${message}`, 'PgcopydbPrerequisite')
    : ApplicationFailure.retryable(`${what}: ${message}`, 'SlotFailed');
}

export interface SnapshotCopyResult {
  /** The slot's consistent point: the subscription streams what committed after it. */
  consistentPoint: string;
  tables: number;
  bytes: number;
  elapsedMs: number;
  /** Whether a previous attempt's slot or copy was found and thrown away first. */
  startedOver: boolean;
}

export interface SnapshotCopyOptions {
  tables: TableInventory[];
  baseline: TargetBaseline;
  signal?: AbortSignal;
  onProgress?: (p: CopyProgress & { stage: string }) => void;
  progressEveryMs?: number;
}

/** The slot and the snapshot it exported, held by `connection` (idle) until the copy imported it everywhere. */
interface SlotSnapshot {
  consistentPoint: string;
  snapshot: string;
  connection: Client;
}

/** `CREATE_REPLICATION_SLOT ... EXPORT_SNAPSHOT` (the syntax every PostgreSQL since 10 takes) on a replication connection. */
async function createSlotWithSnapshot(run: PgcopydbRun): Promise<SlotSnapshot> {
  const { slot } = replicationNames(run.migrationId);
  const connection = new Client({
    connectionString: run.sourceUrl,
    replication: 'database',
    application_name: snapshotAppName(run.migrationId),
    connectionTimeoutMillis: 10_000,
  } as ClientConfig & { replication: string });
  connection.on('error', () => undefined);
  try {
    await connection.connect();
    const res = await connection.query(`CREATE_REPLICATION_SLOT ${qi(slot)} LOGICAL pgoutput EXPORT_SNAPSHOT`);
    const row = res.rows[0] as { consistent_point: string; snapshot_name: string };
    return { consistentPoint: row.consistent_point, snapshot: row.snapshot_name, connection };
  } catch (err) {
    await connection.end().catch(() => undefined);
    throw slotFailure(`creating the replication slot ${slot} on ${label('source', run.sourceUrl)}`, err);
  }
}

/**
 * Back to before the copy: this host's pgcopydb of a previous attempt stopped, pgcopydb's and the
 * snapshot's sessions terminated (another host's too), the slot dropped, the target at its baseline,
 * the markers on both sides and the publication in place. Returns whether anything was thrown away.
 */
async function prepare(run: PgcopydbRun, opts: SnapshotCopyOptions): Promise<boolean> {
  const stopped = (await killProcessesWithArgument(cloneDir(run))) > 0;
  const names = replicationNames(run.migrationId);
  const session = { applicationName: `${ownSessionsPrefix(run.migrationId)}-pgc-admin` };
  return withClient(run.sourceUrl, { ...session, label: 'source' }, (source) =>
    withClient(run.targetUrl, { ...session, label: 'target' }, async (target) => {
      await source.query('SET default_transaction_read_only = off');
      const sessions =
        (await terminateByApplicationName(source, pgcopydbAppName(run.migrationId))) +
        (await terminateByApplicationName(source, snapshotAppName(run.migrationId))) +
        (await terminateByApplicationName(target, pgcopydbAppName(run.migrationId)));
      const hadSlot = await dropSlot(source, names.slot);
      const hadWork = existsSync(cloneDir(run));
      // On a first attempt the target is at its baseline already (preflight refuses a non-empty one): a no-op.
      const reset = await resetTargetToBaseline(target, opts.baseline);
      await rm(cloneDir(run), { recursive: true, force: true });
      await ensureMarker(source, run.migrationId);
      await ensureMarker(target, run.migrationId);
      await ensurePublication(source, run.migrationId, opts.tables);
      return stopped || sessions > 0 || hadSlot || hadWork || reset.droppedSchemas.length > 0 || reset.droppedObjects > 0;
    }),
  );
}

/** The clone's last STEP line, for the heartbeat's `stage`. */
function stageOf(line: string): string | undefined {
  const msg = line.replace(/^\d\d:\d\d:\d\d \d+ +\w+ +/, '').trim();
  return /^STEP \d+:/.test(msg) ? msg : undefined;
}

/**
 * One attempt from scratch (see the header). Throws a retryable ApplicationFailure when pgcopydb
 * fails, a non-retryable one for a missing prerequisite, and the signal's reason when aborted (the
 * clone and its workers are stopped first).
 */
export async function copyFromNewSlot(run: PgcopydbRun, opts: SnapshotCopyOptions): Promise<SnapshotCopyResult> {
  const started = Date.now();
  let stage = 'preparing: previous attempt, slot, target baseline, publication';
  const estimatedRows = new Map(opts.tables.map((t) => [`${t.schema}.${t.name}`, t.estimatedRows]));
  let count: CloneProgress = { tablesDone: 0, tablesTotal: 0, bytesDone: 0, bytesTotal: opts.tables.reduce((n, t) => n + t.bytes, 0) };
  let rows = 0;
  const report = () =>
    opts.onProgress?.({
      ...copyProgress(
        { tablesDone: count.tablesDone, tablesTotal: count.tablesTotal, rows, bytes: count.bytesDone, bytesTotal: count.bytesTotal },
        Date.now() - started,
      ),
      stage,
    });
  report();
  // Heartbeats from the start: preparing (a target reset) and pgcopydb's schema steps report no table.
  const timer = setInterval(report, opts.progressEveryMs ?? 500);
  let slot: SlotSnapshot | undefined;
  await mkdir(run.workDir, { recursive: true, mode: 0o700 });
  const log = createWriteStream(logFile(run), { flags: 'a', mode: 0o600 });
  log.on('error', () => undefined); // the log is a convenience
  try {
    const startedOver = await prepare(run, opts);
    if (opts.signal?.aborted) throw opts.signal.reason;
    stage = 'creating the replication slot and its snapshot';
    slot = await createSlotWithSnapshot(run);
    await writeFile(filtersFile(run), `[exclude-schema]\n${MARKER_SCHEMA}\n`);
    stage = `copying snapshot ${slot.snapshot}`;
    log.write(`---- ${new Date().toISOString()} pgcopydb clone --snapshot ${slot.snapshot}\n`);
    count = await pgcopydbClone({
      sourceUrl: run.sourceUrl,
      targetUrl: run.targetUrl,
      dir: cloneDir(run),
      jobs: run.tableJobs,
      splitTablesLargerThan: run.splitTablesLargerThan,
      tables: opts.tables,
      applicationName: pgcopydbAppName(run.migrationId),
      snapshot: slot.snapshot,
      filters: filtersFile(run),
      signal: opts.signal,
      onLine: (line) => {
        if (!log.writableEnded) log.write(redact(line) + '\n');
        stage = stageOf(line) ?? stage;
      },
      onTableCopied: (t) => (rows += Math.max(0, estimatedRows.get(`${t.schema}.${t.name}`) ?? 0)),
      onProgress: (p) => (count = p),
    });
    stage = 'done';
    report();
    return {
      consistentPoint: slot.consistentPoint,
      tables: count.tablesTotal,
      bytes: count.bytesTotal,
      elapsedMs: Date.now() - started,
      startedOver,
    };
  } finally {
    clearInterval(timer);
    // Every copy worker imported the snapshot (or failed): the source may vacuum again.
    await slot?.connection.end().catch(() => undefined);
    log.end();
  }
}

/**
 * Any pgcopydb of the copy still running here, its sessions (a copy on another, dead worker's host
 * cannot write on after this) and this worker's files of it. Idempotent.
 */
export async function removeCopyLeftovers(run: PgcopydbRun): Promise<string[]> {
  const dropped: string[] = [];
  if (await killProcessesWithArgument(cloneDir(run))) dropped.push('pgcopydb process');
  const session = { applicationName: `${ownSessionsPrefix(run.migrationId)}-pgc-admin` };
  for (const [side, url] of [
    ['source', run.sourceUrl],
    ['target', run.targetUrl],
  ] as const) {
    const n = await withClient(url, { ...session, label: side }, (c) => terminateByApplicationName(c, pgcopydbAppName(run.migrationId)));
    if (n) dropped.push(`${n} pgcopydb session(s) on the ${side}`);
  }
  if (existsSync(run.workDir)) {
    await rm(run.workDir, { recursive: true, force: true });
    dropped.push(`pgcopydb work dir ${run.workDir}`);
  }
  return dropped;
}
