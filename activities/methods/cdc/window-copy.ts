/**
 * Inside the write-freeze window, what a method's change stream does not carry: UNLOGGED tables (logical
 * decoding never sees them, so neither a publication nor a DMS task does) and large objects (no change
 * stream sees them). Writes are frozen, so neither can change any more: a copy now is final.
 */
import type { Client } from 'pg';
import type { TableInventory } from '../../../contract/plan';
import { copyLargeObjects } from '../../database/large-objects';
import { replayLargeObjectPrivileges } from '../../database/roles';
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
 * Empties `tables` on the target and copies them from the source (one snapshot). Idempotent: a retry
 * empties and copies again. The rows arrive as the source has them: with session_replication_role =
 * replica where the role may set it, else with the user's triggers on those tables disabled for the
 * copy's transaction.
 */
export async function copyUnloggedTables(
  source: Client,
  target: Client,
  tables: TableInventory[],
): Promise<{ tables: number; rows: number; bytes: number; mode: ApplyMode }> {
  const counters = { bytes: 0, rows: 0 };
  await target.query('SET default_transaction_read_only = off');
  const mode = await enterReplicaMode(target);
  if (!tables.length) return { tables: 0, ...counters, mode };
  await source.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const leaves = await leavesOf(source, tables);
    await emptyTargets(target, leaves);
    await target.query('BEGIN');
    try {
      const disabled = mode === 'origin' ? await disableUserTriggers(target, tables) : [];
      for (const leaf of leaves) await copyLeaf(source, target, leaf, counters);
      await enableUserTriggers(target, disabled);
      await target.query('COMMIT');
    } catch (err) {
      await target.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
    return { tables: leaves.length, ...counters, mode };
  } finally {
    await source.query('COMMIT').catch(() => undefined);
  }
}

/**
 * The UNLOGGED tables, then (when asked) the large objects, which replace those of the same oid, with
 * their owners and privileges when the roles were replayed (`roleMap`). Idempotent.
 */
export async function copyInWindow(
  source: Client,
  target: Client,
  args: { unlogged: TableInventory[]; largeObjects: boolean; roleMap?: Record<string, string> },
): Promise<WindowCopyResult> {
  const started = Date.now();
  const tables = await copyUnloggedTables(source, target, args.unlogged);
  const objects = args.largeObjects ? await copyLargeObjects(source, target) : { objects: 0, bytes: 0 };
  if (objects.objects && args.roleMap) await replayLargeObjectPrivileges(source, target, { map: args.roleMap });
  return { ...tables, objects: objects.objects, objectBytes: objects.bytes, elapsedMs: Date.now() - started };
}
