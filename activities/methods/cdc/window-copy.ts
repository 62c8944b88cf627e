/**
 * Inside the write-freeze window, what a method's change stream does not carry: UNLOGGED tables (logical
 * decoding never sees them, so neither a publication nor a DMS task does) and large objects (no change
 * stream sees them). Writes are frozen, so neither can change any more: a copy now is final.
 */
import type { Client } from 'pg';
import type { TableInventory } from '../../../contract/plan';
import { copyLargeObjects } from '../../database/large-objects';
import { disableUserTriggers, enableUserTriggers, enterReplicaMode, type ApplyMode } from '../triggers/apply-mode';
import { copyLeaf, emptyTargets, leavesOf } from '../triggers/snapshot-copy';

export interface WindowCopyResult {
  tables: number;
  rows: number;
  /** Bytes of COPY data streamed. */
  bytes: number;
  objects: number;
  objectBytes: number;
  /** Whether the target skipped its triggers and foreign-key checks (replica) or had the user's triggers disabled (origin). */
  mode: ApplyMode;
  elapsedMs: number;
}

/**
 * Empties the UNLOGGED tables on the target and copies them from the source (one snapshot), then the
 * large objects. Idempotent: a retry empties and copies again, and a large object is replaced. The rows
 * arrive as the source has them: with session_replication_role = replica where the role may set it, else
 * with the user's triggers on those tables disabled for the copy's transaction.
 */
export async function copyInWindow(
  source: Client,
  target: Client,
  args: { unlogged: TableInventory[]; largeObjects: boolean },
): Promise<WindowCopyResult> {
  const started = Date.now();
  const counters = { bytes: 0, rows: 0 };
  await target.query('SET default_transaction_read_only = off');
  const mode = await enterReplicaMode(target);
  let tables = 0;
  if (args.unlogged.length) {
    await source.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      const leaves = await leavesOf(source, args.unlogged);
      await emptyTargets(target, leaves);
      await target.query('BEGIN');
      try {
        const disabled = mode === 'origin' ? await disableUserTriggers(target, args.unlogged) : [];
        for (const leaf of leaves) await copyLeaf(source, target, leaf, counters);
        await enableUserTriggers(target, disabled);
        await target.query('COMMIT');
      } catch (err) {
        await target.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
      tables = leaves.length;
    } finally {
      await source.query('COMMIT').catch(() => undefined);
    }
  }
  const objects = args.largeObjects ? await copyLargeObjects(source, target) : { objects: 0, bytes: 0 };
  return { tables, ...counters, objects: objects.objects, objectBytes: objects.bytes, mode, elapsedMs: Date.now() - started };
}
