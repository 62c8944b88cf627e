/**
 * The apply state, on the apply side (`_pgmig.<base>_apply`, one row): the watermark (every log id up
 * to it is applied, or was already in the copy), the initial copy's snapshot and when the copy ended,
 * and the apply's mode. The applier updates the watermark in the transaction that applies the changes
 * up to it, so whichever worker resumes starts exactly after the last committed batch.
 */
import type { Client } from 'pg';
import { qi } from '../../database/pg';
import { MARKER_SCHEMA } from '../cdc/marker';
import type { CopyProgress } from '../method';
import type { ApplyMode } from './apply-mode';
import { captureNames, type CaptureDirection } from './names';

export interface ApplyState {
  /** bigint as a decimal string. */
  watermark: string;
  /** pg_current_snapshot() of the copy; log rows of transactions visible in it are in the copy already. Null: no copy (apply every row). */
  copySnapshot: string | null;
  copyStartedAt: Date | null;
  /** Set once the copy ended (or at once when there is no copy): the apply may start. */
  copiedAt: Date | null;
  mode: ApplyMode | null;
  appliedAt: Date | null;
  /** The copy's progress as last recorded (percent, rate, ETA), for `status` while it runs. */
  copyProgress: CopyProgress | null;
}

async function ensureApplyState(apply: Client, migrationId: string, direction: CaptureDirection): Promise<string> {
  const table = captureNames(migrationId, direction).applyState;
  // The apply side may be frozen read-only for everyone but the migration's own sessions (reverse: the source).
  await apply.query('SET default_transaction_read_only = off');
  await apply.query(`CREATE SCHEMA IF NOT EXISTS ${qi(MARKER_SCHEMA)}`);
  await apply.query(
    `CREATE TABLE IF NOT EXISTS ${table} (
       one boolean PRIMARY KEY DEFAULT true CHECK (one),
       watermark bigint NOT NULL DEFAULT 0,
       copy_snapshot text,
       copy_started_at timestamptz,
       copied_at timestamptz,
       mode text,
       applied_at timestamptz,
       copy_progress jsonb)`,
  );
  return table;
}

/** A new copy starts: its snapshot, recorded (committed) before any row is copied; the watermark starts over. */
export async function recordCopyStart(apply: Client, migrationId: string, direction: CaptureDirection, snapshot: string): Promise<void> {
  const table = await ensureApplyState(apply, migrationId, direction);
  await apply.query(
    `INSERT INTO ${table} (copy_snapshot, copy_started_at) VALUES ($1, now())
       ON CONFLICT (one) DO UPDATE SET copy_snapshot = $1, copy_started_at = now(), copied_at = NULL, watermark = 0, applied_at = NULL`,
    [snapshot],
  );
}

/** Where the copy is, for the watch (another activity, perhaps on another worker). */
export async function recordCopyProgress(
  apply: Client,
  migrationId: string,
  direction: CaptureDirection,
  progress: CopyProgress,
): Promise<void> {
  await apply.query(`UPDATE ${captureNames(migrationId, direction).applyState} SET copy_progress = $1`, [JSON.stringify(progress)]);
}

export async function markCopied(apply: Client, migrationId: string, direction: CaptureDirection): Promise<void> {
  await apply.query(`UPDATE ${captureNames(migrationId, direction).applyState} SET copied_at = now()`);
}

/**
 * For a direction without an initial copy (reverse, installed while both sides are equal): every
 * captured row is to be applied. Idempotent: an existing state (and its watermark) is kept.
 */
export async function startWithoutCopy(apply: Client, migrationId: string, direction: CaptureDirection): Promise<void> {
  const table = await ensureApplyState(apply, migrationId, direction);
  await apply.query(`INSERT INTO ${table} (copied_at) VALUES (now()) ON CONFLICT (one) DO NOTHING`);
}

/** The state, or null before any copy or start. */
export async function readApplyState(apply: Client, migrationId: string, direction: CaptureDirection): Promise<ApplyState | null> {
  const table = captureNames(migrationId, direction).applyState;
  const exists = await apply.query(`SELECT to_regclass($1) IS NOT NULL AS present`, [table]);
  if (!exists.rows[0].present) return null;
  const res = await apply.query<ApplyState>(
    `SELECT watermark::text AS watermark, copy_snapshot AS "copySnapshot", copy_started_at AS "copyStartedAt",
            copied_at AS "copiedAt", mode, applied_at AS "appliedAt", copy_progress AS "copyProgress"
       FROM ${table}`,
  );
  return res.rows[0] ?? null;
}
