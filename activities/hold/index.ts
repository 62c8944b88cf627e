/**
 * The hold after go-live: logical replication target -> source, started inside the window before the
 * target takes its first write, so a rollback during the hold loses nothing.
 */
import type { Client } from 'pg';
import type { SecretRef } from '../../contract/input';
import type { TableInventory } from '../../contract/plan';
import type { ActivityContext, CdcArgs } from '../context';
import { withClient } from '../database/pg';
import { ensureMarker } from '../methods/cdc/marker';
import { drainReverse, startReverseReplication, stopReverseReplication } from '../methods/logical/reverse';

/** Reverse replication: the source's subscribing role, and (via replicationUrl / target.url) the target it connects to. */
export interface ReverseArgs extends CdcArgs {
  sourceReplicationUrl: SecretRef;
}

export function createHoldActivities({ resolve, admin, subscriberUrl, both }: ActivityContext) {
  /** With the replication roles on both sides: they own the slot, publication and subscription of the reverse path. */
  const withReplicationRoles = async <T>(args: ReverseArgs, fn: (target: Client, source: Client, targetUrl: string) => Promise<T>) => {
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
      // On the target the replication role (RDS: the master user, with rds_replication) owns the slot and publication.
      return withReplicationRoles(args, (t, s, targetConnUrl) =>
        startReverseReplication(t, s, { migrationId: args.migrationId, targetConnUrl, tables: args.tables, appRoles: args.appRoles }),
      );
    },

    async drainReverse(args: ReverseArgs & { timeoutMs: number }): Promise<{ waitedMs: number }> {
      return withReplicationRoles(args, (t, s) => drainReverse(t, s, args.migrationId, args.timeoutMs));
    },

    async stopReverseReplication(args: ReverseArgs & { tables?: TableInventory[] }): Promise<string[]> {
      return withReplicationRoles(args, (t, s) => stopReverseReplication(t, s, args.migrationId, args.tables ?? []));
    },
  };
}
