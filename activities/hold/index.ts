/**
 * The hold after go-live: logical replication target -> source, started inside the window before the
 * target takes its first write, so a rollback during the hold loses nothing.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from 'pg';
import type { SecretRef } from '../../contract/input';
import type { TableInventory } from '../../contract/plan';
import type { ActivityContext, CdcArgs } from '../context';
import { withClient } from '../database/pg';
import { ensureMarker } from '../methods/cdc/marker';
import { drainReverse, startReverseReplication, stopReverseReplication } from '../methods/logical/reverse';
import type { KeylessPolicy } from '../methods/triggers/keys';
import { applyReverse, startReverseCapture, stopReverseCapture } from '../methods/triggers/reverse';

/**
 * Reverse replication: the source's subscribing role, and (via replicationUrl / target.url) the target it
 * connects to; or, for the triggers method (no `sourceReplicationUrl`), a capture on the target applied
 * to the source by the migration's own sessions.
 */
export interface ReverseArgs extends CdcArgs {
  sourceReplicationUrl?: SecretRef;
  /** triggers: how tables without a key are matched (as in the forward direction). */
  tablesWithoutPrimaryKey?: KeylessPolicy;
}

const byCapture = (args: ReverseArgs) => args.method === 'triggers';

export function createHoldActivities({ resolve, admin, subscriberUrl, both }: ActivityContext) {
  /** With the replication roles on both sides: they own the slot, publication and subscription of the reverse path. */
  const withReplicationRoles = async <T>(args: ReverseArgs, fn: (target: Client, source: Client, targetUrl: string) => Promise<T>) => {
    if (!args.sourceReplicationUrl) {
      throw ApplicationFailure.nonRetryable(
        'reverse replication needs source.replicationUrl (the role that subscribes on the source)',
        'NoSubscriber',
      );
    }
    const [targetReplUrl, sourceSubUrl] = await Promise.all([
      subscriberUrl(args),
      resolve(args.sourceReplicationUrl, 'source.replicationUrl'),
    ]);
    return withClient(targetReplUrl, admin(args.migrationId, 'target (replication role)'), (t) =>
      withClient(sourceSubUrl, admin(args.migrationId, 'source (replication role)'), (s) => fn(t, s, targetReplUrl)),
    );
  };

  return {
    /** Target -> source, before go-live, for a lossless rollback during the hold. */
    async startReverseReplication(args: ReverseArgs & { tables: TableInventory[]; appRoles: string[] }): Promise<string[]> {
      // A dump-restore migration has no marker yet (a replication one kept its own): made by the usual roles, so every step can use it.
      await both(args, async (s, t) => {
        await ensureMarker(s, args.migrationId);
        await ensureMarker(t, args.migrationId);
      });
      if (byCapture(args)) {
        return both(args, (s, t) =>
          startReverseCapture(t, s, {
            migrationId: args.migrationId,
            tables: args.tables,
            policy: args.tablesWithoutPrimaryKey ?? 'refuse',
          }),
        );
      }
      // On the target the replication role (RDS: the master user, with rds_replication) owns the slot and publication.
      return withReplicationRoles(args, (t, s, targetConnUrl) =>
        startReverseReplication(t, s, { migrationId: args.migrationId, targetConnUrl, tables: args.tables, appRoles: args.appRoles }),
      );
    },

    /** triggers: the target's captured changes applied to the source, beside the workflow until the rollback's marker. */
    async applyReverse(args: ReverseArgs): Promise<{ watermark: string }> {
      return both(args, (s, t) => applyReverse(t, s, args.migrationId));
    },

    /** The rollback marker committed on the frozen target has reached the source (through the subscription or the apply). */
    async drainReverse(args: ReverseArgs & { timeoutMs: number }): Promise<{ waitedMs: number }> {
      if (byCapture(args)) return both(args, (s, t) => drainReverse(t, s, args.migrationId, args.timeoutMs));
      return withReplicationRoles(args, (t, s) => drainReverse(t, s, args.migrationId, args.timeoutMs));
    },

    async stopReverseReplication(args: ReverseArgs & { tables?: TableInventory[] }): Promise<string[]> {
      if (byCapture(args)) return both(args, (s, t) => stopReverseCapture(t, s, args.migrationId));
      return withReplicationRoles(args, (t, s) => stopReverseReplication(t, s, args.migrationId, args.tables ?? []));
    },
  };
}
