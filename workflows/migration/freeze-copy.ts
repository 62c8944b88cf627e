/**
 * The freeze-copy shape (`dump-restore`): writes are frozen for the whole copy, so the copy, the
 * sequences and the verification all happen inside the window.
 */
import { activities } from '../activity-options';
import { failureMessage } from '../progress';
import type { MigrationRun } from './run';
import { freezeSource, reconcileSequences, registerTargetReset, targetBaseline, windowActivities, type Cutover } from './window';

export async function freezeAndCopy(run: MigrationRun): Promise<Cutover> {
  const { input, migrationId, source, target, progress } = run;
  const frozen = await freezeSource(run, windowActivities(run));
  registerTargetReset(run);
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
        throw err;
      }),
  );
  run.verification = 'passed';
  run.status.verification = {
    state: 'passed',
    detail: `${report.tablesChecked} tables, ${report.rowsChecked} rows: counts and checksums equal`,
  };
  run.rowsCopied = report.rowsChecked;
  const nothing = async () => undefined;
  return { frozen, snapshotReady: nothing, afterGoLive: nothing };
}
