/**
 * After go-live the source is kept read-only as the rollback target for `hold.duration`. A
 * `rollback` Update during the hold switches back losslessly through reverse replication; when the
 * hold ends the decommission gate decides whether the rollback path is dropped (no-go or timeout:
 * hold again).
 */
import { condition, isCancellation, patched } from '@temporalio/workflow';
import type { ReverseArgs } from '../../activities';
import { durationMs, type MigrationInput } from '../../contract/input';
import type { MigrationResult, MigrationStatus } from '../../signals';
import { activities } from '../activity-options';
import { failureMessage } from '../progress';
import { Compensations } from '../saga';
import type { MigrationRun, RollbackRequest } from './run';

const { regular, long, undo, window } = activities;

type HoldStatus = NonNullable<MigrationStatus['hold']>;

/** Returns a result when the migration ends rolled back; undefined once the rollback path is decommissioned. */
export async function holdThenDecommission(
  run: MigrationRun,
  hold: NonNullable<MigrationInput['hold']>,
  goLiveGatePending: boolean,
): Promise<MigrationResult | undefined> {
  const { input, plan, progress, status, gates, migrationId } = run;
  const holdMs = durationMs(hold.duration);
  const reverseArgs = run.reverse;
  const reverse = reverseArgs ? { ...reverseArgs, tables: plan.source.tables } : undefined;
  run.holding = true;
  const held: HoldStatus = { until: new Date(Date.now() + holdMs).toISOString(), reverseReplication: !!reverse };
  status.hold = held;
  if (goLiveGatePending) {
    progress.phase('awaiting-go-live', 'writes resumed on the target; a no-go rolls back losslessly');
    const decision = await gates.wait('go-live');
    if (!decision.approved) {
      const why = `go-live ${decision.via === 'timeout' ? 'timed out' : 'rejected'}${decision.reason ? `: ${decision.reason}` : ''}`;
      run.rollbackRequest ??= { approver: decision.approver, reason: why, requestedAt: decision.decidedAt };
    }
  }
  for (;;) {
    // Each round holds for the whole duration again (after the go-live decision, a failed rollback, a rejected decommission).
    held.until = new Date(Date.now() + holdMs).toISOString();
    progress.phase('holding', `source kept as the rollback target until ${held.until}`);
    await condition(() => run.rollbackRequest !== undefined, holdMs);
    if (run.rollbackRequest && reverse) {
      const rolledBack = await rollBackAfterGoLive(run, held, reverse, run.rollbackRequest);
      if (rolledBack) return rolledBack;
      run.rollbackRequest = undefined; // it failed and was undone: the application is on the target, a new request may come
      continue;
    }
    progress.phase('awaiting-decommission');
    // While the decommission gate is open a rollback is refused (reject decommission to hold again, then
    // ask): an accepted request would otherwise be dropped by an approval of the gate.
    run.holding = false;
    const decision = await gates.wait('decommission');
    if (decision.approved) break;
    run.holding = true;
    gates.reopen('decommission');
  }
  progress.phase('decommissioning');
  await dropRollbackPath(run, 'decommissioning');
  // The rollback path is given up: e.g. on Heroku the old add-on is detached from the app.
  await progress.step('release-config', 'decommissioning', () => regular.releaseConfig({ migrationId, sink: input.configSink }));
  return undefined;
}

/**
 * Without a hold there is no rollback path past go-live, so the sink's record of the previous value goes
 * at completion (an env file's backup holds the source's password in clear). Heroku's release would
 * destroy the old add-on: that stays for the operator to decommission.
 */
export async function releaseWithoutHold(run: MigrationRun): Promise<void> {
  const { input, migrationId, progress } = run;
  if (input.configSink.type === 'heroku' || !patched('release-config-without-hold')) return;
  await progress.step('release-config', 'completed', () => regular.releaseConfig({ migrationId, sink: input.configSink }));
}

/** Reverse replication stopped and the markers dropped: the rollback path given up, the application untouched. */
export async function dropRollbackPath(run: MigrationRun, phase: 'decommissioning' | 'completed'): Promise<void> {
  const { plan, progress } = run;
  const cdcArgs = run.cdcArgs;
  const reverseArgs = run.reverse;
  if (reverseArgs) {
    const reverse = { ...reverseArgs, tables: plan.source.tables };
    await progress.step('stop-reverse-replication', phase, async () => {
      await run.reverseApply?.stop();
      return regular.stopReverseReplication(reverse);
    });
  }
  await progress.step('drop-markers', phase, () => long.dropReplicationLeftovers(cdcArgs));
}

