/** The change log's backlog (what the apply has yet to do) and its pruning, on the capture side. */
import type { Client } from 'pg';
import { captureNames, type CaptureDirection } from './names';
import { readApplyState } from './state';

export interface CaptureLag {
  /** Log rows above the watermark (rows the copy had not counted). */
  pendingLogRows: number;
  /** Row changes in them; estimated from the first rows when the backlog is larger than `BACKLOG_SCAN`. */
  pendingChanges: number;
  estimated: boolean;
  /** Age of the oldest change not yet applied; 0 when none. */
  lagSeconds: number;
  watermark: string;
  /** Rows in the log, applied and not yet pruned included. */
  logRows: number;
}

/** Pending rows counted exactly up to this many; beyond, the backlog is estimated. */
const BACKLOG_SCAN = 100_000;

export async function captureLag(capture: Client, apply: Client, migrationId: string, direction: CaptureDirection): Promise<CaptureLag> {
  const names = captureNames(migrationId, direction);
  const state = await readApplyState(apply, migrationId, direction);
  const watermark = state?.watermark ?? '0';
  const res = await capture.query<{ rows: number; changes: string; lag: number | null; log_rows: string; last_id: string }>(
    `WITH p AS (SELECT n_rows, captured_at FROM ${names.log}
                 WHERE id > $1 AND NOT ($2::pg_snapshot IS NOT NULL AND pg_visible_in_snapshot(xid, $2::pg_snapshot))
                 ORDER BY id LIMIT $3)
     SELECT count(*)::int AS rows, coalesce(sum(n_rows), 0)::text AS changes,
            extract(epoch FROM clock_timestamp() - min(captured_at))::float8 AS lag,
            (SELECT count(*) FROM ${names.log})::text AS log_rows,
            (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM ${names.logSequence})::text AS last_id
       FROM p`,
    [watermark, state?.copySnapshot ?? null, BACKLOG_SCAN],
  );
  const r = res.rows[0];
  const estimated = r.rows >= BACKLOG_SCAN;
  // Beyond the scan, every id handed out above the watermark counts (an upper bound: some were rolled back).
  const pendingLogRows = estimated ? Number(BigInt(r.last_id) - BigInt(watermark)) : r.rows;
  const changes = Number(r.changes);
  return {
    pendingLogRows,
    pendingChanges: estimated ? Math.round((changes / r.rows) * pendingLogRows) : changes,
    estimated,
    lagSeconds: Math.max(0, r.lag ?? 0),
    watermark,
    logRows: Number(r.log_rows),
  };
}

/** Deletes the applied rows (ids up to the watermark); returns how many. The capture side may be frozen: the session stays writable. */
export async function pruneLog(capture: Client, migrationId: string, direction: CaptureDirection, watermark: string): Promise<number> {
  await capture.query('SET default_transaction_read_only = off');
  const res = await capture.query(`DELETE FROM ${captureNames(migrationId, direction).log} WHERE id <= $1`, [watermark]);
  return res.rowCount ?? 0;
}
