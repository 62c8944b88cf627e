/**
 * What pgcopydb keeps in the databases, read and changed with SQL (and, for the sentinel, with
 * pgcopydb's own CLI): the logical replication slot and the sentinel `pgcopydb.sentinel` on the
 * source, the replication origin on the target, and the target's pre-migration baseline.
 *
 * Every session here is ours (`adminAppName`), never pgcopydb's, so terminating a killed run's
 * sessions by pgcopydb's application_name never cuts our own.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/common';
import { Client, type ClientConfig } from 'pg';
import { listUserSchemas } from '../../database/inventory';
import { qi, terminateByApplicationName, withClient } from '../../database/pg';
import { redact } from '../../secrets';
import type { TargetBaseline } from '../../database/target-reset';
import { LSN_RE, lsnToNumber, maxLsn } from './lsn';
import { adminAppName, baselineFile, label, pgcopydbNames, type PgcopydbNames, type PgcopydbRun } from './names';
import { failure, pgcopydbCommand, pgcopydbCommandRetrying } from './process';

export async function writableSession(client: Client): Promise<void> {
  // The source may be frozen (default_transaction_read_only) by the time we clean up.
  await client.query('SET default_transaction_read_only = off');
}

// ---------------------------------------------------------------------------------------------
// Source: slot and sentinel

export interface SourceState {
  slotExists: boolean;
  slotActivePid: number | null;
  sentinel?: SentinelRow;
}

interface SentinelRow {
  startpos: string;
  endpos: string;
  apply: boolean;
  write_lsn: string;
  flush_lsn: string;
  replay_lsn: string;
}

async function readSentinel(client: Client): Promise<SentinelRow | undefined> {
  const exists = await client.query(`SELECT to_regclass('pgcopydb.sentinel') IS NOT NULL AS e`);
  if (!exists.rows[0].e) return undefined;
  const res = await client.query(
    'SELECT startpos::text, endpos::text, apply, write_lsn::text, flush_lsn::text, replay_lsn::text FROM pgcopydb.sentinel LIMIT 1',
  );
  return res.rows[0] as SentinelRow | undefined;
}

export async function sourceState(client: Client, names: PgcopydbNames): Promise<SourceState> {
  const slot = await client.query('SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [names.slotName]);
  return { slotExists: (slot.rowCount ?? 0) > 0, slotActivePid: slot.rows[0]?.active_pid ?? null, sentinel: await readSentinel(client) };
}

/** Drops the slot, retrying while its walsender (just terminated) lets go of it. */
export async function dropSlot(client: Client, names: PgcopydbNames): Promise<boolean> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    await terminateByApplicationName(client, names.applicationName);
    const slot = await client.query('SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [names.slotName]);
    if (!slot.rowCount) return false;
    const pid = slot.rows[0].active_pid as number | null;
    if (pid !== null) await client.query('SELECT pg_terminate_backend($1)', [pid]).catch(() => undefined);
    try {
      await client.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [names.slotName]);
      return true;
    } catch (err) {
      // 55006: slot is active for another PID (its walsender is still exiting)
      if ((err as { code?: string }).code !== '55006' || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

export async function dropSentinel(client: Client): Promise<boolean> {
  const had = await client.query(`SELECT to_regclass('pgcopydb.sentinel') IS NOT NULL AS e`);
  await client.query('DROP TABLE IF EXISTS pgcopydb.sentinel');
  // The schema is pgcopydb's; leave it if someone put something else in it.
  await client.query(`DO $$ BEGIN DROP SCHEMA IF EXISTS pgcopydb; EXCEPTION WHEN dependent_objects_still_exist THEN NULL; END $$`);
  return had.rows[0].e as boolean;
}

/** A consistent start: the slot made over the replication protocol exports the snapshot to copy with. */
export interface SlotSnapshot {
  lsn: string;
  snapshot: string;
  /** Holds the exported snapshot: open until the copy has imported it everywhere. */
  connection: Client;
}

/**
 * pgcopydb 0.10 exports its snapshot first and creates the slot afterwards with
 * pg_create_logical_replication_slot(): transactions that commit in between are neither copied nor
 * streamed (the tests lost writes there). We create the slot first, over the replication protocol
 * with EXPORT_SNAPSHOT, create the sentinel ourselves and hand the snapshot to pgcopydb
 * (`--snapshot`; `--resume --not-consistent` makes it accept an existing slot and sentinel).
 */
export async function createSlotWithSnapshot(run: PgcopydbRun): Promise<SlotSnapshot> {
  const names = pgcopydbNames(run.migrationId);
  const connection = new Client({
    connectionString: run.sourceUrl,
    replication: 'database',
    application_name: adminAppName(run, 'slot'),
    connectionTimeoutMillis: 10_000,
  } as ClientConfig & { replication: string });
  connection.on('error', () => undefined);
  try {
    await connection.connect();
    const res = await connection.query(`CREATE_REPLICATION_SLOT ${qi(names.slotName)} LOGICAL "wal2json" EXPORT_SNAPSHOT`);
    const row = res.rows[0] as { consistent_point: string; snapshot_name: string };
    return { lsn: row.consistent_point, snapshot: row.snapshot_name, connection };
  } catch (err) {
    await connection.end().catch(() => undefined);
    throw failure('creating the replication slot', [redact((err as Error).message)]);
  }
}

/**
 * Points the sentinel at a new slot's start, apply off (the follow prefetches until the clone is
 * done). An existing sentinel is updated rather than recreated: a start-over keeps the endpos
 * someone may have set meanwhile.
 */
export async function startSentinel(run: PgcopydbRun, startpos: string): Promise<void> {
  const reset = await withClient(run.sourceUrl, { label: 'source', applicationName: adminAppName(run, 'admin') }, async (c) => {
    await writableSession(c);
    if (!(await readSentinel(c))) return false;
    await c.query(`UPDATE pgcopydb.sentinel SET startpos = $1, apply = false, write_lsn = '0/0', flush_lsn = '0/0', replay_lsn = '0/0'`, [
      startpos,
    ]);
    return true;
  });
  if (!reset) {
    const sentinel = await pgcopydbCommandRetrying(run, ['stream', 'sentinel', 'create', '--startpos', startpos]);
    if (sentinel.code !== 0) throw failure('pgcopydb stream sentinel create', sentinel.tail);
  }
}

/** A start-over: nothing may be applied until the new clone is done; the sentinel (and its endpos) stays. */
export async function stopSentinelApply(client: Client): Promise<void> {
  await client.query('UPDATE pgcopydb.sentinel SET apply = false');
}

/**
 * Sets the sentinel endpos (`pgcopydb stream sentinel set endpos <lsn>`): the follow stops once
 * everything committed before `lsn` is applied, and `runCloneFollow` returns. Works on a frozen
 * source and from any worker (SQL on the source through the pgcopydb CLI).
 */
export async function setEndpos(run: PgcopydbRun, lsn: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
  if (!LSN_RE.test(lsn)) throw ApplicationFailure.nonRetryable(`setEndpos: "${lsn}" is not an LSN (like 0/16B3748)`, 'BadLsn');
  // Idempotent: a lost connection (0.10 may even crash on it) is tried again at once.
  for (let attempt = 1; ; attempt++) {
    const out = await pgcopydbCommand(run, ['stream', 'sentinel', 'set', 'endpos', lsn], opts.signal);
    if (out.code === 0) return;
    if (out.tail.some((l) => /relation "pgcopydb.sentinel" does not exist/.test(l))) {
      throw ApplicationFailure.retryable(
        `setEndpos: pgcopydb has not set up its sentinel on ${label('source', run.sourceUrl)} yet`,
        'PgcopydbNotStarted',
      );
    }
    if (attempt >= 3 || opts.signal?.aborted) throw failure('pgcopydb stream sentinel set endpos', out.tail);
    await new Promise((r) => setTimeout(r, 500));
  }
}

// ---------------------------------------------------------------------------------------------
// Target: replication origin and baseline

export async function originExists(client: Client, origin: string): Promise<boolean> {
  const res = await client.query('SELECT 1 FROM pg_replication_origin WHERE roname = $1', [origin]);
  return (res.rowCount ?? 0) > 0;
}

export async function dropOrigin(client: Client, names: PgcopydbNames): Promise<boolean> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    await terminateByApplicationName(client, names.applicationName);
    if (!(await originExists(client, names.origin))) return false;
    try {
      await client.query('SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname = $1', [names.origin]);
      return true;
    } catch (err) {
      // 55006: replication origin is in use by a session that is still exiting
      if ((err as { code?: string }).code !== '55006' || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** The target as the first attempt found it: what a restart puts it back to. */
export async function targetBaseline(run: PgcopydbRun, client: Client): Promise<TargetBaseline> {
  if (run.baseline) return run.baseline;
  if (existsSync(baselineFile(run))) return JSON.parse(await readFile(baselineFile(run), 'utf8')) as TargetBaseline;
  const extensions = (await client.query('SELECT extname FROM pg_extension ORDER BY 1')).rows.map((r) => r.extname as string);
  const largeObjects = Number((await client.query('SELECT count(*) AS n FROM pg_largeobject_metadata')).rows[0].n);
  const baseline: TargetBaseline = { schemas: await listUserSchemas(client), extensions, largeObjects };
  await writeFile(baselineFile(run), JSON.stringify(baseline), { mode: 0o600 });
  return baseline;
}

// ---------------------------------------------------------------------------------------------
// Status

export interface PgcopydbStatus {
  /** True once the clone is done and pgcopydb applies changes (its sentinel's apply flag). */
  streaming: boolean;
  /** The sentinel exists (pgcopydb set up CDC on the source). */
  setUp: boolean;
  slotExists: boolean;
  /** Whether a walsender is reading the slot right now. */
  slotActive: boolean;
  startpos?: string;
  /** 0/0 or the startpos until someone set it. */
  endpos?: string;
  /** Received (written to the CDC files) and flushed, as pgcopydb reports them. */
  writeLsn?: string;
  flushLsn?: string;
  /** Commit LSN of the last source transaction applied on the target: the replication origin's progress, updated atomically with the apply. */
  appliedLsn?: string;
  /** The furthest of appliedLsn and the sentinel's replay_lsn (pgcopydb's own report, every 10 s). */
  replayLsn?: string;
  /** pg_current_wal_lsn() on the source and the bytes of WAL not yet applied on the target. */
  currentLsn: string;
  lagBytes?: number;
}

/** Reads the sentinel (source), the slot (source) and the origin's progress (target). Read-only. */
export async function pgcopydbStreaming(run: PgcopydbRun): Promise<PgcopydbStatus> {
  const names = pgcopydbNames(run.migrationId);
  const src = await withClient(run.sourceUrl, { label: 'source', applicationName: adminAppName(run, 'status') }, async (c) => {
    const state = await sourceState(c, names);
    const lsn = await c.query('SELECT pg_current_wal_lsn()::text AS lsn');
    return { ...state, currentLsn: lsn.rows[0].lsn as string };
  });
  const originLsn = await withClient(run.targetUrl, { label: 'target', applicationName: adminAppName(run, 'status') }, async (c) => {
    if (!(await originExists(c, names.origin))) return undefined;
    const res = await c.query('SELECT pg_replication_origin_progress($1, true)::text AS lsn', [names.origin]);
    return (res.rows[0]?.lsn as string | null) ?? undefined;
  });
  const s = src.sentinel;
  const replayLsn = maxLsn(originLsn, s && s.replay_lsn !== '0/0' ? s.replay_lsn : undefined);
  const lagBytes = s?.apply && replayLsn ? Math.max(0, lsnToNumber(src.currentLsn) - lsnToNumber(replayLsn)) : undefined;
  return {
    streaming: s?.apply === true,
    setUp: s !== undefined,
    slotExists: src.slotExists,
    slotActive: src.slotActivePid !== null,
    startpos: s?.startpos,
    endpos: s?.endpos,
    writeLsn: s?.write_lsn,
    flushLsn: s?.flush_lsn,
    appliedLsn: originLsn,
    replayLsn,
    currentLsn: src.currentLsn,
    lagBytes,
  };
}
