/**
 * The replication shape (`logical`, `pgcopydb`, `dms`, `triggers`): copy and follow the source's changes while
 * the application keeps writing, then a window of seconds: freeze, drain to the source's final
 * position, sequences, stop. The method's traits decide which steps it has; the activities behind
 * each step dispatch to the method's implementation.
 */
import { ActivityFailure, ApplicationFailure, condition, patched, setHandler, TimeoutFailure } from '@temporalio/workflow';
import type { ReplicationState } from '../../activities';
import type { VerificationReport } from '../../activities/database/verify';
import { durationMs } from '../../contract/input';
import { describeCopyProgress, formatBytes, windowCopy, withoutReplicaIdentity } from '../../contract/plan';
import { verificationSnapshotTakenSignal, type GateDecision } from '../../signals';
import { activities } from '../activity-options';
import { failureMessage } from '../progress';
import type { MigrationRun } from './run';
import { freezeSource, reconcileSequences, registerTargetReset, replayRoles, targetBaseline, type Cutover } from './window';

const { regular, long, lagPolling, undo, window } = activities;

/** A replication that has caught up, waiting for the cutover. */
export interface Replication {
  /** The clone-and-follow running beside the workflow (methods that follow beside it). */
  follower?: { done: Promise<void>; failure: () => Error | undefined; exitStep: string };
  /** Tables given REPLICA IDENTITY FULL for the migration's sake: restored after go-live. */
  identityChanged: ReturnType<typeof withoutReplicaIdentity>;
}

/** Replica identity, schema, replication started, initial copy, indexes, catch-up: all with the source writable. */
export async function copyAndFollow(run: MigrationRun): Promise<Replication> {
  const { input, plan, progress, saga } = run;
  const cdcArgs = run.cdcArgs;
  const noIdentity = withoutReplicaIdentity(plan.source.tables);
  const identityChanged =
    run.method.replicaIdentity && noIdentity.length > 0 && input.replication.tablesWithoutPrimaryKey === 'replica-identity-full'
      ? noIdentity
      : [];
  if (identityChanged.length) {
    saga.register('restore-replica-identity', () => undo.restoreReplicaIdentity({ ...cdcArgs, tables: identityChanged }));
    await progress.step('replica-identity', 'preparing-source', () =>
      regular.setReplicaIdentityFull({ ...cdcArgs, tables: identityChanged }),
    );
  }
  registerTargetReset(run);
  saga.register('stop-replication', () => undo.stopReplication(cdcArgs));

  const replication: Replication = { identityChanged };
  const startReplication = () =>
    progress.step('start-replication', 'copying', () =>
      long.startReplication({
        ...cdcArgs,
        tables: plan.source.tables,
        tablesWithoutPrimaryKey: input.replication.tablesWithoutPrimaryKey,
        ...(run.method.snapshotCopy ? { initialCopy: 'pgcopydb' as const } : {}),
      }),
    );
  if (run.method.schemaSteps) {
    await progress.step('copy-schema', 'copying', () => long.copySchema({ ...cdcArgs, baseline: targetBaseline(run) }));
    await startReplication();
  }
  if (run.method.snapshotCopy) {
    // The slot, its exported snapshot and pgcopydb's copy of it in one activity (a retry starts over
    // from a new slot: a snapshot lives only as long as its session); the undos registered above drop
    // slot and publication and reset the target. Then the subscription streams from that slot.
    await progress.step('snapshot-copy', 'copying', () =>
      activities.snapshotCopy.copySnapshot({
        ...cdcArgs,
        jobs: input.parallelJobs,
        baseline: targetBaseline(run),
        tables: plan.source.tables,
        ...(input.copy.splitTablesLargerThan ? { splitTablesLargerThan: input.copy.splitTablesLargerThan } : {}),
      }),
    );
    await startReplication();
  }
  const follower = run.method.follower;
  if (follower) {
    let failure: Error | undefined;
    const followArgs = { ...cdcArgs, jobs: input.parallelJobs, baseline: targetBaseline(run) };
    const done = run
      .runInBackground(() =>
        follower.activity === 'copyAndApply'
          ? activities.captureApply.copyAndApply({ ...followArgs, tables: plan.source.tables })
          : activities.cloneFollow.runPgcopydb(followArgs),
      )
      .then(
        () => undefined,
        (err: unknown) => {
          failure = err instanceof Error ? err : new Error(String(err));
        },
      );
    replication.follower = { done, failure: () => failure, exitStep: follower.exitStep };
  }

  const watch = async (step: 'initial-copy' | 'catch-up', maxLagBytes: number, done: (s: ReplicationState) => boolean) => {
    // The lag when this step's wait began (its progress is the part of it gone), from the first call's report.
    let lagAtStart: number | undefined;
    for (;;) {
      const failure = replication.follower?.failure();
      if (failure) throw failure;
      const state = await lagPolling.waitForReplication({
        ...cdcArgs,
        maxLagBytes,
        maxLagSeconds: input.replication.maxLagSeconds,
        maxLagChanges: input.replication.maxLagChanges,
        reportAfterMs: 30_000,
        // The bound on replication errors runs on across calls and workers: it starts when they began.
        errorTimeoutMs: durationMs(input.replication.errorTimeout),
        ...(run.status.replication?.errors?.since ? { errorsSince: run.status.replication.errors.since } : {}),
        progressStep: step,
        ...(lagAtStart !== undefined ? { lagAtStart } : {}),
      });
      lagAtStart ??= state.lagAtStart;
      run.status.replication = { ...state, updatedAt: new Date(Date.now()).toISOString() };
      const lag =
        state.lagChanges !== undefined
          ? `${state.lagChanges ?? '?'} changes, ${state.lagSeconds ?? '?'} s`
          : state.lagSeconds !== undefined
            ? `${state.lagSeconds ?? '?'} s`
            : `${state.lagBytes ?? '?'} bytes`;
      const copying = state.copy && state.copy.percent < 100 ? state.copy : undefined;
      progress.phase(
        run.status.phase,
        copying ? describeCopyProgress(copying) : `${state.tablesReady}/${state.tablesTotal} tables ready, lag ${lag}`,
      );
      if (done(state)) return state;
    }
  };
  await progress.step('initial-copy', 'copying', () =>
    watch('initial-copy', Number.MAX_SAFE_INTEGER, (s) => s.tablesTotal > 0 && s.tablesReady === s.tablesTotal),
  );
  if (run.method.schemaSteps) {
    await progress.step('indexes', 'copying', () =>
      long.copySchemaAfterData({ ...cdcArgs, baseline: targetBaseline(run), jobs: input.parallelJobs }),
    );
  }
  // Outside the window: the tables are on the target; large objects copied in the window carry their owner then.
  await replayRoles(run, regular);
  await progress.step('catch-up', 'catching-up', () => watch('catch-up', input.replication.maxLagBytes, (s) => s.caughtUp));
  if (patched('refresh-materialized-views')) {
    // The schema-only copy left them unpopulated: refreshed once the data is in, outside the window
    // (dropped with the rest of the target by reset-target). pgcopydb's copy may have populated them as of
    // its snapshot: refreshed all the same, to the data caught up since.
    await progress.step(
      'refresh-materialized-views',
      'catching-up',
      () => long.refreshMaterializedViews(cdcArgs),
      (refreshed) => (refreshed.length ? `refreshed ${refreshed.join(', ')}` : 'no materialized view populated on the source'),
    );
  }
  return replication;
}

