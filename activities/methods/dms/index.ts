/**
 * The `dms` method: an AWS DMS full-load-and-cdc task (endpoints, replication instance, table
 * mappings over the user tables and the marker), CloudWatch CDC latency as the lag, the shared
 * marker drain. The task is stopped and deleted after go-live, outside the window.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityContext } from '../../context';
import { redact } from '../../secrets';
import { MARKER_SCHEMA, replicationNames } from '../cdc/marker';
import { publishableTables } from '../cdc/replica-identity';
import { pause, type ReplicationMethod, type ReplicationState } from '../method';
import * as dms from './aws-dms';

export function dmsMethod({ deps, endpoints }: ActivityContext): ReplicationMethod {
  const pollMs = deps.dmsPollMs ?? 15_000;
  const poll = (ctx: Context) => ({ intervalMs: pollMs, onProgress: (p: unknown) => ctx.heartbeat(p), signal: ctx.cancellationSignal });

  return {
    /** Endpoints, replication instance and a full-load-and-cdc task over the user tables and the marker; started. */
    async start(args) {
      const ctx = Context.current();
      const clients = deps.dms();
      const m = { migrationId: args.migrationId };
      const [sourceUrl, targetUrl] = await endpoints(args);
      const dmsEndpoints = await dms.ensureEndpoints(clients, m, { sourceUrl, targetUrl }, poll(ctx));
      const instanceArn = await dms.ensureReplicationInstance(clients, m, { ...poll(ctx) });
      const marker = replicationNames(args.migrationId).markerTable;
      const tables = [
        ...publishableTables(args.tables).map((t) => ({ schema: t.schema, name: t.name })),
        { schema: MARKER_SCHEMA, name: marker },
      ];
      // Not waiting for `ready` here: starting is retried until DMS accepts it (a task just created is not startable yet).
      const taskArn = await dms.ensureTask(clients, m, {
        sourceEndpointArn: dmsEndpoints.sourceEndpointArn,
        targetEndpointArn: dmsEndpoints.targetEndpointArn,
        replicationInstanceArn: instanceArn,
        tables,
        waitForReady: false,
        ...poll(ctx),
      });
      const deadline = Date.now() + 10 * 60_000;
      for (;;) {
        try {
          await dms.startTask(clients, taskArn, poll(ctx));
          break;
        } catch (err) {
          if ((err as ApplicationFailure).type !== 'DmsTaskNotStartable' || Date.now() > deadline) throw err;
          await pause(pollMs);
        }
      }
      return { replication: [`dms task ${taskArn}`, `replication instance ${instanceArn}`], tables: tables.length };
    },

    /** Full load by table from the task's statistics; the lag is the larger CloudWatch CDC latency (source, target). */
    async watch(args, beat): Promise<ReplicationState> {
      const ctx = Context.current();
      const maxLagSeconds = args.maxLagSeconds ?? 5;
      const clients = deps.dms();
      const m = { migrationId: args.migrationId };
      const taskArn = await dms.findTaskArn(clients, m);
      const until = Date.now() + args.reportAfterMs;
      for (;;) {
        const p = await dms.taskProgress(clients, taskArn);
        if (p.status === 'failed' || p.tablesErrored > 0) {
          throw ApplicationFailure.nonRetryable(
            `DMS task ${p.status}${p.lastFailureMessage ? `: ${redact(p.lastFailureMessage)}` : ''} (${p.tablesErrored} table(s) errored)`,
            'DmsTaskFailed',
          );
        }
        const latency = await dms.cdcLatency(clients, m);
        const lagSeconds =
          latency.sourceSeconds === undefined || latency.targetSeconds === undefined
            ? null
            : Math.max(latency.sourceSeconds, latency.targetSeconds);
        const total = p.tables.length || p.tablesLoaded + p.tablesLoading + p.tablesQueued;
        // What the task already reports while it goes on: rows it could not load, rows validation found different.
        const errors = [
          ...(p.lastFailureMessage ? [`DMS task: ${p.lastFailureMessage}`] : []),
          ...p.tables
            .filter((t) => t.fullLoadErrorRows > 0 || t.validationFailedRecords > 0)
            .slice(0, 5)
            .map(
              (t) =>
                `${t.schema}.${t.name}: ${t.fullLoadErrorRows} row(s) failed to load, ${t.validationFailedRecords} failed validation (${t.validationState ?? 'validation off'})`,
            ),
        ];
        const state: ReplicationState = {
          tablesTotal: total,
          tablesReady: p.fullLoadComplete ? total : p.tablesLoaded,
          lagBytes: null,
          lagSeconds,
          caughtUp: p.fullLoadComplete && lagSeconds !== null && lagSeconds <= maxLagSeconds,
          ...(errors.length ? { errors: { messages: errors } } : {}),
        };
        (beat ?? ((r: ReplicationState) => ctx.heartbeat(r)))(state);
        if (state.caughtUp || Date.now() >= until) return state;
        await pause(Math.min(pollMs, 5_000));
      }
    },

    /** The task has nothing left to carry from the frozen source: it is stopped after go-live, outside the window. */
    stopInWindow: () => Promise.resolve([]),

    async dropOwn(args) {
      const deleted = await dms.stopAndDelete(deps.dms(), { migrationId: args.migrationId }, poll(Context.current()));
      return Object.entries(deleted)
        .filter(([k, v]) => k !== 'stoppedTask' && v)
        .map(([k, v]) => `dms ${k} ${String(v)}`);
    },
  };
}
