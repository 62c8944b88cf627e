/**
 * The write-freeze window's steps, the same for every method: freeze the source (application
 * quiesced first), reconcile sequences, switch the application to the target (frozen too, so a
 * rollback loses nothing), and go live, the point of no return. Each step registers its undo first.
 */
import { ApplicationFailure, patched } from '@temporalio/workflow';
import type { MigrationActivities } from '../../activities';
import { durationMs } from '../../contract/input';
import { mapRole } from '../../contract/roles';
import { activities } from '../activity-options';
import type { MigrationRun } from './run';

const { undo } = activities;

/** The window's activities: local for replication methods (no server round trip per step). */
export type WindowActivities = Pick<
  MigrationActivities,
  'freezeSource' | 'reconcileSequences' | 'freezeTarget' | 'swapConfig' | 'smokeTest' | 'unfreezeTarget'
>;

export type Frozen = Awaited<ReturnType<MigrationActivities['freezeSource']>>;

/** What a method's copy phase hands to the rest of the window. */
export interface Cutover {
  frozen: Frozen;
  /** Resolves once freeze-point verification holds its snapshots (replication methods); fails if it could not. */
  snapshotReady: () => Promise<void>;
  /** The method's own cleanup once the application writes to the target. */
  afterGoLive: () => Promise<void>;
  /** Full verification running beside the window: true when it passed. */
  fullVerification?: Promise<boolean>;
}

/**
 * Replication methods run the window's short steps as local activities (no server round trip per step).
 * The freeze-copy runs them as regular activities: for a while it ran them locally (a dead worker then
 * cost the 3 s workflow task timeout instead of about 5 s), and histories of that time replay so; that was
 * withdrawn because patch markers recorded after those local activities (the copy's, the hold's) made
 * replays for queries fail with nondeterminism now and then under load.
 */
export function windowActivities(run: MigrationRun): WindowActivities {
  if (run.method.shape !== 'freeze-copy') return activities.window;
  if (!patched('freeze-copy-window-regular-again') && patched('freeze-copy-window-local')) return activities.window;
  return activities.freezeCopyWindow;
}

export async function freezeSource(run: MigrationRun, acts: WindowActivities): Promise<Frozen> {
  const { plan, migrationId, source, status } = run;
  await run.appControl.quiesce(run.saga);
  run.saga.register(
    'unfreeze-source',
    async () => {
      // With the application back on the source (production first), the write outage ends here.
      const endsWindow = status.sides.application === 'source';
      const done = await undo.unfreezeSource({
        migrationId,
        url: source,
        roles: plan.appRoles,
        prior: plan.source.readOnlySettings,
        reportWindowEdge: endsWindow,
      });
      status.sides.sourceWritable = true;
      if (endsWindow) run.windowEdge({ side: 'source', edge: 'unfrozen', at: done.unfrozenAt });
    },
    'application',
  );
  const frozen = await run.progress.step('freeze-source', 'freezing-source', () =>
    acts.freezeSource({
      migrationId,
      url: source,
      roles: plan.appRoles,
      drainTimeoutMs: durationMs(run.input.freeze.drainTimeout),
      reportWindowEdge: true,
    }),
  );
  status.sides.sourceWritable = false;
  run.windowEdge({ side: 'source', edge: 'frozen', at: frozen.frozenAt });
  return frozen;
}

/** The target back to its preflight baseline: the undo of every copy. */
export function registerTargetReset(run: MigrationRun): void {
  const { migrationId, target } = run;
  const baseline = targetBaseline(run);
  run.saga.register('reset-target', async () => {
    // If going live failed half-way the application may already have written to the target: keep its data.
    if (run.goLiveAttempted) {
      throw ApplicationFailure.nonRetryable(
        'skipped: go-live was attempted, the target may hold application writes; left intact for inspection',
      );
    }
    const reset = await undo.resetTarget({ migrationId, target, baseline });
    const told = [
      ...(reset.keptForeign?.length ? [`kept objects of other roles: ${reset.keptForeign.join(', ')}`] : []),
      ...(reset.droppedForeign?.length
        ? [`dropped with the migration's objects they depended on: ${reset.droppedForeign.join(', ')}`]
        : []),
    ];
    return told.length ? told.join('; ') : undefined;
  });
}

/** What the target held before the migration: a reset keeps it and drops everything else. */
export function targetBaseline(run: MigrationRun) {
  const { plan } = run;
  return { schemas: plan.target.schemas, extensions: plan.target.extensions, largeObjects: plan.target.largeObjects };
}

/**
 * The source's roles, ownership and privileges onto the target (after the copy, before the smoke test).
 * Its undo, which runs before reset-target, gives the objects back to the master (or the reset would keep
 * them as another role's) and drops the roles this migration created. Plans made before roles were carried
 * list none: nothing is replayed for them.
 */
