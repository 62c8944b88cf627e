/**
 * Stand-ins for the migration and rehearsal activities: each records its call (name, argument,
 * whether it ran as a local activity) and returns a plausible value of the real activity's type,
 * without a database, a file or a cloud API. A test can inject a non-retryable failure after the
 * n-th call of an activity, pause an activity until a promise settles, or replace one outright.
 */
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { MigrationActivities } from '../../activities';
import type { HostActivities } from '../../activities/host';
import type { RehearsalActivities } from '../../activities/rehearsal';
import { scratchNames } from '../../contract/rehearsal';
import { buildPlan, type DatabaseInventory, type TableInventory } from '../../contract/plan';
import { verificationSnapshotTakenSignal } from '../../signals';
import { inventory as fixtureInventory, tableInventory } from '../helpers/inventory';

type AllActivities = MigrationActivities & RehearsalActivities & HostActivities;
export type ActivityName = Extract<keyof AllActivities, string>;
type Fake<K extends ActivityName> = (...args: Parameters<AllActivities[K]>) => Promise<Awaited<ReturnType<AllActivities[K]>>>;
/**
 * Fakes typed like the real activities, one for each: a changed argument or result shape, or a new
 * activity without a fake, breaks the type check here instead of hanging a workflow test.
 */
type AllFakes = { [K in ActivityName]: Fake<K> };
export type FakeActivities = Partial<AllFakes>;

export interface Call {
  name: ActivityName;
  /** The activity's (first and only) argument. */
  args: unknown;
  /** Ran as a local activity (the CDC write-freeze window). */
  local: boolean;
}

export interface FakeOptions {
  /** verifyAtFreezePoint signals its workflow through it, as the real one does. */
  client: Client;
  /** Tables of the source inventory; default: two with a primary key and one without. */
  tables?: TableInventory[];
  /** After the activity ran (its `call`-th call, default the first), a non-retryable failure. */
  failAfter?: { activity: ActivityName; call?: number };
  /** The activity waits for this promise before it returns (to act on the workflow while it is there). */
  pauses?: Partial<Record<ActivityName, Promise<unknown>>>;
  /** Replaces a fake. */
  overrides?: FakeActivities;
}

export interface Fakes {
  activities: Record<string, (arg: unknown) => Promise<unknown>>;
  calls: Call[];
  /** Activity names in call order, optionally without some (activities that run beside the workflow). */
  names: (opts?: { except?: ActivityName[] }) => ActivityName[];
  /** Notable moments inside fakes (pgcopydb started / reached its endpos / cancelled), in order. */
  events: string[];
  /** Calls (by name) and events together, in the order they happened. */
  timeline: string[];
}

export const table = tableInventory;

export const DEFAULT_TABLES: TableInventory[] = [
  table('shop', 'orders', 1200),
  table('shop', 'customers', 300),
  table('public', 'audit_log', 50, { hasPrimaryKey: false }),
];
export const TABLES_WITH_KEYS: TableInventory[] = DEFAULT_TABLES.filter((t) => t.hasPrimaryKey);

/** The shared fixture inventory (test/helpers/inventory.ts) of a database `role` owns, holding `tables`. */
function inventory(role: string, tables: TableInventory[], userObjects: number): DatabaseInventory {
  return fixtureInventory({
    serverVersion: '15.8',
    serverVersionNum: 150008,
    database: 'appdb',
    currentUser: role,
    sizeBytes: 40 * 1024 * 1024,
    tables,
    sequences: tables.map((t) => ({
      schema: t.schema,
      name: `${t.name}_id_seq`,
      lastValue: t.estimatedRows,
      ownedBy: { schema: t.schema, table: t.name, column: 'id' },
    })),
    availableExtensions: ['plpgsql', 'pgcrypto'],
    schemas: userObjects ? ['public', 'shop'] : ['public'],
    userObjects,
    walBytesPerSecond: 2048,
  });
}

