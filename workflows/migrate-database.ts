/**
 * `migrateDatabase`: one migration, the seeds' runbook made durable.
 *
 *   validate -> preflight -> traffic prepared -> copy (freeze-copy: in the window; replication: copy,
 *   follow, catch up, gate "cutover", freeze, drain) -> sequences -> freeze target -> swap DATABASE_URL
 *   -> restart -> smoke test -> gate "go-live" -> go live -> traffic shift -> hold -> decommission
 *
 * Every forward step registers its undo first; no-go, gate timeout, failure and cancellation all
 * run the undos (config back, target reset, source writable again). Going live is the point of no
 * return: from then on the application's writes land on the target, and nothing here rolls them back.
 * The phases live in ./migration/, one module each; this file is the runbook.
 */
import { ApplicationFailure, CancellationScope, isCancellation, patched } from '@temporalio/workflow';
import { checkMigrationInput, formatProblems, HARDENED_INPUT_PATCH, type MigrationInputDraft } from '../contract/input';
import type { MigrationResult } from '../signals';
import { rolledBackFailure } from '../signals/outcome';
import { freezeAndCopy } from './migration/freeze-copy';
import { installHandlers } from './migration/handlers';
import { dropRollbackPath, holdThenDecommission, releaseWithoutHold } from './migration/hold';
import { DatabaseLeases } from './migration/lease';
import { awaitCutover, copyAndFollow, drainAndStop } from './migration/replication';
import { MigrationRun } from './migration/run';
import { goLive, switchApplication, type Cutover } from './migration/window';
import { activities } from './activity-options';
import { failureMessage } from './progress';
import { TrafficShift } from './traffic';

/** patched(): a rolled-back migration closes as Failed (MigrationRolledBack), not as a green Completed. */
const ROLLED_BACK_FAILS = 'rolled-back-closes-as-failed';

export async function migrateDatabase(rawInput: MigrationInputDraft): Promise<MigrationResult> {
  const ran = await runMigration(rawInput);
  if (ran.result.outcome === 'rolled-back' && patched(ROLLED_BACK_FAILS)) throw rolledBackFailure(ran.result, ran.sides);
  return ran.result;
}

async function runMigration(rawInput: MigrationInputDraft): Promise<{ result: MigrationResult; sides: string }> {
  let checked = checkMigrationInput(rawInput);
  // A run started before the input rules were hardened replays under the rules it started with.
  if (!checked.ok && !patched(HARDENED_INPUT_PATCH)) checked = checkMigrationInput(rawInput, { legacy: true });
  if (!checked.ok) throw ApplicationFailure.nonRetryable(formatProblems(checked.problems), 'InvalidInput', checked.problems);
  const input = checked.input;
  const run = new MigrationRun(input);
  const { progress, status, gates } = run;
  installHandlers(run);
  const leases = new DatabaseLeases(run);
  const ended = (result: MigrationResult) => ({ result, sides: run.describeSides() });

  try {
    // Preflight: inventory of both sides and the plan; a blocker stops the run before anything changes.
    const plan = await progress.step('preflight', 'preflight', () => activities.regular.preflight({ migrationId: run.migrationId, input }));
    run.plan = plan;
    status.plan = plan;
    progress.method(plan.method);
    if (run.method.shape === 'freeze-copy') gates.drop('cutover');
    if (plan.blockers.length) {
      const blockers = plan.blockers.join('; ');
      throw ApplicationFailure.nonRetryable(
        `preflight found ${plan.blockers.length} blocker(s); nothing was changed: ${blockers}`,
        'PreflightBlocked',
        plan.blockers,
      );
    }
    // One migration per database: both leased before anything changes (another running migration stops this one here).
    await leases.acquire();
    const traffic = input.traffic ? new TrafficShift(input.traffic, progress, status) : undefined;
    if (traffic) await traffic.prepare(run.saga);

    // Copy: with writes frozen throughout, or replicated while the application writes and then drained.
    let cutover: Cutover;
    if (run.method.shape === 'freeze-copy') {
      cutover = await freezeAndCopy(run);
    } else {
      const replication = await copyAndFollow(run);
      progress.phase('awaiting-cutover');
      const go = await awaitCutover(run, replication);
      if (!go.approved) return ended(await run.rollBack(go));
      cutover = await drainAndStop(run, replication);
    }

    // The application onto the target (frozen), then the last cheap exit.
    await switchApplication(run, cutover);
    // With reverse replication the go-live decision may come after writes resume: a no-go is then a lossless rollback.
    const decideAfterResume = !!input.hold?.goLiveAfterWritesResume;
    if (!decideAfterResume) {
      progress.phase('awaiting-go-live');
      const gateOpened = Date.now();
      const decision = await gates.wait('go-live');
      status.freezeWindow.gateWaitMs = Date.now() - gateOpened;
      if (!decision.approved) return ended(await run.rollBack(decision));
    }
    await goLive(run, cutover);

    // Past the point of no return: traffic, then the hold with its lossless rollback.
    if (traffic) await traffic.shift(gates);
    if (input.hold) {
      const rolledBack = await holdThenDecommission(run, input.hold, decideAfterResume);
      if (rolledBack) return ended(rolledBack);
    } else {
      await releaseWithoutHold(run);
    }
    // Completed, with what the operator must know: neither undoes the application's writes on the target.
    const notes = [
      ...(run.verification === 'failed' ? [`verification failed after go-live: ${status.verification?.detail}`] : []),
      ...(run.verification === 'not-run' && status.verification ? [`verification ${status.verification.detail}`] : []),
      ...(status.traffic?.state === 'shifted-back' ? [`traffic shifted back to the original weights: ${status.traffic.reason}`] : []),
    ];
    progress.phase('completed', [`write freeze ${status.freezeWindow.durationMs} ms`, ...notes].join('; '));
    progress.outcome('completed');
    return ended(run.result('completed', notes.length ? notes.join('; ') : undefined));
  } catch (err) {
    const message = failureMessage(err);
    if (!isCancellation(err)) return ended(await run.fail(message));
    await run.compensate();
    if (run.goLiveAttempted && patched('cancel-after-go-live')) {
      // Past the point of no return nothing is undone: the application stays live on the target, and
      // only the rollback path (reverse replication) is dropped so it does not hold WAL forever.
      if (input.hold?.reverseReplication) await CancellationScope.nonCancellable(() => dropRollbackPath(run, 'completed'));
      const note = 'cancelled after go-live: the application stays live on the target';
      progress.phase('completed', note);
      progress.outcome('completed', note);
      throw err;
    }
    progress.phase('rolled-back', 'cancelled');
    progress.outcome('rolled-back', 'cancelled');
    throw err;
  } finally {
    // Whatever the end, after the compensation ran: the databases are free for the next migration.
    await leases.release();
  }
}
