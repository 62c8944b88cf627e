/** The `logical` method: native PUBLICATION / SUBSCRIPTION (see replication.ts and schema.ts). */
import { Context } from '@temporalio/activity';
import type { ActivityContext } from '../../context';
import { withClient } from '../../database/pg';
import { pause, type ReplicationMethod, type ReplicationState } from '../method';
import { dropSubscription, startLogicalReplication, syncState } from './replication';

export function logicalMethod({ resolve, admin, subscriberUrl }: ActivityContext): ReplicationMethod {
  return {
    async start(args) {
      const [sourceUrl, subUrl] = await Promise.all([resolve(args.source, 'source.url'), subscriberUrl(args)]);
      const started = await withClient(sourceUrl, admin(args.migrationId, 'source'), (s) =>
        withClient(subUrl, admin(args.migrationId, 'target (replication role)'), (sub) =>
          startLogicalReplication(s, sub, { migrationId: args.migrationId, sourceUrl, tables: args.tables }),
        ),
      );
      return { replication: [`publication ${started.publication}`, `subscription ${started.subscription}`], tables: started.tables };
    },

    async watch(args): Promise<ReplicationState> {
      const ctx = Context.current();
      const [sourceUrl, subUrl] = await Promise.all([resolve(args.source, 'source.url'), subscriberUrl(args)]);
      return withClient(sourceUrl, admin(args.migrationId, 'source'), (s) =>
        withClient(subUrl, admin(args.migrationId, 'target (replication role)'), async (sub) => {
          const until = Date.now() + args.reportAfterMs;
          for (;;) {
            const state = await syncState(s, sub, args.migrationId);
            const caughtUp =
              state.tablesTotal > 0 &&
              state.tablesReady === state.tablesTotal &&
              state.lagBytes !== null &&
              state.lagBytes <= args.maxLagBytes;
            ctx.heartbeat(state);
            if (caughtUp || Date.now() >= until) return { ...state, caughtUp };
            await pause(200);
          }
        }),
      );
    },

    /** Only the subscription, inside the window (fast); slot, publication and markers go after go-live. */
    async stopInWindow(args) {
      const subUrl = await subscriberUrl(args);
      return withClient(subUrl, admin(args.migrationId, 'target (replication role)'), (sub) => dropSubscription(sub, args.migrationId));
    },

    dropOwn: () => Promise.resolve([]),
  };
}