/**
 * The cutover decision, unless what runs beside the workflow (pgcopydb's follow, the triggers method's
 * apply) dies first: then the wait ends with its failure, before anything is frozen, rather than at a
 * drain that would wait out its timeout with writes frozen and blame the marker.
 */
export function awaitCutover(run: MigrationRun, replication: Replication): Promise<GateDecision> {
  const follower = replication.follower;
  const watched = follower && patched('cutover-ends-when-the-follower-fails');
  return run.gates.wait('cutover', watched ? { unless: follower.failure } : {});
}

/** CDC methods report catalog differences without failing on them: the detail points at them. */
function catalogNote(report: VerificationReport): string {
  const [first, ...more] = report.catalogDifferences ?? [];
  return first ? `; the catalog differs: ${first}${more.length ? ` (and more: see catalogDifferences)` : ''}` : '';
}

/** A verification that did not fail on the data but lost its worker (heartbeat or start-to-close timeout). */
function lostItsWorker(err: unknown): boolean {
  return err instanceof ActivityFailure && err.cause instanceof TimeoutFailure;
}

/**
 * The full comparison on freeze-point snapshots, beside the window. A verification whose worker died
 * before it took its snapshots is started again: the workflow waits for the snapshots before going
 * live, so fresh ones still describe the freeze point. Once snapshots were taken the window goes on
 * and the target may take writes, so a lost verification is then reported as not run, never as failed.
 */
function verifyBeside(run: MigrationRun, drainTimeoutMs: number, snapshotTaken: () => boolean, attempt = 1): Promise<boolean> {
  const { input, plan, status } = run;
  return run
    .runInBackground(() =>
      activities.freezePointVerification.verifyAtFreezePoint({
        ...run.cdcArgs,
        tables: plan.source.tables,
        jobs: input.parallelJobs,
        drainTimeoutMs,
        ...(run.catalogOptions ? { catalog: run.catalogOptions } : {}),
      }),
    )
    .then(
      (report) => {
        run.reportCatalog(report);
        status.verification = {
          state: 'passed',
          detail: `${report.tablesChecked} tables, ${report.rowsChecked} rows: counts and checksums equal${catalogNote(report)}`,
        };
        run.verification = 'passed';
        run.rowsCopied = report.rowsChecked;
        return true;
      },
      (err: unknown) => {
        if (lostItsWorker(err) && !run.compensating && patched('verification-survives-a-worker')) {
          if (!snapshotTaken() && !run.goLiveAttempted && attempt < 3) return verifyBeside(run, drainTimeoutMs, snapshotTaken, attempt + 1);
          const why = snapshotTaken()
            ? 'its snapshots went with it (the target may have taken writes since)'
            : run.goLiveAttempted
              ? 'the target has taken writes since go-live'
              : 'three attempts lost their worker';
          status.verification = { state: 'not-run', detail: `not run: its worker was lost and ${why} (${failureMessage(err)})` };
          run.verification = 'not-run';
          return false;
        }
        status.verification = { state: 'failed', detail: failureMessage(err) };
        run.verification = 'failed';
        return false;
      },
    );
}

