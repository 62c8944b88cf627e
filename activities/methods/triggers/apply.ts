/**
 * The apply: log rows up to the safe horizon (horizon.ts), in id order, applied on the apply side in
 * one transaction per batch that also moves the watermark, so a batch is applied entirely or not at
 * all and a retry on any worker resumes exactly after the last committed one. Rows of transactions
 * visible in the copy's snapshot are skipped (their changes are in the copy): copy and apply together
 * apply each change exactly once, whole-row tables included.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from 'pg';
import { disableUserTriggers, enableUserTriggers, enterReplicaMode, type ApplyMode } from './apply-mode';
import { changeStatements, loadTargetTable, planSteps, truncateFallbackSql, truncateSql, type LogRow, type TargetTable } from './apply-sql';
import { observeLog, SafeHorizon } from './horizon';
import type { CaptureTable, TableRef } from './keys';
import { captureLag, pruneLog, type CaptureLag } from './log';
import { captureNames, type CaptureDirection, type CaptureNames } from './names';
import { readApplyState } from './state';

/** What one applier keeps between batches: its horizon, the tables it has read, its session's mode. */
export class ApplyContext {
  readonly horizon = new SafeHorizon();
  readonly tables = new Map<string, TargetTable>();
  mode?: ApplyMode;
}

export interface ApplyBatchOptions {
  migrationId: string;
  direction: CaptureDirection;
  /** At most this many log rows per transaction (default 500). */
  maxLogRows?: number;
  /** And about this many bytes of logged rows (default 32 MB; the first row always goes). */
  maxBytes?: number;
  /** How long to wait for in-flight writers of the log before reporting idle (default 1 s). */
  horizonWaitMs?: number;
  /** One per pair of sessions, kept across batches (a new one otherwise). */
  context?: ApplyContext;
}

export interface BatchResult {
  /** Log rows applied (rows skipped because the copy had them not counted). */
  applied: number;
  /** Row changes of those log rows (sum of n_rows). */
  changes: number;
  watermark: string;
  /** Nothing to apply now. */
  idle: boolean;
  mode: ApplyMode;
}

/** SQLSTATE classes a new attempt may cure: connection, transaction rollback (serialization, deadlock), resources, operator intervention. */
const TRANSIENT_SQLSTATE = /^(08|40|53|57|58)/;

/** A change the apply side refused (a constraint, a conflicting row, a missing column): the same batch would fail the same way. */
export class ApplyError extends Error {
  constructor(
    readonly logId: string,
    readonly rel: string,
    cause: unknown,
  ) {
    super(`cannot apply change ${logId} of the log to ${rel}: ${(cause as Error).message ?? String(cause)}`);
  }
}

interface PendingRow extends LogRow {
  bytes: number;
}

/** The rows of the next batch: at most `maxRows`, and past the first only while under `maxBytes`. */
export function cutBatch<R extends { bytes: number }>(rows: R[], maxRows: number, maxBytes: number): R[] {
  let bytes = 0;
  let n = 0;
  while (n < rows.length && n < maxRows && (n === 0 || bytes < maxBytes)) bytes += rows[n++].bytes;
  return rows.slice(0, n);
}

const VISIBLE_IN_COPY = `($2::pg_snapshot IS NOT NULL AND pg_visible_in_snapshot(l.xid, $2::pg_snapshot))`;

async function tableOf(capture: Client, apply: Client, names: CaptureNames, context: ApplyContext, rel: string): Promise<TargetTable> {
  const known = context.tables.get(rel);
  if (known) return known;
  const reg = await capture.query<{ key: CaptureTable['key']; key_columns: string[] }>(
    `SELECT key, key_columns FROM ${names.registry} WHERE rel = $1`,
    [rel],
  );
  if (!reg.rowCount) throw new Error(`${rel} is not in the capture's registry ${names.registry}`);
  const table = await loadTargetTable(apply, rel, reg.rows[0].key, reg.rows[0].key_columns);
  context.tables.set(rel, table);
  return table;
}

/** Schema and name of tables named as the log names them (`qname`), resolved by the apply side's catalog. */
async function tableRefs(apply: Client, rels: string[]): Promise<TableRef[]> {
  const res = await apply.query<TableRef>(
    `SELECT n.nspname AS schema, c.relname AS name FROM unnest($1::text[]) AS r(rel)
       JOIN pg_class c ON c.oid = to_regclass(r.rel) JOIN pg_namespace n ON n.oid = c.relnamespace`,
    [rels],
  );
  return res.rows;
}

