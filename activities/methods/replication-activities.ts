/**
 * The replication activities the workflow calls, the same for every replication method: each finds
 * the method by `args.method` (absent: logical, as in histories recorded before other methods
 * existed) and calls its implementation. Around them, what all methods share: replica identity for
 * keyless tables, the schema in two halves, the drain to the cutover marker, the leftovers, and the
 * verification on freeze-point snapshots.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from 'pg';
import type { TableInventory } from '../../contract/plan';
import type { VerificationSnapshotTaken } from '../../signals';
import type { ActivityContext, CdcArgs } from '../context';
import { verificationFailure } from '../database/activities';
import { copyLargeObjects } from '../database/large-objects';
import { refreshMaterializedViews } from '../database/materialized-views';
import { connect, withClient } from '../database/pg';
import type { TargetBaseline } from '../database/target-reset';
import { CATALOG_DEFAULTS, type CatalogOptions } from '../database/catalog';
import {
  catalogComparison,
  openSnapshotPool,
  reportedDifferences,
  schemaChanges,
  verifyCopy,
  type VerificationReport,
} from '../database/verify';
import { HEARTBEAT_EVERY_MS, keepAlive } from '../heartbeat';
import { progressReporter, tablesReporter } from '../progress';
import { ReplicationProgress } from './replication-progress';
import { appName } from '../names';
import { redact } from '../secrets';
import { drainToMarker, waitForMarker } from './cdc/marker';
import { restoreReplicaIdentity, setReplicaIdentityFull } from './cdc/replica-identity';
import { copyInWindow, type WindowCopyResult } from './cdc/window-copy';
import { dmsMethod } from './dms';
import { logicalMethod } from './logical';
import { dropReplicationLeftovers } from './logical/replication';
import { copySchemaAfterData, copySchemaBeforeData, removeSchemaDump } from './logical/schema';
import type { ReplicationMethod, ReplicationState, StartArgs, WatchArgs } from './method';
import { pgcopydbMethod, removeSnapshotCopy, snapshotCopy, type SnapshotCopyArgs } from './pgcopydb';
import { triggersMethod } from './triggers';

export function createReplicationActivities(context: ActivityContext) {
  const { deps, endpoints, both } = context;
  const methods: Record<NonNullable<CdcArgs['method']>, ReplicationMethod> = {
    logical: logicalMethod(context),
    pgcopydb: pgcopydbMethod(context),
    dms: dmsMethod(context),
    triggers: triggersMethod(context),
  };
  const methodOf = (args: CdcArgs) => methods[args.method ?? 'logical'];
  /** A step the method does not have is a bug in the workflow, not something a retry fixes. */
  const missing = (args: CdcArgs, step: string) =>
    ApplicationFailure.nonRetryable(`method ${args.method ?? 'logical'} has no ${step} step`, 'MethodStepMissing');
  const activities = {
    /**
     * Histories recorded before the patch `pgcopydb-snapshot-copy-then-subscription` ran pgcopydb 0.10's
     * clone --follow here, which is gone: such a migration rolls back (its undos remove the follow's slot,
     * origin and sentinel) and is started again.
     */
    async runPgcopydb(
      args: CdcArgs & { jobs: number; baseline: TargetBaseline },
    ): Promise<{ mode: string; elapsedMs: number; attempts: number }> {
      throw ApplicationFailure.nonRetryable(
        `migration ${args.migrationId} began on pgcopydb 0.10's clone --follow, which this worker no longer runs (the pgcopydb method now copies a slot's snapshot, then subscribes): it rolls back; start it again`,
        'PgcopydbFollowRemoved',
      );
    },

    /**
     * The initial copy by pgcopydb (method pgcopydb, or logical with replication.initialCopy pgcopydb): a
     * new slot's exported snapshot copied in parallel, heartbeating its progress. A retry starts over from
     * a new slot with the target reset to its baseline.
     */
    async copySnapshot(args: SnapshotCopyArgs): Promise<{ tables: number; bytes: number; elapsedMs: number; startedOver: boolean }> {
      const { tables, bytes, elapsedMs, startedOver } = await snapshotCopy(context, args);
      return { tables, bytes, elapsedMs, startedOver };
    },

    /** The triggers method's snapshot copy and its apply of the captured changes, beside the workflow until the drain's marker. */
    async copyAndApply(
      args: CdcArgs & { jobs: number; baseline: TargetBaseline; tables: TableInventory[] },
    ): Promise<{ mode: string; elapsedMs: number; attempts: number }> {
      const method = methodOf(args);
      if (!method.cloneAndFollow) throw missing(args, 'copy-and-apply');
      return method.cloneAndFollow(args);
    },

    async setReplicaIdentityFull(args: CdcArgs & { tables: TableInventory[] }): Promise<string[]> {
      return both(args, (s) => setReplicaIdentityFull(s, args.tables));
    },

    /**
     * The source's replica identity as it was; with `onTarget`, the target's too (the schema copy carried the
     * FULL set for the migration there). Run once replication stopped: while it applies, a keyless table's
     * rows are found by the publisher's FULL identity, whatever the target's own setting.
     */
    async restoreReplicaIdentity(args: CdcArgs & { tables: TableInventory[]; onTarget?: boolean }): Promise<void> {
      return both(args, async (s, t) => {
        await restoreReplicaIdentity(s, args.tables);
        if (args.onTarget) await restoreReplicaIdentity(t, args.tables);
      });
    },

    /**
     * Once the target caught up: the materialized views populated on the source are refreshed on the target
     * (the schema-only dump has none of their data), each after those it reads. Idempotent.
     */
    async refreshMaterializedViews(args: CdcArgs): Promise<string[]> {
      return keepAlive(
        () => both(args, (s, t) => refreshMaterializedViews(s, t)),
        () => ({ stage: 'refreshing materialized views' }),
        5_000,
      );
    },

    async copySchema(args: CdcArgs & { baseline: TargetBaseline }): Promise<{ objects: number }> {
      const signal = Context.current().cancellationSignal;
      return keepAlive(
        () =>
          both(args, (s, t, urls) =>
            copySchemaBeforeData(s, t, {
              migrationId: args.migrationId,
              sourceUrl: urls.source,
              targetUrl: urls.target,
              baseline: args.baseline,
              signal,
            }),
          ),
        () => ({ stage: 'schema' }),
        5_000,
      );
    },

    /** Idempotent on any worker: the schema dump is made again when this worker does not have it. */
    async copySchemaAfterData(args: CdcArgs & { baseline: TargetBaseline; jobs: number }): Promise<{ schemaDump: 'reused' | 'recreated' }> {
      const [sourceUrl, targetUrl] = await endpoints(args);
      const signal = Context.current().cancellationSignal;
      return keepAlive(
        () =>
          copySchemaAfterData({ migrationId: args.migrationId, sourceUrl, targetUrl, baseline: args.baseline, jobs: args.jobs, signal }),
        () => ({ stage: 'indexes and foreign keys' }),
        5_000,
      );
    },

    async startReplication(args: StartArgs): Promise<{ replication: string[]; tables: number }> {
      const method = methodOf(args);
      if (!method.start) throw missing(args, 'start');
      const start = method.start.bind(method);
      return keepAlive(
        () => start(args),
        () => ({ stage: 'starting replication' }),
        5_000,
      );
    },

    /**
     * Waits (heartbeating) until every table finished its initial copy and the lag is under
     * `maxLagBytes`, or until `reportAfterMs` passed: the workflow loops, refreshing `status`.
     */
    async waitForReplication(args: WatchArgs): Promise<ReplicationState> {
      // Each report heartbeats with the step's progress (percent, rate, ETA) and goes to the workflow's status, throttled.
      const measured = new ReplicationProgress(args);
      const reporter = progressReporter(deps);
      const state = await methodOf(args).watch(args, (s) => reporter.beat(measured.measure(s), s));
      const lagAtStart = measured.lagAtStart;
      return lagAtStart !== undefined ? { ...state, lagAtStart } : state;
    },

    /** After the freeze: the target has applied everything (marker), and no DDL happened meanwhile. */
    async drainReplication(args: CdcArgs & { timeoutMs: number }): Promise<{ finalLsn: string; waitedMs: number }> {
      const method = methodOf(args);
      const atFinalLsn = method.atFinalLsn?.bind(method);
      return both(args, async (s, t) => {
        const drained = await drainToMarker(s, t, args.migrationId, args.timeoutMs, atFinalLsn && ((lsn) => atFinalLsn(args, lsn)));
        const ddl = await schemaChanges(s, t);
        if (ddl.length) {
          throw ApplicationFailure.nonRetryable(
            `the source schema changed during replication (DDL is not replicated), so the target would be wrong: ${ddl.slice(0, 5).join('; ')}. Apply the same DDL on the target or restart the migration`,
            'SchemaChangedDuringReplication',
            ddl,
          );
        }
        return drained;
      });
    },

    /**
     * In the write-freeze window (source frozen, before the drain, so the freeze-point verification's
     * snapshots include them): the UNLOGGED tables and large objects the method's change stream does not carry.
     */
    async copyInWindow(
      args: CdcArgs & { unlogged: TableInventory[]; largeObjects: boolean; roleMap?: Record<string, string> },
    ): Promise<WindowCopyResult> {
      return both(args, (s, t) => copyInWindow(s, t, args));
    },

    /** In the write-freeze window, after the sequences: the triggers method's large objects, in histories recorded before copy-in-window-before-drain. */
    async copyLargeObjects(args: CdcArgs): Promise<{ objects: number; bytes: number }> {
      return both(args, (s, t) => copyLargeObjects(s, t));
    },

    /** In the write-freeze window: only what must stop before the target takes writes; the rest goes after go-live. */
    async stopSubscription(args: CdcArgs): Promise<string[]> {
      return methodOf(args).stopInWindow(args);
    },

    /** After go-live (and in the compensation): the method's own objects, slot, publication, markers, and this worker's schema dump and copy files. */
    async dropReplicationLeftovers(args: CdcArgs & { keepMarkers?: boolean }): Promise<string[]> {
      const own = await methodOf(args).dropOwn(args);
      return [
        ...own,
        ...(await both(args, (s, t) => dropReplicationLeftovers(s, t, args.migrationId, { keepMarkers: !!args.keepMarkers }))),
        ...(await removeSchemaDump(args.migrationId)),
        ...(await removeSnapshotCopy(context, args)),
      ];
    },

    /** The compensation: everything replication created, from any point of its run. */
    async stopReplication(args: CdcArgs): Promise<string[]> {
      const stopped = await methodOf(args).stopInWindow(args);
      return [...stopped, ...(await activities.dropReplicationLeftovers(args))];
    },

    /**
     * Takes REPEATABLE READ snapshots of both sides at the freeze point, tells the workflow (which then
     * goes on with the cutover), and compares every table on those snapshots: the result describes the
     * data at the freeze, whatever the application writes to the target after go-live.
     */
    async verifyAtFreezePoint(
      args: CdcArgs & { tables: TableInventory[]; jobs: number; drainTimeoutMs: number; catalog?: CatalogOptions },
    ): Promise<VerificationReport> {
      const [sourceUrl, targetUrl] = await endpoints(args);
      const ctx = Context.current();
      const size = Math.max(1, args.jobs);
      const opts = (label: string) => ({ label, applicationName: appName(args.migrationId, 'verify') });
      const progress = { stage: 'waiting for the drain marker', tablesDone: 0, tablesTotal: args.tables.length };
      // Frequent heartbeats, from the start (the drain can outlast the heartbeat timeout), carry the
      // cancellation of a rollback here quickly; closing the connections then ends the snapshots and
      // releases their locks.
      const beat = tablesReporter(deps, 'verify');
      const timer = setInterval(() => beat(progress), HEARTBEAT_EVERY_MS);
      let sources: Client[];
      let targets: Client[];
      try {
        // Started as soon as the source is frozen: the snapshot is taken once the target applied the marker.
        await withClient(targetUrl, opts('target'), (t) => waitForMarker(t, args.migrationId, args.drainTimeoutMs));
        sources = await openSnapshotPool(() => connect(sourceUrl, opts('source')), size);
        const opened = sources;
        targets = await openSnapshotPool(() => connect(targetUrl, opts('target')), size).catch(async (err: unknown) => {
          await Promise.all(opened.map((c) => c.end().catch(() => undefined)));
          throw err;
        });
      } catch (err) {
        clearInterval(timer);
        throw err;
      }
      progress.stage = 'comparing tables';
      const all = [...sources, ...targets];
      const closeAll = () => void Promise.all(all.map((c) => c.end().catch(() => undefined)));
      ctx.cancellationSignal.addEventListener('abort', closeAll, { once: true });
      try {
        const execution = ctx.info.workflowExecution;
        if (!execution) throw ApplicationFailure.nonRetryable('verifyAtFreezePoint must run as a workflow activity', 'NoWorkflow');
        // Reported, not blocking (the target already runs replication's result), and before the
        // go-live gate: the workflow waits for this signal before it, not for the whole comparison.
        // A comparison that fails is reported the same way, never the cause of a rollback.
        const started = Date.now();
        const catalog = await catalogComparison(sources[0], targets[0], args.catalog ?? CATALOG_DEFAULTS, false).catch((err: unknown) => ({
          differences: [`the catalog could not be compared: ${redact(err instanceof Error ? err.message : String(err))}`],
          ms: Date.now() - started,
          blocking: false,
        }));
        const taken: VerificationSnapshotTaken = { catalogDifferences: reportedDifferences(catalog.differences) };
        await deps.signalWorkflow(execution.workflowId, execution.runId, 'verificationSnapshotTaken', taken);
        const report = await verifyCopy({
          sourcePool: sources,
          targetPool: targets,
          catalog,
          checkSequences: false,
          tables: args.tables,
          onTable: (done, total) => Object.assign(progress, { tablesDone: done, tablesTotal: total }),
        });
        if (!report.ok) throw verificationFailure(report);
        return report;
      } finally {
        clearInterval(timer);
        ctx.cancellationSignal.removeEventListener('abort', closeAll);
        await Promise.all(all.map((c) => c.end().catch(() => undefined)));
      }
    },
  };
  return activities;
}
