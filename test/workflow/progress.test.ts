/**
 * `status.progress`: what the running step's activity reports through the `progress` signal lands in the
 * status query, checked (a malformed report or one for a step not running is ignored), and is cleared
 * when the step ends.
 */
import { describe, expect, it } from 'vitest';
import type { StepProgress } from '../../contract/progress';
import { approveUpdate, progressSignal, statusQuery } from '../../signals';
import { latch, migrationInput, settle, waitForPhase, waitForStatus, withWorker, useTestServer } from './harness';

const server = useTestServer();

describe('progress in the status query', () => {
  it('a report of the running copy is shown, malformed or foreign ones are not, and it is cleared when the copy ends', async () => {
    const copying = latch();
    await withWorker(server(), { pauses: { copyAndVerify: copying.promise } }, async ({ start }) => {
      const handle = await start(migrationInput({ gates: { 'go-live': { timeout: '1m' } } }));
      await waitForPhase(handle, 'copying');
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });
      const report: StepProgress = {
        step: 'copy',
        percent: 45.2,
        done: 45_200_000,
        total: 100_000_000,
        unit: 'bytes',
        ratePerSecond: 9_000_000,
        etaSeconds: 6,
        detail: 'pgcopydb, 2 jobs: 3/11 tables copied, 2 verified',
        at: new Date().toISOString(),
      };
      // As the activity sends it (activities/progress.ts), and ignored unless checked and for the running step.
      await handle.signal(progressSignal, report);
      await handle.signal(progressSignal, { ...report, percent: 250 });
      await handle.signal(progressSignal, { ...report, step: 'catch-up', percent: 99 });
      const shown = await waitForStatus(handle, (s) => s.progress !== undefined, 'the progress');
      expect(shown.progress).toEqual(report);
      // Later signals are handled in order: the malformed and foreign ones changed nothing.
      await handle.signal(progressSignal, { ...report, done: 50_000_000, percent: 50, extra: 'dropped' } as StepProgress);
      const moved = await waitForStatus(handle, (s) => s.progress?.percent === 50, 'the next progress');
      expect(moved.progress).toEqual({ ...report, done: 50_000_000, percent: 50 });

      copying.release();
      const after = await waitForStatus(handle, (s) => s.steps.some((x) => x.name === 'copy' && x.state === 'completed'), 'the copy ended');
      expect(after.progress).toBeUndefined();
      const { result } = await settle(handle);
      expect(result.outcome).toBe('completed');
      expect((await handle.query(statusQuery)).progress).toBeUndefined();
    });
  });
});
