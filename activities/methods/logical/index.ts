/** The `logical` method: native PUBLICATION / SUBSCRIPTION (see replication.ts and schema.ts). */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityContext } from '../../context';
import { withClient } from '../../database/pg';
import { replicationNames } from '../cdc/marker';
import { DEFAULT_ERROR_TIMEOUT_MS, pause, type ReplicationErrors, type ReplicationMethod, type ReplicationState } from '../method';
import { describeSubscriptionErrors, ErrorEpisodes, subscriptionHealth } from './errors';
import { dropSubscription, startLogicalReplication, syncState } from './replication';

export function logicalMethod({ resolve, admin, subscriberUrl }: ActivityContext): ReplicationMethod {
  return {
    async start(args) {
      const [sourceUrl, subUrl] = await Promise.all([resolve(args.source, 'source.url'), subscriberUrl(args)]);
      const started = await withClient(sourceUrl, admin(args.migrationId, 'source'), (s) =>
        withClient(subUrl, admin(args.migrationId, 'target (replication role)'), (sub) =>
          startLogicalReplication(s, sub, { migrationId: args.migrationId, sourceUrl, tables: args.tables, initialCopy: args.initialCopy }),
        ),
      );
      return { replication: [`publication ${started.publication}`, `subscription ${started.subscription}`], tables: started.tables };
    },

    /**
     * Polls the copy, the lag and the subscription's errors. Errors are reported in the state as soon as
     * they begin (the workflow shows them in `status.replication`); errors without progress for
     * `errorTimeoutMs` fail the step, not retried, with the error text.
     */
    async watch(args, beat): Promise<ReplicationState> {
      const ctx = Context.current();
      const [sourceUrl, subUrl] = await Promise.all([resolve(args.source, 'source.url'), subscriberUrl(args)]);
      const { subscription } = replicationNames(args.migrationId);
      const failAfterMs = args.errorTimeoutMs ?? DEFAULT_ERROR_TIMEOUT_MS;
      const run = ctx.info.workflowExecution?.runId ?? 'no-workflow';
      const episodes = new ErrorEpisodes(`${run}/${subscription}`, failAfterMs, args.errorsSince);
      return withClient(sourceUrl, admin(args.migrationId, 'source'), (s) =>
        withClient(subUrl, admin(args.migrationId, 'target (replication role)'), async (sub) => {
          const until = Date.now() + args.reportAfterMs;
          let described: { at: number; errors: ReplicationErrors } | undefined;
          for (;;) {
            const state = await syncState(s, sub, args.migrationId);
            const caughtUp =
              state.tablesTotal > 0 &&
              state.tablesReady === state.tablesTotal &&
              state.lagBytes !== null &&
              state.lagBytes <= args.maxLagBytes;
            const health = await subscriptionHealth(sub, subscription);
            const verdict = episodes.observe(health, state.tablesReady);
            let errors: ReplicationErrors | undefined;
            if (verdict.active) {
              // The log is read at most every 5 s (and once more before failing).
              if (!described || Date.now() - described.at >= 5_000 || verdict.expired) {
                described = { at: Date.now(), errors: await describeSubscriptionErrors(sub, subscription, health) };
              }
              errors = { ...described.errors, since: new Date(verdict.since!).toISOString(), failAfterMs };
            }
            if (verdict.expired) {
              episodes.forget();
              throw ApplicationFailure.nonRetryable(
                `logical replication has been failing for ${Math.round((Date.now() - verdict.since!) / 1000)} s without progress ` +
                  `(${state.tablesReady}/${state.tablesTotal} tables ready; replication.errorTimeout ${Math.round(failAfterMs / 1000)} s): ` +
                  errors!.messages.join('; '),
                'ReplicationErrors',
                errors,
              );
            }
            const reported: ReplicationState = { ...state, caughtUp, ...(errors ? { errors } : {}) };
            (beat ?? ((r: ReplicationState) => ctx.heartbeat(r)))(reported);
            // Errors that just began are reported at once, so status shows them while the bound runs.
            if (caughtUp || verdict.began || Date.now() >= until) return reported;
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