/**
 * Rollback during the hold: freeze the target, drain reverse replication, switch config back, source
 * writable. Undefined when it failed and was undone (the application stays on the target).
 */
async function rollBackAfterGoLive(
  run: MigrationRun,
  hold: HoldStatus,
  reverse: ReverseArgs,
  request: RollbackRequest,
): Promise<MigrationResult | undefined> {
  const { input, plan, progress, status, migrationId, source, target } = run;
  run.holding = false;
  const targetRoles = run.targetRoles;
  hold.rollback = {
    requestedBy: request.approver,
    ...(request.reason ? { reason: request.reason } : {}),
    requestedAt: request.requestedAt,
  };
  progress.phase('rolling-back', `requested by ${request.approver}`);
  // The rollback has its own undo stack: if it fails before the source takes writes, the application
  // keeps running on the target (unfrozen, config pointing at it) and the hold goes on.
  const rollbackUndo = new Compensations();
  let frozenAt: number;
  let unfrozenAt: number;
  try {
    // All of the rollback's undos give the application its target back: one group, plain reverse order.
    rollbackUndo.register(
      'unfreeze-target',
      () => undo.unfreezeTarget({ migrationId, url: target, roles: targetRoles, prior: plan.target.readOnlySettings }),
      'application',
    );
    ({ frozenAt } = await progress.step('rollback-freeze-target', 'rolling-back', () =>
      window.freezeTarget({ migrationId, url: target, roles: targetRoles, drainTimeoutMs: durationMs(input.freeze.drainTimeout) }),
    ));
    status.sides.targetWritable = false;
    await progress.step('rollback-drain', 'rolling-back', () =>
      window.drainReverse({ ...reverse, timeoutMs: durationMs(input.replication.drainTimeout) }),
    );
    // The target is now the source of truth for sequences.
    await progress.step('rollback-sequences', 'rolling-back', () =>
      window.reconcileSequences({ migrationId, source: target, target: source }),
    );
    // Back to the target, then one restart, so no process stays on the read-only source.
    if (patched('rollback-undo-restarts')) run.appControl.registerRestartUndo(rollbackUndo);
    rollbackUndo.register(
      'swap-config-to-target',
      () =>
        undo.swapConfig({
          migrationId,
          sink: input.configSink,
          appUrl: run.appUrl,
          urlParams: input.target.urlParams,
          ...run.appCredential,
        }),
      'application',
    );
    await progress.step('rollback-config', 'rolling-back', () => window.restoreConfig({ migrationId, sink: input.configSink }));
    status.sides.application = 'source';
    await run.appControl.restart();
    ({ unfrozenAt } = await progress.step('rollback-unfreeze-source', 'rolling-back', () =>
      window.unfreezeSource({ migrationId, url: source, roles: plan.appRoles, prior: plan.source.readOnlySettings }),
    ));
    status.sides.sourceWritable = true;
  } catch (err) {
    if (isCancellation(err)) throw err;
    await rollbackUndo.runAll((record) => status.compensations.push(record));
    hold.rollback = { ...hold.rollback, reason: `FAILED, undone, the hold goes on: ${failureMessage(err)}` };
    run.holding = true;
    return undefined;
  }
  // Writes land on the source again; reverse replication has nothing more to carry.
  await progress.step('rollback-stop-reverse', 'rolled-back', async () => {
    await run.reverseApply?.stop(); // it ended at the rollback marker: this only waits for its end
    return regular.stopReverseReplication(reverse);
  });
  hold.rollback.windowMs = unfrozenAt - frozenAt;
  await progress.step('drop-markers', 'rolled-back', () => long.dropReplicationLeftovers({ migrationId, source, target }));
  const reason = `rolled back during the hold by ${request.approver}${request.reason ? `: ${request.reason}` : ''}`;
  progress.phase('rolled-back', reason);
  progress.outcome('rolled-back');
  return run.result('rolled-back', reason);
}
