/**
 * The freeze-copy shape (`dump-restore`): writes are frozen for the whole copy, so the copy, the
 * sequences and the verification all happen inside the window. The verification runs inside the
 * copy (each table checked as soon as its data is in), so the window is the copy's time plus the
 * last tables' checks, not a second full pass.
 *
 * The copy runs on one worker (its dump directory or pgcopydb work directory is on that host): when that
 * worker is lost, the copy starts over on another from a reset target (workflows/host-group.ts).
 */
import { ActivityFailure, ApplicationFailure, patched } from '@temporalio/workflow';
import type { VerificationReport } from '../../activities/database/verify';
import { activities, onHost } from '../activity-options';
import { describeHosts, onOneHost } from '../host-group';
import { failureMessage } from '../progress';
import type { MigrationRun } from './run';
import {
  freezeSource,
  reconcileSequences,
  registerTargetReset,
  replayRoles,
  targetBaseline,
  windowActivities,
  type Cutover,
} from './window';

export async function freezeAndCopy(run: MigrationRun): Promise<Cutover> {
  // Asked before the window's first step (the convention for patches inside the window).
  const onOneWorker = patched('copy-on-one-host');
  const frozen = await freezeSource(run, windowActivities(run));
  registerTargetReset(run);
  if (patched('copy-with-verification-inside')) await copyVerifying(run, onOneWorker);
  else await copyThenVerify(run);
  await replayRoles(run, activities.freezeCopyWindow);
  const nothing = async () => undefined;
  return { frozen, snapshotReady: nothing, afterGoLive: nothing };
}

/**
 * The copy on one worker, started over on another when that one is lost: the target reset first (the
 * copy's own undo; the copy resets it again at its start, and ends a dead worker's sessions). Migrations
 * started before (`onOneWorker` false) schedule the copy on the shared queue.
 */
async function copyOnOneWorker(run: MigrationRun, onOneWorker: boolean) {
  const { input, migrationId, source, target } = run;
  const args = {
    migrationId,
    source,
    target,
    jobs: input.parallelJobs,
    engine: input.copy.engine,
    splitTablesLargerThan: input.copy.splitTablesLargerThan,
    tables: run.plan.source.tables,
    baseline: targetBaseline(run),
  };
  if (!onOneWorker) return { value: await activities.copy.copyAndVerify(args), workers: [] };
  return onOneHost(
    { name: 'copy', restart: async () => void (await activities.undo.resetTarget({ migrationId, target, baseline: args.baseline })) },
    (host) => onHost('copy', host.taskQueue).copyAndVerify(args),
  );
}

async function copyVerifying(run: MigrationRun, onOneWorker: boolean): Promise<void> {
  const { progress, status } = run;
  status.verification = { state: 'running' };
  const copied = await progress
    .step('copy', 'copying', () => copyOnOneWorker(run, onOneWorker), onOneWorker ? (c) => describeHosts(c.workers) : undefined)
    .then((c) => c.value)
    .catch((err: unknown) => {
      const verdict = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === 'VerificationFailed';
      run.verification = verdict ? 'failed' : 'not-run';
      status.verification = { state: run.verification, detail: failureMessage(err) };
      if (verdict) run.reportCatalog(err.cause.details?.[0] as VerificationReport | undefined);
      throw err;
    });
  const { report } = copied;
  run.reportCatalog(report);
  run.verification = 'passed';
  run.rowsCopied = report.rowsChecked;
  status.verification = {
    state: 'passed',
    detail:
      `${report.tablesChecked} tables, ${report.rowsChecked} rows: counts and checksums equal ` +
      `(checked during the ${copied.engine} copy; ${copied.verifyAfterCopyMs} ms after its end)`,
  };
  await reconcileSequences(run, windowActivities(run));
}

/** Migrations started before the verification moved inside the copy (their histories replay this). */
async function copyThenVerify(run: MigrationRun): Promise<void> {
  const { input, migrationId, source, target, progress } = run;
  await progress.step('copy', 'copying', () =>
    activities.copy.copyDumpRestore({
      migrationId,
      source,
      target,
      jobs: input.parallelJobs,
      tablesTotal: run.dataTables.length,
      baseline: targetBaseline(run),
    }),
  );
  await reconcileSequences(run, windowActivities(run));
  run.status.verification = { state: 'running' };
  const report = await progress.step('verify', 'verifying', () =>
    activities.verification
      .verifyCopy({ migrationId, source, target, tables: run.plan.source.tables, jobs: input.parallelJobs })
      .catch((err: unknown) => {
        run.verification = 'failed';
        run.status.verification = { state: 'failed', detail: failureMessage(err) };
        if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) {
          run.reportCatalog(err.cause.details?.[0] as VerificationReport | undefined);
        }
        throw err;
      }),
  );
  run.reportCatalog(report);
  run.verification = 'passed';
  run.status.verification = {
    state: 'passed',
    detail: `${report.tablesChecked} tables, ${report.rowsChecked} rows: counts and checksums equal`,
  };
  run.rowsCopied = report.rowsChecked;
}
