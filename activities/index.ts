/**
 * The activities of `migrateDatabase`, built from injected clients (`createActivities(deps)`), so
 * secrets and connections stay on the worker. Every activity takes secret *references*, resolves
 * them here, and lets no resolved value escape in a result, heartbeat or error.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from 'pg';
import type { ConfigSink, MigrationInput, SecretRef } from '../contract/input';
import { buildPlan, type MigrationPlan, type RoleReadOnlySetting, type TableInventory } from '../contract/plan';
import { createAppControlActivities, type AppControlDeps } from './app-control';
import { openConfigSink, type RestoreReceipt, type SwapReceipt } from './config-sinks';
import { appName, dumpRestore, ownSessionsPrefix, workDir, type DumpRestoreResult } from './dump-restore';
import { freezeDatabase, unfreezeDatabase, type FreezeResult, type UnfreezeResult } from './freeze';
import { CAN_SUBSCRIBE_SQL, inventoryDatabase } from './inventory';
import { connect, terminateByApplicationName, withClient } from './pg';
import { createSecretResolver, redact, redactingActivities, type SecretClients } from './secrets';
import { checkSequencesAhead, reconcileSequences, type SequenceReconciliation } from './sequences';
import { runSmokeChecks, type SmokeCheck } from './smoke';
import { resetTargetToBaseline, type ResetResult, type TargetBaseline } from './target-reset';
import * as dms from './dms';
import type { DmsClients } from './dms';
import * as logical from './logical';
import * as pgcopydb from './pgcopydb';
import { createTrafficActivities, type TrafficDeps } from './traffic';
import { openSnapshotPool, schemaChanges, verifyCopy, type VerificationReport } from './verify';

export interface ActivityDeps extends SecretClients, AppControlDeps, TrafficDeps {
  /** AWS DMS and CloudWatch clients (method dms), created on first use. */
  dms: () => DmsClients;
  /** How often DMS waits poll (AWS: seconds; moto: a few ms). */
  dmsPollMs?: number;
  /** Signals a workflow (the verification activity tells its workflow that its snapshots are taken). */
  signalWorkflow: (workflowId: string, runId: string, signal: string) => Promise<void>;
}

interface Endpoint {
  migrationId: string;
  url: SecretRef;
}

export interface FreezeArgs extends Endpoint {
  roles: string[];
  drainTimeoutMs: number;
}

export interface UnfreezeArgs extends Endpoint {
  roles: string[];
  /** The read-only settings preflight found, restored exactly. */
  prior: RoleReadOnlySetting[];
}

export interface CopyArgs {
  migrationId: string;
  source: SecretRef;
  target: SecretRef;
  jobs: number;
  tablesTotal: number;
  baseline: TargetBaseline;
}

function verificationFailure(report: VerificationReport): ApplicationFailure {
  const first = [
    ...report.schemaDifferences,
    ...report.mismatches.map(
      (m) => `${m.table}: source ${m.sourceRows} rows / ${m.sourceChecksum}, target ${m.targetRows} rows / ${m.targetChecksum}`,
    ),
    ...report.sequenceProblems.map((p) => `${p.sequence} at ${p.lastValue} is behind max id ${p.columnMax}`),
  ].slice(0, 5);
  return ApplicationFailure.nonRetryable(`verification failed: ${first.join('; ')}`, 'VerificationFailed', report);
}

/** Progress of replication as the workflow sees it, whatever the method. */
export interface ReplicationState {
  tablesTotal: number;
  tablesReady: number;
  /** logical: WAL bytes not yet confirmed by the subscriber. */
  lagBytes: number | null;
  /** dms: CloudWatch CDC latency (the larger of source and target), seconds. */
  lagSeconds?: number | null;
  caughtUp: boolean;
}

/** Arguments of the CDC activities: the endpoints, and the role that owns the subscription. */
export interface CdcArgs {
  /** Which CDC method; absent means logical (histories recorded before DMS existed). */
  method?: 'logical' | 'dms' | 'pgcopydb';
  migrationId: string;
  source: SecretRef;
  target: SecretRef;
  replicationUrl?: SecretRef;
}