/** Applies one step (a log row, or the TRUNCATE rows of one statement) inside the batch's transaction. */
async function applyStep(apply: Client, tables: TargetTable[], step: (LogRow & { oldKeys: string | null; newRows: string | null })[]) {
  const [row] = step;
  if (row.op === 'T') {
    await apply.query('SAVEPOINT pgmig_truncate');
    try {
      await apply.query(truncateSql(tables));
    } catch (err) {
      if ((err as { code?: string }).code !== '0A000') throw err;
      await apply.query('ROLLBACK TO SAVEPOINT pgmig_truncate');
      for (const sql of truncateFallbackSql(tables)) await apply.query(sql);
    }
    return;
  }
  const [table] = tables;
  for (const s of changeStatements(table, row.op, row.oldKeys !== null)) {
    const json = s.rows === 'old' ? row.oldKeys : row.newRows;
    if (json === null) continue;
    await apply.query(s.sql, s.withGenerated ? [json, table.generated] : [json]);
  }
}

/**
 * One batch: the horizon, the log rows above the watermark up to it (skipping those the copy had), and
 * one apply-side transaction applying them and moving the watermark. A concurrent applier (a zombie
 * attempt) is harmless: the state row is locked and the watermark re-checked before anything is applied.
 */
export async function applyBatch(capture: Client, apply: Client, opts: ApplyBatchOptions): Promise<BatchResult> {
  const names = captureNames(opts.migrationId, opts.direction);
  const context = opts.context ?? new ApplyContext();
  context.mode ??= await prepareApplySession(apply);
  const mode = context.mode;
  const state = await readApplyState(apply, opts.migrationId, opts.direction);
  if (!state?.copiedAt) {
    throw ApplicationFailure.nonRetryable(
      `the ${opts.direction} apply of ${opts.migrationId} cannot start: the initial copy has not completed`,
      'CopyNotDone',
    );
  }
  const watermark = BigInt(state.watermark);
  const idle = { applied: 0, changes: 0, watermark: state.watermark, idle: true, mode };

  const deadline = Date.now() + (opts.horizonWaitMs ?? 1000);
  let horizon = context.horizon.observe(await observeLog(capture, names));
  while (horizon <= watermark && context.horizon.waiting && Date.now() < deadline) {
    await sleep(5);
    horizon = context.horizon.observe(await observeLog(capture, names));
  }
  if (horizon <= watermark) return idle;

  const maxRows = opts.maxLogRows ?? 500;
  const pending = await capture.query<PendingRow>(
    // Ordered by the bigint column, not by the text it is returned as.
    `SELECT l.id::text AS id, l.xid::text AS xid, l.rel, l.op, l.n_rows AS "nRows",
            coalesce(pg_column_size(l.old_keys), 0) + coalesce(pg_column_size(l.new_rows), 0) AS bytes
       FROM ${names.log} l WHERE l.id > $1 AND l.id <= $3 AND NOT ${VISIBLE_IN_COPY} ORDER BY l.id LIMIT $4`,
    [state.watermark, state.copySnapshot, horizon.toString(), maxRows + 1],
  );
  const batch = cutBatch(pending.rows, maxRows, opts.maxBytes ?? 32 << 20);
  const upTo = batch.length < pending.rows.length ? batch[batch.length - 1].id : horizon.toString();
  const payload = await capture.query<{ id: string; old_keys: string | null; new_rows: string | null }>(
    `SELECT l.id::text AS id, l.old_keys::text AS old_keys, l.new_rows::text AS new_rows FROM ${names.log} l WHERE l.id = ANY($1::bigint[]) ORDER BY l.id`,
    [batch.map((r) => r.id)],
  );
  const rows = batch.map((r, i) => ({ ...r, oldKeys: payload.rows[i].old_keys, newRows: payload.rows[i].new_rows }));
  const steps = planSteps(rows);
  const tables = new Map<string, TargetTable>();
  for (const r of rows) if (!tables.has(r.rel)) tables.set(r.rel, await tableOf(capture, apply, names, context, r.rel));

  await apply.query('BEGIN');
  try {
    const locked = await apply.query<{ watermark: string }>(`SELECT watermark::text FROM ${names.applyState} FOR UPDATE`);
    if (locked.rows[0].watermark !== state.watermark) {
      await apply.query('ROLLBACK');
      return { ...idle, watermark: locked.rows[0].watermark, idle: false };
    }
    // Deferrable constraints are checked at commit, as on the source where each statement saw its own end state.
    await apply.query('SET CONSTRAINTS ALL DEFERRED');
    // Where the role may not skip triggers (origin mode), the user's triggers on the tables it owns are off
    // for this transaction only: its DDL commits with the batch, so no other session ever sees them off.
    const disabled = mode === 'origin' ? await disableUserTriggers(apply, await tableRefs(apply, [...tables.keys()])) : [];
    for (const step of steps) {
      try {
        await applyStep(
          apply,
          step.map((r) => tables.get(r.rel) as TargetTable),
          step,
        );
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (typeof code !== 'string' || TRANSIENT_SQLSTATE.test(code)) throw err;
        throw new ApplyError(step[0].id, step.map((r) => r.rel).join(', '), err);
      }
    }
    await enableUserTriggers(apply, disabled);
    await apply.query(`UPDATE ${names.applyState} SET watermark = $1, applied_at = now(), mode = $2`, [upTo, mode]);
    await apply.query('COMMIT');
  } catch (err) {
    await apply.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  return { applied: rows.length, changes: rows.reduce((n, r) => n + r.nRows, 0), watermark: upTo, idle: false, mode };
}

/** The apply session: writable even on a frozen side, replica mode when the role may. */
export async function prepareApplySession(apply: Client): Promise<ApplyMode> {
  await apply.query('SET default_transaction_read_only = off');
  return enterReplicaMode(apply);
}

export interface ApplyProgress extends CaptureLag {
  mode: ApplyMode;
  /** Log rows and row changes applied by this call. */
  appliedLogRows: number;
  appliedChanges: number;
}

export interface ApplyUntilOptions extends Omit<ApplyBatchOptions, 'context' | 'horizonWaitMs'> {
  /** Checked after every batch: true ends the call (e.g. once the cutover marker row is applied). */
  stop?: () => boolean | Promise<boolean>;
  signal?: AbortSignal;
  /** Every `progressEveryMs` (default 1 s) and at the end: for heartbeats. */
  onProgress?: (p: ApplyProgress) => void | Promise<void>;
  progressEveryMs?: number;
  /** Pause when there is nothing to apply (default 25 ms: the drain waits on it at cutover). */
  idleWaitMs?: number;
  /** Prune the applied rows from the log this often (default 3 s). */
  pruneEveryMs?: number;
  /** Tries of a change the apply side refuses, within this call, before failing for good (default 3). */
  attemptsPerChange?: number;
}

export interface ApplyUntilResult {
  reason: 'stopped' | 'aborted';
  watermark: string;
  appliedLogRows: number;
  appliedChanges: number;
  mode: ApplyMode;
}

/**
 * Applies batch after batch for a long-running activity, until `stop()` says so or `signal` aborts
 * (between batches: each is short, and commits or rolls back whole). Prunes the log behind the
 * watermark and reports progress. A change the apply side refuses is tried `attemptsPerChange` times,
 * then fails non-retryable with its error, table and log id; other errors (a lost connection) are
 * thrown as they are, for the caller's retry with new sessions.
 */
export async function applyUntil(capture: Client, apply: Client, opts: ApplyUntilOptions): Promise<ApplyUntilResult> {
  const context = new ApplyContext();
  const idleWaitMs = opts.idleWaitMs ?? 25;
  const totals = { appliedLogRows: 0, appliedChanges: 0 };
  const failure = { logId: '', count: 0 };
  let watermark = '0';
  let pruned = Date.now();
  let reported = 0;
  const report = async (mode: ApplyMode) => {
    reported = Date.now();
    await opts.onProgress?.({ ...(await captureLag(capture, apply, opts.migrationId, opts.direction)), mode, ...totals });
  };
  for (;;) {
    if (opts.signal?.aborted) return { reason: 'aborted', watermark, mode: context.mode ?? 'origin', ...totals };
    let batch: BatchResult;
    try {
      batch = await applyBatch(capture, apply, { ...opts, context, horizonWaitMs: idleWaitMs });
    } catch (err) {
      if (!(err instanceof ApplyError)) throw err;
      failure.count = failure.logId === err.logId ? failure.count + 1 : 1;
      failure.logId = err.logId;
      if (failure.count >= (opts.attemptsPerChange ?? 3)) throw ApplicationFailure.nonRetryable(err.message, 'ApplyFailed');
      await sleep(100 * failure.count, undefined, { signal: opts.signal }).catch(() => undefined);
      continue;
    }
    watermark = batch.watermark;
    totals.appliedLogRows += batch.applied;
    totals.appliedChanges += batch.changes;
    if (Date.now() - pruned >= (opts.pruneEveryMs ?? 3000)) {
      await pruneLog(capture, opts.migrationId, opts.direction, watermark);
      pruned = Date.now();
    }
    const stopping = await opts.stop?.();
    if (stopping || Date.now() - reported >= (opts.progressEveryMs ?? 1000)) await report(batch.mode);
    if (stopping) return { reason: 'stopped', watermark, mode: batch.mode, ...totals };
    if (batch.idle) await sleep(idleWaitMs, undefined, { signal: opts.signal }).catch(() => undefined);
  }
}