const report = (tables: TableInventory[]) => ({
  ok: true,
  tablesChecked: tables.length,
  rowsChecked: tables.reduce((n, t) => n + t.estimatedRows, 0),
  mismatches: [],
  schemaDifferences: [],
  sequenceProblems: [],
});

export function fakeActivities(opts: FakeOptions): Fakes {
  const tables = opts.tables ?? DEFAULT_TABLES;
  const calls: Call[] = [];
  const events: string[] = [];
  const timeline: string[] = [];
  const event = (what: string) => {
    events.push(what);
    timeline.push(what);
  };
  let drained = false;
  const frozen = () => ({
    frozenAt: Date.now(),
    drainedSessions: 1,
    terminatedSessions: 0,
    drainMs: 2,
    probe: 'write refused (read-only)',
  });
  const unfrozen = () => ({ unfrozenAt: Date.now(), reconnectedSessions: 0 });

  /** Copy and follow beside the workflow until the drain's marker; heartbeats so that a rollback's cancellation reaches it. */
  const followUntilDrained = async (label: string) => {
    const ctx = Context.current();
    event(`${label}:started`);
    const started = Date.now();
    try {
      while (!drained) {
        ctx.heartbeat({ stage: 'following' });
        await ctx.sleep(50);
      }
    } catch (err) {
      event(`${label}:cancelled`);
      throw err;
    }
    event(`${label}:reached-endpos`);
    return { mode: label, elapsedMs: Date.now() - started, attempts: 1 };
  };

  const base: AllFakes = {
    // --- migrateDatabase ---
    preflight: async ({ input }) => buildPlan(input, inventory('app', tables, tables.length), inventory('rds_master', [], 0)),
    freezeSource: async () => frozen(),
    unfreezeSource: async () => unfrozen(),
    freezeTarget: async () => frozen(),
    unfreezeTarget: async () => unfrozen(),
    copyDumpRestore: async () => ({ dumpMs: 5, restoreMs: 7, dumpBytes: 4096, reusedDump: false, resetBeforeRestore: false }),
    // One worker without a queue of its own: the copy runs on the shared queue.
    claimHost: async () => ({ workerId: 'fake-worker' }),
    copyAndVerify: async () => ({ engine: 'pgcopydb' as const, copyMs: 12, verifyAfterCopyMs: 3, bytes: 4096, report: report(tables) }),
    resetTarget: async () => ({ droppedSchemas: ['shop'], droppedObjects: tables.length, droppedExtensions: [] }),
    reconcileSequences: async () => [{ sequence: 'shop.orders_id_seq', sourceValue: 1200, targetColumnMax: 1200, setTo: 1200 }],
    verifyCopy: async () => report(tables),
    swapConfig: async ({ sink }) => ({
      sink: sink.type,
      key: 'DATABASE_URL',
      previousFingerprint: 'sha256:0a1b2c',
      newFingerprint: 'sha256:3d4e5f',
    }),
    releaseConfig: async () => ['previous value released'],
    restoreConfig: async ({ sink }) => ({ sink: sink.type, restored: true, fingerprint: 'sha256:0a1b2c' }),
    replayRoles: async (args) => ({
      created: args.applicationRole ? [args.applicationRole] : [],
      statements: 12,
      roles: ['app'],
      largeObjectsNotYetThere: 0,
    }),
    undoRoles: async (args) => ({ reassigned: 3, dropped: args.roles, kept: [] }),
    smokeTest: async () => [
      { name: 'read', ok: true, detail: '1 row', ms: 1 },
      { name: 'write', ok: true, detail: 'committed', ms: 1 },
    ],
    // --- CDC ---
    runPgcopydb: () => followUntilDrained('pgcopydb'),
    copySnapshot: async () => ({ tables: tables.length, bytes: 4096, elapsedMs: 5, startedOver: false }),
    copyAndApply: () => followUntilDrained('apply'),
    setReplicaIdentityFull: async (args) => args.tables.map((t) => `${t.schema}.${t.name}`),
    restoreReplicaIdentity: async () => undefined,
    copySchema: async () => ({ objects: tables.length * 3 }),
    copySchemaAfterData: async () => ({ schemaDump: 'reused' }),
    refreshMaterializedViews: async () => ['shop.order_totals'],
    copyInWindow: async (args) => ({
      tables: args.unlogged.length,
      rows: 10 * args.unlogged.length,
      bytes: 100 * args.unlogged.length,
      objects: args.largeObjects ? 1 : 0,
      objectBytes: args.largeObjects ? 64 : 0,
      mode: 'replica' as const,
      elapsedMs: 1,
    }),
    startReplication: async (args) => ({ replication: ['publication pgmig_pub', 'subscription pgmig_sub'], tables: args.tables.length }),
    waitForReplication: async (args) => ({
      tablesTotal: tables.length,
      tablesReady: tables.length,
      lagBytes: args.method === 'dms' ? null : 0,
      ...(args.method === 'dms' ? { lagSeconds: 1 } : {}),
      caughtUp: true,
    }),
    drainReplication: async () => {
      drained = true;
      return { finalLsn: '0/3000148', waitedMs: 3 };
    },
    stopSubscription: async (args) => (args.method === 'dms' ? [] : ['subscription pgmig_sub']),
    dropReplicationLeftovers: async () => ['publication pgmig_pub', 'slot pgmig_slot'],
    stopReplication: async () => ['subscription pgmig_sub', 'slot pgmig_slot', 'publication pgmig_pub'],
    startReverseReplication: async () => ['publication pgmig_reverse_pub', 'subscription pgmig_reverse_sub'],
    drainReverse: async () => ({ waitedMs: 2 }),
    applyReverse: async () => ({ watermark: '0' }),
    copyLargeObjects: async () => ({ objects: 0, bytes: 0 }),
    stopReverseReplication: async () => ['subscription pgmig_reverse_sub', 'publication pgmig_reverse_pub'],
    verifyAtFreezePoint: async (args) => {
      // As the real one: snapshots taken, the workflow told, then the comparison.
      const execution = Context.current().info.workflowExecution;
      if (!execution) throw ApplicationFailure.nonRetryable('no workflow execution', 'NoWorkflow');
      await opts.client.workflow.getHandle(execution.workflowId, execution.runId).signal(verificationSnapshotTakenSignal);
      return report(args.tables);
    },
    // --- one migration per database ---
    acquireLease: async () => {
      const since = new Date().toISOString();
      return {
        source: { side: 'source', database: 'appdb', state: 'taken', since },
        target: { side: 'target', database: 'appdb', state: 'taken', since },
      };
    },
    releaseLease: async () => ({
      source: { side: 'source', database: 'appdb', state: 'released' },
      target: { side: 'target', database: 'appdb', state: 'released' },
    }),
    // --- the application and its traffic (only inputs with app / traffic reach these) ---
    herokuRefuseOneOffDynos: async (args) => ({ app: args.heroku.app, dynos: 0 }),
    herokuMaintenance: async (args) => ({ app: args.heroku.app, maintenance: args.on, changed: true }),
    herokuReadFormation: async (args) => ({ app: args.heroku.app, counts: { worker: 2 } }),
    herokuScaleDown: async (args) => ({ app: args.heroku.app, counts: { worker: 0 } }),
    herokuScaleUp: async (args) => ({ app: args.heroku.app, counts: args.counts }),
    herokuRestartAll: async (args) => ({ app: args.heroku.app, restarted: true, dynos: 3 }),
    ecsForceNewDeployment: async (args) => ({
      ...args,
      deploymentId: 'ecs-svc/2',
      previousDeploymentId: 'ecs-svc/1',
      rolloutState: 'IN_PROGRESS',
      forced: true,
    }),
    httpHealthChecks: async (args) => args.urls.map((url) => ({ url, ok: true, status: 200, latencyMs: 3 })),
    readDnsRecords: async () => ({ weights: { old: 100, new: 0 }, ttl: { old: 300, new: 300 } }),
    lowerDnsTtl: async () => ({ oldAnswersExpireAfterMs: 0, changed: ['old', 'new'] }),
    restoreDnsTtl: async () => ({ restored: ['old', 'new'] }),
    setDnsWeights: async (args) => ({ weights: args.weights, changed: true }),
    trafficHealthGate: async () => ({ ok: true, errorRate: 0, healthChecks: [], probes: [], samplesTaken: 1 }),
    // --- rehearseMigration ---
    prepareLogicalSnapshot: async (args) => ({
      sourceDatabase: scratchNames(args.rehearsalId).sourceDatabase,
      targetDatabase: scratchNames(args.rehearsalId).targetDatabase,
      sizeBytes: 40 * 1024 * 1024,
      stagingSinkPath: `/nonexistent/rehearsal-${args.rehearsalId}/staging.env`,
      description: 'logical: pg_dump of the source into a scratch database (fake)',
      details: { dumpMs: 10, restoreMs: 12 },
    }),
    prepareRdsSnapshot: async (args) => ({
      sourceDatabase: 'appdb',
      targetDatabase: scratchNames(args.rehearsalId).targetDatabase,
      sizeBytes: 40 * 1024 * 1024,
      stagingSinkPath: `/nonexistent/rehearsal-${args.rehearsalId}/staging.env`,
      description: `rds-snapshot: ${args.dbSnapshotIdentifier} restored (fake)`,
      details: { instanceClass: args.instanceClass },
      instance: scratchNames(args.rehearsalId).instance,
      endpoint: 'pgmig-rehearsal.fake.rds.example.test:5432',
    }),
    deleteRestoredInstance: async () => ['instance deleted (no final snapshot)'],
    dropScratchDatabase: async (args) => [`database ${args.database} dropped`],
    removeStagingFiles: async () => ['no staging files on this worker'],
    rehearsalChildStatus: async () => null,
    writeRehearsalReport: async (args) => ({
      files: { dir: '/nonexistent/reports', json: 'report.json', markdown: 'report.md', chart: 'phases.svg' },
      trend: { previousRehearsals: 0, comparable: 0, direction: 'first', summary: `first rehearsal of ${args.report.migrationId}` },
    }),
    // --- migrateFleet ---
    discoverFleet: async () => [],
    writeFleetReport: async (args) => ({
      json: `/nonexistent/fleets/${args.report.fleetId}/fleet.json`,
      markdown: `/nonexistent/fleets/${args.report.fleetId}/fleet.md`,
      chart: `/nonexistent/fleets/${args.report.fleetId}/windows.svg`,
    }),
  };

  const fakes: FakeActivities = { ...base, ...opts.overrides };
  const counts = new Map<string, number>();
  const activities: Fakes['activities'] = {};
  for (const [name, fake] of Object.entries(fakes) as [ActivityName, (arg: unknown) => Promise<unknown>][]) {
    activities[name] = async (arg: unknown) => {
      calls.push({ name, args: arg, local: Context.current().info.isLocal });
      timeline.push(name);
      const n = (counts.get(name) ?? 0) + 1;
      counts.set(name, n);
      const result = await fake(arg);
      const pause = opts.pauses?.[name];
      // Cancellation (the worker shutting down after a failed assertion) ends a pause too.
      if (pause) await Promise.race([pause, Context.current().cancelled]);
      if (opts.failAfter?.activity === name && (opts.failAfter.call ?? 1) === n) {
        throw ApplicationFailure.nonRetryable(`injected failure after ${name}`, 'InjectedFailure');
      }
      return result;
    };
  }
  return {
    activities,
    calls,
    events,
    timeline,
    names: (o = {}) => calls.map((c) => c.name).filter((n) => !o.except?.includes(n)),
  };
}
