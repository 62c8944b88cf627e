/**
 * The hold's rollback path for the triggers method, where the source cannot subscribe (Heroku): the
 * same capture on the target, installed inside the window before the target takes its first write,
 * applied to the source by the migration's own session beside the workflow. Both sides hold the same
 * data when it starts, so there is no copy: every captured change is applied.
 */
import { Context } from '@temporalio/activity';
import type { Client } from 'pg';
import type { TableInventory } from '../../../contract/plan';
import { HEARTBEAT_EVERY_MS } from '../../heartbeat';
import { replicationNames } from '../cdc/marker';
import { applyUntil } from './apply';
import { installCapture, removeCapture } from './capture';
import type { KeylessPolicy } from './keys';
import { capturedTables } from './names';
import { startWithoutCopy } from './state';

/** Capture on the target, an apply state on the source that applies every change (no copy). Idempotent. */
export async function startReverseCapture(
  target: Client,
  source: Client,
  args: { migrationId: string; tables: TableInventory[]; policy: KeylessPolicy },
): Promise<string[]> {
  const installed = await installCapture(target, {
    migrationId: args.migrationId,
    direction: 'reverse',
    tables: capturedTables(args.migrationId, args.tables),
    policy: args.policy,
  });
  await startWithoutCopy(source, args.migrationId, 'reverse');
  return [`change capture ${installed.schema} (target) on ${installed.installed.length + installed.alreadyInstalled.length} table(s)`];
}

/** Applies the target's changes to the source until the rollback's marker (id 2) has arrived, or until cancelled. */
export async function applyReverse(target: Client, source: Client, migrationId: string): Promise<{ watermark: string }> {
  const ctx = Context.current();
  let details: unknown = { stage: 'applying the target changes to the source' };
  const timer = setInterval(() => ctx.heartbeat(details), HEARTBEAT_EVERY_MS);
  try {
    const { marker } = replicationNames(migrationId);
    const result = await applyUntil(target, source, {
      migrationId,
      direction: 'reverse',
      signal: ctx.cancellationSignal,
      stop: async () => (await source.query(`SELECT 1 FROM ${marker} WHERE id = 2`)).rowCount === 1,
      onProgress: (p) => {
        details = { stage: 'applying the target changes to the source', ...p };
      },
    });
    if (result.reason === 'aborted') ctx.cancellationSignal.throwIfAborted();
    return { watermark: result.watermark };
  } finally {
    clearInterval(timer);
  }
}

/** The reverse capture from the target and its apply state from the source. Idempotent. */
export async function stopReverseCapture(target: Client, source: Client, migrationId: string): Promise<string[]> {
  return [
    ...(await removeCapture(target, migrationId, 'reverse')).map((d) => `${d} (target)`),
    ...(await removeCapture(source, migrationId, 'reverse')).map((d) => `${d} (source)`),
  ];
}