/**
 * The window of a replication method. Its steps run as local activities: in the worker, without a
 * server round trip each, which is most of what separates a 1 s cutover from a 0.3 s one. The full
 * verification runs beside it on snapshots taken the moment the drain marker is applied.
 */
export async function drainAndStop(run: MigrationRun, replication: Replication): Promise<Cutover> {
  const { input, progress, status } = run;
  const cdcArgs = run.cdcArgs;
  // Approved ahead of time, the gate did not wait: a follower that died by now is not frozen for.
  const dead = replication.follower?.failure();
  if (dead && patched('cutover-ends-when-the-follower-fails')) throw dead;
  // What the change stream does not carry is copied once writes are frozen. Asked here, before the window's
  // first local activity: patch markers recorded after local activities made query replays nondeterministic
  // now and then under load (see windowActivities).
  const inWindow = windowCopy(run.method, run.plan.source);
  const copyFirst = (inWindow.unlogged.length > 0 || inWindow.largeObjects > 0) && patched('copy-in-window-before-drain');
  const frozen = await freezeSource(run, window);
  const drainTimeoutMs = durationMs(input.replication.drainTimeout);
  let snapshotTaken = false;
  setHandler(verificationSnapshotTakenSignal, (taken) => {
    snapshotTaken = true;
    if (taken) status.catalogDifferences = taken.catalogDifferences;
  });
  status.verification = { state: 'running' };
  // Waits for the drain marker on its own, then snapshots both sides and signals: it runs beside the window.
  // Its own scope: a rollback cancels it first, so its snapshots do not hold locks the undos need.
  const fullVerification = verifyBeside(run, drainTimeoutMs, () => snapshotTaken);
  // Now that it cannot change, before the drain, so the verification's snapshots (taken once the drain's
  // marker arrives) include it. Reset with the rest of the target by reset-target (registered before the copy began).
  if (copyFirst) {
    await progress.step(
      'copy-in-window',
      'draining',
      () =>
        window.copyInWindow({
          ...cdcArgs,
          unlogged: inWindow.unlogged,
          largeObjects: inWindow.largeObjects > 0,
          ...(run.rolesReplayed ? { roleMap: input.roles.map } : {}),
        }),
      (c) =>
        `${c.tables} UNLOGGED table(s), ${c.rows} rows (${formatBytes(c.bytes)}); ${c.objects} large object(s) (${formatBytes(c.objectBytes)}); ${c.elapsedMs} ms`,
    );
  }
  const drain = run.method.slowDrain ? activities.slowDrain : window;
  await progress.step('drain', 'draining', () => drain.drainReplication({ ...cdcArgs, timeoutMs: drainTimeoutMs }));
  const follower = replication.follower;
  if (follower) {
    // It applied up to its end position (the marker arrived): it ends on its own now.
    await progress.step(follower.exitStep, 'draining', async () => {
      await follower.done;
      const failure = follower.failure();
      if (failure) throw failure;
    });
  }
  await reconcileSequences(run, window);
  if (!copyFirst && run.method.largeObjectsInWindow && run.plan.source.largeObjects > 0) {
    // Histories recorded before copy-in-window-before-drain (the triggers method only) copied them here.
    await progress.step('copy-large-objects', 'draining', () => window.copyLargeObjects(cdcArgs));
  }
  await progress.step('stop-replication', 'stopping-replication', () => window.stopSubscription(cdcArgs));

  return {
    frozen,
    fullVerification,
    snapshotReady: async () => {
      await condition(() => snapshotTaken || status.verification?.state !== 'running');
      if (status.verification?.state === 'failed' && !snapshotTaken) {
        throw ApplicationFailure.nonRetryable(
          `verification could not take its snapshots: ${status.verification.detail}`,
          'VerificationFailed',
        );
      }
    },
    afterGoLive: async () => {
      // With reverse replication the marker stays (the rollback drains through it) until decommission.
      await progress.step('drop-replication', 'completed', () =>
        long.dropReplicationLeftovers({ ...cdcArgs, keepMarkers: !!input.hold?.reverseReplication }),
      );
      if (replication.identityChanged.length) {
        // The schema copy carried the FULL set for the migration to the target as well: restored there too,
        // now that nothing applies to it. With reverse replication the target keeps FULL for the hold (its
        // publication needs it) and stopping it restores the target's identity.
        const onTarget = !input.hold?.reverseReplication && patched('restore-replica-identity-on-target');
        await progress.step('restore-replica-identity', 'completed', () =>
          regular.restoreReplicaIdentity({ ...cdcArgs, tables: replication.identityChanged, ...(onTarget ? { onTarget } : {}) }),
        );
      }
    },
  };
}