export async function replayRoles(run: MigrationRun, acts: Pick<MigrationActivities, 'replayRoles'>): Promise<void> {
  const { input, plan, migrationId, source, target, saga, progress } = run;
  if (!plan.source.roles || !patched('replay-roles')) return;
  const appRole = run.appRole?.role;
  const roles = [...new Set([...plan.source.roles.map((r) => mapRole(input.roles.map, r.name)), ...(appRole ? [appRole] : [])])];
  saga.register('undo-roles', async () => {
    if (run.goLiveAttempted) {
      throw ApplicationFailure.nonRetryable('skipped: go-live was attempted, the application may use these roles on the target');
    }
    const undone = await undo.undoRoles({ migrationId, target, roles });
    return `${undone.reassigned} object(s) given back to the master user; roles dropped: ${undone.dropped.join(', ') || 'none'}${undone.kept.length ? `; kept (they hold privileges in other databases): ${undone.kept.join(', ')}` : ''}`;
  });
  await progress.step('replay-roles', 'copying', () =>
    acts.replayRoles({
      migrationId,
      source,
      target,
      map: input.roles.map,
      ...(appRole ? { applicationRole: appRole } : {}),
      ...(run.method.shape === 'freeze-copy' ? { verify: true } : {}),
    }),
  );
  run.rolesReplayed = true;
}

/** Sequences are undone with the rest of the target by reset-target. */
export function reconcileSequences(run: MigrationRun, acts: WindowActivities) {
  const { migrationId, source, target } = run;
  return run.progress.step('reconcile-sequences', 'reconciling-sequences', () => acts.reconcileSequences({ migrationId, source, target }));
}

/**
 * The application onto the target, still frozen: reverse replication (if asked for) before the target
 * can take a write, then freeze the target, swap DATABASE_URL, one coordinated restart, smoke tests.
 */
export async function switchApplication(run: MigrationRun, cutover: Cutover): Promise<void> {
  const { input, plan, migrationId, target, saga, progress } = run;
  const acts = windowActivities(run);
  const targetRoles = run.targetRoles;
  const reverse = run.reverse;
  if (reverse) {
    // Before the target takes its first write, so the rollback path carries every one of them.
    saga.register('stop-reverse-replication', () => undo.stopReverseReplication({ ...reverse, tables: plan.source.tables }));
    await progress.step('start-reverse-replication', 'preparing-rollback', () =>
      activities.regular.startReverseReplication({ ...reverse, tables: plan.source.tables, appRoles: plan.appRoles }),
    );
    // A capture is applied to the source beside the workflow for as long as the rollback path lasts.
    if (run.method.reverse === 'capture') run.reverseApply = run.runBeside(() => activities.captureApply.applyReverse(reverse));
  }

  // The application must not write to the target before go-live: a rollback would lose those writes.
  // Cleanup, not production: by the time it runs the application has its source back.
  saga.register('unfreeze-target', async () => {
    await undo.unfreezeTarget({ migrationId, url: target, roles: targetRoles, prior: plan.target.readOnlySettings });
    run.status.sides.targetWritable = true;
  });
  await progress.step('freeze-target', 'freezing-target', () =>
    acts.freezeTarget({ migrationId, url: target, roles: targetRoles, drainTimeoutMs: durationMs(input.freeze.drainTimeout) }),
  );
  run.status.sides.targetWritable = false;

  run.appControl.registerRestartUndo(saga);
  saga.register(
    'restore-config',
    async () => {
      await undo.restoreConfig({ migrationId, sink: input.configSink });
      run.status.sides.application = 'source';
    },
    'application',
  );
  await progress.step('swap-config', 'swapping-config', () =>
    acts.swapConfig({ migrationId, sink: input.configSink, appUrl: run.appUrl, urlParams: input.target.urlParams, ...run.appCredential }),
  );
  run.status.sides.application = 'target';
  await run.appControl.restart();
  await progress.step('smoke-test', 'smoke-testing', () =>
    acts.smokeTest({
      migrationId,
      appUrl: run.appUrl,
      tables: run.dataTables,
      sql: input.smoke.sql,
      // The application's own role: connected with what the sink now holds, its privileges compared with the source's.
      ...(run.appRole ? { sink: input.configSink, compareWith: { source: run.source, role: run.appRole.sourceRole } } : {}),
    }),
  );
  await run.appControl.healthChecks();
  await cutover.snapshotReady();

  if (cutover.fullVerification && input.verify.fullBeforeGoLive) {
    const passed = await progress.step('verify', 'verifying', () => cutover.fullVerification!);
    if (!passed) throw ApplicationFailure.nonRetryable(run.status.verification?.detail ?? 'verification failed', 'VerificationFailed');
  }
}

/**
 * The target writable: the point of no return. The source stays read-only as the rollback reference;
 * from here nothing may undo the target, so the undo stack is dropped.
 */
export async function goLive(run: MigrationRun, cutover: Cutover): Promise<void> {
  const { plan, migrationId, target, status } = run;
  run.goLiveAttempted = true;
  const live = await run.progress.step('go-live', 'going-live', () =>
    windowActivities(run).unfreezeTarget({
      migrationId,
      url: target,
      roles: run.targetRoles,
      prior: plan.target.readOnlySettings,
      reportWindowEdge: true,
    }),
  );
  run.saga.forget();
  status.sides.targetWritable = true;
  run.windowEdge({ side: 'target', edge: 'unfrozen', at: live.unfrozenAt });
  await run.appControl.resume();
  await cutover.afterGoLive();
  if (cutover.fullVerification) {
    // Reported, not undone: the application's writes on the target are not thrown away silently.
    run.progress.phase('going-live', 'full verification of the freeze-point snapshots');
    await cutover.fullVerification;
  }
}