/** Reverse replication: the source's subscribing role, and (via replicationUrl / target.url) the target it connects to. */
export interface ReverseArgs extends CdcArgs {
  sourceReplicationUrl: SecretRef;
}

async function withPools<T>(
  sourceUrl: string,
  targetUrl: string,
  size: number,
  migrationId: string,
  fn: (s: Client[], t: Client[]) => Promise<T>,
): Promise<T> {
  const opts = (label: string) => ({ label, applicationName: appName(migrationId, 'verify') });
  const sources = await Promise.all(Array.from({ length: size }, () => connect(sourceUrl, opts('source'))));
  const targets = await Promise.all(Array.from({ length: size }, () => connect(targetUrl, opts('target'))));
  try {
    return await fn(sources, targets);
  } finally {
    await Promise.all([...sources, ...targets].map((c) => c.end().catch(() => undefined)));
  }
}

export function createActivities(deps: ActivityDeps) {
  const resolve = createSecretResolver(deps);
  const admin = (migrationId: string, label: string) => ({
    label,
    applicationName: appName(migrationId, 'admin'),
    ownSessionsPrefix: ownSessionsPrefix(migrationId),
  });

  const core = {
    async preflight(args: { migrationId: string; input: MigrationInput }): Promise<MigrationPlan> {
      const [sourceUrl, targetUrl] = await Promise.all([
        resolve(args.input.source.url, 'source.url'),
        resolve(args.input.target.url, 'target.url'),
      ]);
      if (args.input.target.appUrl) await resolve(args.input.target.appUrl, 'target.appUrl');
      // Unreachable servers are retried here for a bounded time, then reported once, clearly.
      const reach = { unreachableForMs: 10_000 };
      const replicationRef = args.input.target.replicationUrl;
      const replicationUrl = replicationRef ? await resolve(replicationRef, 'target.replicationUrl') : undefined;
      const [source, target, subscriber] = await Promise.all([
        withClient(sourceUrl, { ...admin(args.migrationId, 'source'), ...reach }, (c) => inventoryDatabase(c, { sampleWalRateMs: 1000 })),
        withClient(targetUrl, { ...admin(args.migrationId, 'target'), ...reach }, (c) => inventoryDatabase(c)),
        replicationUrl
          ? withClient(replicationUrl, { ...admin(args.migrationId, 'target (replication role)'), ...reach }, (c) =>
              c.query(`SELECT ${CAN_SUBSCRIBE_SQL} AS ok`).then((r) => r.rows[0].ok as boolean),
            )
          : Promise.resolve(undefined),
      ]);
      // The subscription is created with target.replicationUrl when given: its role is the one that must be allowed.
      if (subscriber !== undefined) target.canSubscribe = subscriber;
      return buildPlan(args.input, source, target);
    },

    async freezeSource(args: FreezeArgs): Promise<FreezeResult> {
      const url = await resolve(args.url, 'source.url');
      return freezeDatabase(url, { ...admin(args.migrationId, 'source'), roles: args.roles, drainTimeoutMs: args.drainTimeoutMs });
    },

    async unfreezeSource(args: UnfreezeArgs): Promise<UnfreezeResult> {
      const url = await resolve(args.url, 'source.url');
      return unfreezeDatabase(url, { ...admin(args.migrationId, 'source'), roles: args.roles, prior: args.prior });
    },

    async freezeTarget(args: FreezeArgs): Promise<FreezeResult> {
      const url = await resolve(args.url, 'target.url');
      return freezeDatabase(url, { ...admin(args.migrationId, 'target'), roles: args.roles, drainTimeoutMs: args.drainTimeoutMs });
    },

    async unfreezeTarget(args: UnfreezeArgs): Promise<UnfreezeResult> {
      const url = await resolve(args.url, 'target.url');
      return unfreezeDatabase(url, { ...admin(args.migrationId, 'target'), roles: args.roles, prior: args.prior });
    },

    async copyDumpRestore(args: CopyArgs): Promise<DumpRestoreResult> {
      const [sourceUrl, targetUrl] = await Promise.all([resolve(args.source, 'source.url'), resolve(args.target, 'target.url')]);
      return dumpRestore({
        migrationId: args.migrationId,
        sourceUrl,
        targetUrl,
        jobs: args.jobs,
        tablesTotal: args.tablesTotal,
        baseline: args.baseline,
      });
    },

    async resetTarget(args: { migrationId: string; target: SecretRef; baseline: TargetBaseline }): Promise<ResetResult> {
      const url = await resolve(args.target, 'target.url');
      const reset = await withClient(url, admin(args.migrationId, 'target'), async (c) => {
        // A restore still running (cancelled copy, dead worker) would recreate what we drop.
        await terminateByApplicationName(c, appName(args.migrationId, 'restore'));
        return resetTargetToBaseline(c, args.baseline);
      });
      // Dumps (data or schema) left on this worker by the undone copy go too.
      await rm(workDir(args.migrationId), { recursive: true, force: true });
      return reset;
    },

    async reconcileSequences(args: { migrationId: string; source: SecretRef; target: SecretRef }): Promise<SequenceReconciliation[]> {
      const [sourceUrl, targetUrl] = await Promise.all([resolve(args.source, 'source.url'), resolve(args.target, 'target.url')]);
      return withClient(sourceUrl, admin(args.migrationId, 'source'), (s) =>
        withClient(targetUrl, admin(args.migrationId, 'target'), async (t) => {
          const reconciled = await reconcileSequences(s, t);
          // Its own post-condition: the next value of every serial/identity column is above its max id.
          const behind = (await checkSequencesAhead(t)).filter((c) => !c.ok);
          if (behind.length) {
            throw ApplicationFailure.nonRetryable(
              `sequences still behind their columns after reconciliation: ${behind.map((p) => `${p.sequence} at ${p.lastValue} < ${p.columnMax}`).join('; ')}`,
              'SequencesBehind',
            );
          }
          return reconciled;
        }),
      );
    },

    async verifyCopy(args: {
      migrationId: string;
      source: SecretRef;
      target: SecretRef;
      tables: TableInventory[];
      jobs: number;
    }): Promise<VerificationReport> {
      const [sourceUrl, targetUrl] = await Promise.all([resolve(args.source, 'source.url'), resolve(args.target, 'target.url')]);
      const ctx = Context.current();
      // Heartbeat on a timer too: one large table's checksum can outlast the heartbeat timeout.
      const progress = { tablesDone: 0, tablesTotal: args.tables.length };
      const timer = setInterval(() => ctx.heartbeat(progress), 5_000);
      const report = await withPools(sourceUrl, targetUrl, Math.max(1, args.jobs), args.migrationId, (s, t) =>
        verifyCopy({
          sourcePool: s,
          targetPool: t,
          tables: args.tables,
          onTable: (done, total) => {
            Object.assign(progress, { tablesDone: done, tablesTotal: total });
            ctx.heartbeat(progress);
          },
        }),
      ).finally(() => clearInterval(timer));
      if (!report.ok) throw verificationFailure(report);
      return report;
    },

    async swapConfig(args: {
      migrationId: string;
      sink: ConfigSink;
      appUrl: SecretRef;
      urlParams: Record<string, string>;
    }): Promise<SwapReceipt> {
      const url = new URL(await resolve(args.appUrl, 'target.appUrl'));
      for (const [k, v] of Object.entries(args.urlParams)) url.searchParams.set(k, v);
      return openConfigSink(args.sink, deps).swap(args.migrationId, url.toString());
    },

    /** Decommission: the previous value's record goes (Heroku: the old add-on is detached from the app). */
    async releaseConfig(args: { migrationId: string; sink: ConfigSink }): Promise<string[]> {
      return openConfigSink(args.sink, deps).release(args.migrationId);
    },

    async restoreConfig(args: { migrationId: string; sink: ConfigSink; receipt?: SwapReceipt }): Promise<RestoreReceipt> {
      return openConfigSink(args.sink, deps).restore(args.migrationId, args.receipt);
    },

    async smokeTest(args: { migrationId: string; appUrl: SecretRef; tables: TableInventory[]; sql: string[] }): Promise<SmokeCheck[]> {
      const url = await resolve(args.appUrl, 'target.appUrl');
      const checks = await withClient(
        url,
        { label: 'target (application URL)', applicationName: appName(args.migrationId, 'admin') },
        (c) => runSmokeChecks(c, args.tables, args.sql),
      );
      const failed = checks.filter((c) => !c.ok);
      if (failed.length) {
        throw ApplicationFailure.nonRetryable(
          `smoke test failed: ${failed.map((c) => `${c.name}: ${redact(c.detail)}`).join('; ')}`,
          'SmokeTestFailed',
          checks,
        );
      }
      return checks;
    },
  };

  const subscriberUrl = (args: { target: SecretRef; replicationUrl?: SecretRef }) =>
    args.replicationUrl ? resolve(args.replicationUrl, 'target.replicationUrl') : resolve(args.target, 'target.url');
  const both = async <T>(
    args: CdcArgs,
    fn: (source: Client, target: Client, urls: { source: string; target: string }) => Promise<T>,
  ): Promise<T> => {
    const [sourceUrl, targetUrl] = await Promise.all([resolve(args.source, 'source.url'), resolve(args.target, 'target.url')]);
    return withClient(sourceUrl, admin(args.migrationId, 'source'), (s) =>
      withClient(targetUrl, admin(args.migrationId, 'target'), (t) => fn(s, t, { source: sourceUrl, target: targetUrl })),
    );
  };

  const dmsPoll = (ctx: Context) => ({
    intervalMs: deps.dmsPollMs ?? 15_000,
    onProgress: (p: unknown) => ctx.heartbeat(p),
    signal: ctx.cancellationSignal,
  });

  /** Endpoints, replication instance and a full-load-and-cdc task over the user tables and the marker; started. */
  const startDms = async (args: CdcArgs & { tables: TableInventory[] }) => {
    const ctx = Context.current();
    const clients = deps.dms();
    const m = { migrationId: args.migrationId };
    const [sourceUrl, targetUrl] = await Promise.all([resolve(args.source, 'source.url'), resolve(args.target, 'target.url')]);
    const endpoints = await dms.ensureEndpoints(clients, m, { sourceUrl, targetUrl }, dmsPoll(ctx));
    const instanceArn = await dms.ensureReplicationInstance(clients, m, { ...dmsPoll(ctx) });
    const marker = logical.replicationNames(args.migrationId).markerTable;
    const tables = [
      ...logical.publishableTables(args.tables).map((t) => ({ schema: t.schema, name: t.name })),
      { schema: logical.MARKER_SCHEMA, name: marker },
    ];
    // Not waiting for `ready` here: starting is retried until DMS accepts it (a task just created is not startable yet).
    const taskArn = await dms.ensureTask(clients, m, {
      sourceEndpointArn: endpoints.sourceEndpointArn,
      targetEndpointArn: endpoints.targetEndpointArn,
      replicationInstanceArn: instanceArn,
      tables,
      waitForReady: false,
      ...dmsPoll(ctx),
    });
    const deadline = Date.now() + 10 * 60_000;
    for (;;) {
      try {
        await dms.startTask(clients, taskArn, dmsPoll(ctx));
        break;
      } catch (err) {
        if ((err as ApplicationFailure).type !== 'DmsTaskNotStartable' || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, deps.dmsPollMs ?? 15_000));
      }
    }
    return { replication: [`dms task ${taskArn}`, `replication instance ${instanceArn}`], tables: tables.length };
  };

  const waitForDms = async (args: CdcArgs & { maxLagSeconds: number; reportAfterMs: number }, ctx: Context): Promise<ReplicationState> => {
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
      const state: ReplicationState = {
        tablesTotal: total,
        tablesReady: p.fullLoadComplete ? total : p.tablesLoaded,
        lagBytes: null,
        lagSeconds,
        caughtUp: p.fullLoadComplete && lagSeconds !== null && lagSeconds <= args.maxLagSeconds,
      };
      ctx.heartbeat(state);
      if (state.caughtUp || Date.now() >= until) return state;
      await new Promise((r) => setTimeout(r, Math.min(deps.dmsPollMs ?? 15_000, 5_000)));
    }
  };

  const deleteDms = async (args: CdcArgs): Promise<string[]> => {
    const ctx = Context.current();
    const deleted = await dms.stopAndDelete(deps.dms(), { migrationId: args.migrationId }, dmsPoll(ctx));
    return Object.entries(deleted)
      .filter(([k, v]) => k !== 'stoppedTask' && v)
      .map(([k, v]) => `dms ${k} ${String(v)}`);
  };

  /** pgcopydb keeps its state in a work dir on the worker host; slot and origin names come from the migration id. */
  const pgcopydbRunOf = async (args: CdcArgs & { jobs?: number; baseline?: TargetBaseline }): Promise<pgcopydb.PgcopydbRun> => {
    const [sourceUrl, targetUrl] = await Promise.all([resolve(args.source, 'source.url'), resolve(args.target, 'target.url')]);
    const jobs = Math.max(1, args.jobs ?? 2);
    return {
      migrationId: args.migrationId,
      sourceUrl,
      targetUrl,
      workDir: path.join(workDir(args.migrationId), 'pgcopydb-run'),
      tableJobs: jobs,
      indexJobs: jobs,
      ...(args.baseline ? { baseline: args.baseline } : {}),
    };
  };

  const waitForPgcopydb = async (
    args: CdcArgs & { maxLagBytes: number; reportAfterMs: number },
    ctx: Context,
  ): Promise<ReplicationState> => {
    const run = await pgcopydbRunOf(args);
    const until = Date.now() + args.reportAfterMs;
    for (;;) {
      const s = await pgcopydb.pgcopydbStreaming(run);
      // pgcopydb reports no per-table progress: the clone is one unit, done when it streams.
      const state: ReplicationState = {
        tablesTotal: 1,
        tablesReady: s.streaming ? 1 : 0,
        lagBytes: s.lagBytes ?? null,
        caughtUp: s.streaming && s.lagBytes !== undefined && s.lagBytes <= args.maxLagBytes,
      };
      ctx.heartbeat(state);
      if (state.caughtUp || Date.now() >= until) return state;
      await new Promise((r) => setTimeout(r, 500));
    }
  };

  const cdc = {
    /**
     * pgcopydb's clone and follow, for the whole replication: runs until the endpos the drain sets,
     * heartbeating; a retry resumes the follow when it can (see activities/pgcopydb.ts).
     */
    async runPgcopydb(
      args: CdcArgs & { jobs: number; baseline: TargetBaseline },
    ): Promise<{ mode: string; elapsedMs: number; attempts: number }> {
      const ctx = Context.current();
      const run = await pgcopydbRunOf(args);
      await both(args, (s) => logical.ensureMarker(s, args.migrationId));
      return pgcopydb.runCloneFollow(run, { signal: ctx.cancellationSignal, onProgress: (p) => ctx.heartbeat(p) });
    },

    async setReplicaIdentityFull(args: CdcArgs & { tables: TableInventory[] }): Promise<string[]> {
      return both(args, (s) => logical.setReplicaIdentityFull(s, args.tables));
    },

    async restoreReplicaIdentity(args: CdcArgs & { tables: TableInventory[] }): Promise<void> {
      return both(args, (s) => logical.restoreReplicaIdentity(s, args.tables));
    },

    async copySchema(args: CdcArgs & { baseline: TargetBaseline }): Promise<{ objects: number }> {
      const ctx = Context.current();
      const timer = setInterval(() => ctx.heartbeat({ stage: 'schema' }), 5_000);
      return both(args, (s, t, urls) =>
        logical.copySchemaBeforeData(s, t, {
          migrationId: args.migrationId,
          sourceUrl: urls.source,
          targetUrl: urls.target,
          baseline: args.baseline,
          signal: ctx.cancellationSignal,
        }),
      ).finally(() => clearInterval(timer));
    },

    async copySchemaAfterData(args: CdcArgs & { baseline: TargetBaseline; jobs: number }): Promise<void> {
      const [sourceUrl, targetUrl] = await Promise.all([resolve(args.source, 'source.url'), resolve(args.target, 'target.url')]);
      const ctx = Context.current();
      const timer = setInterval(() => ctx.heartbeat({ stage: 'indexes and foreign keys' }), 5_000);
      try {
        await logical.copySchemaAfterData({
          migrationId: args.migrationId,
          sourceUrl,
          targetUrl,
          baseline: args.baseline,
          jobs: args.jobs,
          signal: ctx.cancellationSignal,
        });
      } finally {
        clearInterval(timer);
      }
    },

    async startReplication(args: CdcArgs & { tables: TableInventory[] }): Promise<{ replication: string[]; tables: number }> {
      const ctx = Context.current();
      const timer = setInterval(() => ctx.heartbeat({ stage: 'starting replication' }), 5_000);
      try {
        if (args.method === 'dms') return await startDms(args);
        const [sourceUrl, subUrl] = await Promise.all([resolve(args.source, 'source.url'), subscriberUrl(args)]);
        const started = await withClient(sourceUrl, admin(args.migrationId, 'source'), (s) =>
          withClient(subUrl, admin(args.migrationId, 'target (replication role)'), (sub) =>
            logical.startLogicalReplication(s, sub, { migrationId: args.migrationId, sourceUrl, tables: args.tables }),
          ),
        );
        return { replication: [`publication ${started.publication}`, `subscription ${started.subscription}`], tables: started.tables };
      } finally {
        clearInterval(timer);
      }
    },

    /**
     * Waits (heartbeating) until every table finished its initial copy and the lag is under
     * `maxLagBytes`, or until `reportAfterMs` passed: the workflow loops, refreshing `status`.
     */
    async waitForReplication(
      args: CdcArgs & { maxLagBytes: number; maxLagSeconds?: number; reportAfterMs: number },
    ): Promise<ReplicationState> {
      const ctx = Context.current();
      if (args.method === 'dms') return waitForDms({ ...args, maxLagSeconds: args.maxLagSeconds ?? 5 }, ctx);
      if (args.method === 'pgcopydb') return waitForPgcopydb(args, ctx);
      const [sourceUrl, subUrl] = await Promise.all([resolve(args.source, 'source.url'), subscriberUrl(args)]);
      return withClient(sourceUrl, admin(args.migrationId, 'source'), (s) =>
        withClient(subUrl, admin(args.migrationId, 'target (replication role)'), async (sub) => {
          const until = Date.now() + args.reportAfterMs;
          for (;;) {
            const state: logical.SyncState = await logical.syncState(s, sub, args.migrationId);
            const caughtUp =
              state.tablesTotal > 0 &&
              state.tablesReady === state.tablesTotal &&
              state.lagBytes !== null &&
              state.lagBytes <= args.maxLagBytes;
            ctx.heartbeat(state);
            if (caughtUp || Date.now() >= until) return { ...state, caughtUp };
            await new Promise((r) => setTimeout(r, 200));
          }
        }),
      );
    },

    /** After the freeze: the target has applied everything (marker), and no DDL happened meanwhile. */
    async drainReplication(args: CdcArgs & { timeoutMs: number }): Promise<{ finalLsn: string; waitedMs: number }> {
      return both(args, async (s, t) => {
        const setEndpos =
          args.method === 'pgcopydb' ? async (lsn: string) => pgcopydb.setEndpos(await pgcopydbRunOf(args), lsn) : undefined;
        const drained = await logical.drainToMarker(s, t, args.migrationId, args.timeoutMs, setEndpos);
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

    /** In the write-freeze window: only the subscription (fast); the rest goes after go-live. */
    async stopSubscription(args: CdcArgs): Promise<string[]> {
      // A DMS task has nothing left to carry from the frozen source: it is stopped after go-live, outside the window.
      // pgcopydb stops by itself at its endpos.
      if (args.method === 'dms' || args.method === 'pgcopydb') return [];
      const subUrl = await subscriberUrl(args);
      return withClient(subUrl, admin(args.migrationId, 'target (replication role)'), (sub) =>
        logical.dropSubscription(sub, args.migrationId),
      );
    },

    async dropReplicationLeftovers(args: CdcArgs & { keepMarkers?: boolean }): Promise<string[]> {
      const own =
        args.method === 'dms'
          ? await deleteDms(args)
          : args.method === 'pgcopydb'
            ? (await pgcopydb.cleanupPgcopydb(await pgcopydbRunOf(args))).dropped
            : [];
      return [
        ...own,
        ...(await both(args, (s, t) => logical.dropReplicationLeftovers(s, t, args.migrationId, { keepMarkers: !!args.keepMarkers }))),
      ];
    },

    /** Target -> source, before go-live, for a lossless rollback during the hold. */
    async startReverseReplication(args: ReverseArgs & { tables: TableInventory[]; appRoles: string[] }): Promise<string[]> {
      // A dump-restore migration has no marker yet (a CDC one kept its own): made by the usual roles, so every step can use it.
      await both(args, async (s, t) => {
        await logical.ensureMarker(s, args.migrationId);
        await logical.ensureMarker(t, args.migrationId);
      });
      // On the target the replication role (RDS: the master user, with rds_replication) owns the slot and publication.
      const [targetReplUrl, sourceSubUrl] = await Promise.all([
        subscriberUrl(args),
        resolve(args.sourceReplicationUrl, 'source.replicationUrl'),
      ]);
      return withClient(targetReplUrl, admin(args.migrationId, 'target (replication role)'), (t) =>
        withClient(sourceSubUrl, admin(args.migrationId, 'source (replication role)'), (s) =>
          logical.startReverseReplication(t, s, {
            migrationId: args.migrationId,
            targetConnUrl: targetReplUrl,
            tables: args.tables,
            appRoles: args.appRoles,
          }),
        ),
      );
    },

    /** With the replication roles on both sides: they own the marker tables reverse replication created. */
    async drainReverse(args: ReverseArgs & { timeoutMs: number }): Promise<{ waitedMs: number }> {
      const [targetReplUrl, sourceSubUrl] = await Promise.all([
        subscriberUrl(args),
        resolve(args.sourceReplicationUrl, 'source.replicationUrl'),
      ]);
      return withClient(targetReplUrl, admin(args.migrationId, 'target (replication role)'), (t) =>
        withClient(sourceSubUrl, admin(args.migrationId, 'source (replication role)'), (s) =>
          logical.drainReverse(t, s, args.migrationId, args.timeoutMs),
        ),
      );
    },

    async stopReverseReplication(args: ReverseArgs & { tables?: TableInventory[] }): Promise<string[]> {
      const [targetReplUrl, sourceSubUrl] = await Promise.all([
        subscriberUrl(args),
        resolve(args.sourceReplicationUrl, 'source.replicationUrl'),
      ]);
      return withClient(targetReplUrl, admin(args.migrationId, 'target (replication role)'), (t) =>
        withClient(sourceSubUrl, admin(args.migrationId, 'source (replication role)'), (s) =>
          logical.stopReverseReplication(t, s, args.migrationId, args.tables ?? []),
        ),
      );
    },

    /** Everything replication created (the compensation): subscription, slot, publication, markers. */
    async stopReplication(args: CdcArgs): Promise<string[]> {
      if (args.method === 'dms' || args.method === 'pgcopydb') return cdc.dropReplicationLeftovers(args);
      const [sourceUrl, targetUrl, subUrl] = await Promise.all([
        resolve(args.source, 'source.url'),
        resolve(args.target, 'target.url'),
        subscriberUrl(args),
      ]);
      return withClient(sourceUrl, admin(args.migrationId, 'source'), (s) =>
        withClient(subUrl, admin(args.migrationId, 'target (replication role)'), (sub) =>
          withClient(targetUrl, admin(args.migrationId, 'target'), (t) => logical.dropLogicalReplication(s, sub, t, args.migrationId)),
        ),
      );
    },

    /**
     * Takes REPEATABLE READ snapshots of both sides at the freeze point, tells the workflow (which then
     * goes on with the cutover), and compares every table on those snapshots: the result describes the
     * data at the freeze, whatever the application writes to the target after go-live.
     */
    async verifyAtFreezePoint(
      args: CdcArgs & { tables: TableInventory[]; jobs: number; drainTimeoutMs: number },
    ): Promise<VerificationReport> {
      const [sourceUrl, targetUrl] = await Promise.all([resolve(args.source, 'source.url'), resolve(args.target, 'target.url')]);
      const ctx = Context.current();
      const size = Math.max(1, args.jobs);
      const opts = (label: string) => ({ label, applicationName: appName(args.migrationId, 'verify') });
      const progress = { stage: 'waiting for the drain marker', tablesDone: 0, tablesTotal: args.tables.length };
      // Frequent heartbeats, from the start (the drain can outlast the heartbeat timeout), carry the
      // cancellation of a rollback here quickly; closing the connections then ends the snapshots and
      // releases their locks.
      const timer = setInterval(() => ctx.heartbeat(progress), 1_000);
      let sources: Client[];
      let targets: Client[];
      try {
        // Started as soon as the source is frozen: the snapshot is taken once the target applied the marker.
        await withClient(targetUrl, opts('target'), (t) => logical.waitForMarker(t, args.migrationId, args.drainTimeoutMs));
        sources = await openSnapshotPool(() => connect(sourceUrl, opts('source')), size);
        targets = await openSnapshotPool(() => connect(targetUrl, opts('target')), size).catch(async (err) => {
          await Promise.all(sources.map((c) => c.end().catch(() => undefined)));
          throw err;
        });
      } catch (err) {
        clearInterval(timer);
        throw err;
      }
      progress.stage = 'comparing tables';
      const closeAll = () => void Promise.all([...sources, ...targets].map((c) => c.end().catch(() => undefined)));
      ctx.cancellationSignal.addEventListener('abort', closeAll, { once: true });
      try {
        const execution = ctx.info.workflowExecution;
        if (!execution) throw ApplicationFailure.nonRetryable('verifyAtFreezePoint must run as a workflow activity', 'NoWorkflow');
        await deps.signalWorkflow(execution.workflowId, execution.runId, 'verificationSnapshotTaken');
        const report = await verifyCopy({
          sourcePool: sources,
          targetPool: targets,
          checkSequences: false,
          tables: args.tables,
          onTable: (done, total) => Object.assign(progress, { tablesDone: done, tablesTotal: total }),
        });
        if (!report.ok) throw verificationFailure(report);
        return report;
      } finally {
        clearInterval(timer);
        ctx.cancellationSignal.removeEventListener('abort', closeAll);
        await Promise.all([...sources, ...targets].map((c) => c.end().catch(() => undefined)));
      }
    },
  };

  const activities = { ...core, ...cdc, ...createAppControlActivities(deps), ...createTrafficActivities(deps) };
  return redactingActivities(activities);
}

export type MigrationActivities = ReturnType<typeof createActivities>;
