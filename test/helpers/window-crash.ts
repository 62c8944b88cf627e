/**
 * Worker crashes inside the write-freeze window: for each step, two worker processes poll the
 * migration's queue; the one that runs the step does its work and is SIGKILLed right after (see
 * held-worker.ts); the other finishes the migration. Measured against a run without a crash: the
 * extra write outage the application saw, and how far the reported window is from the application's gap.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MigrationInputDraft } from '../../contract/input';
import type { MigrationResult } from '../../signals';
import { approveUpdate } from '../../signals';
import { migrationStartOptions } from '../../signals/task-queue';
import { AppWriter } from '../../stack/app-writer';
import { workflowBundlePath } from '../global-setup';
import { SHAPES_ONLY, expectEveryAckedWriteOnce, openSandbox, type Sandbox } from './harness';
import { migrationResult } from '../../signals/outcome';

interface Run {
  result: MigrationResult;
  /** The longest time between two writes the application saw acknowledged. */
  gapMs: number;
}

export function windowCrashSuite(method: 'dump-restore' | 'logical', steps: string[]): void {
  let sandbox: Sandbox;
  const children: ChildProcess[] = [];
  const scratch = mkdtempSync(path.join(os.tmpdir(), `pgmig-crash-${method}-`));
  let baseline: Run;
  let runs = 0;

  const startWorker = (queue: string, holdAfter?: string, holdFile?: string): ChildProcess => {
    const root = path.resolve(__dirname, '../..');
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'test/helpers/held-worker.ts')], {
      cwd: root,
      env: {
        ...process.env,
        TEMPORAL_TASK_QUEUE: queue,
        WORKFLOW_BUNDLE_PATH: workflowBundlePath(),
        ...(holdAfter && holdFile ? { PGMIG_HOLD_AFTER: holdAfter, PGMIG_HOLD_FILE: holdFile } : {}),
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    children.push(child);
    return child;
  };

  const migrate = async (holdAfter?: string): Promise<Run> => {
    await sandbox.resetForNextMigration();
    runs += 1;
    const queue = `${sandbox.taskQueue}-crash-${runs}`;
    const holdFile = path.join(scratch, `hold-${runs}`);
    const workers = [startWorker(queue, holdAfter, holdFile), startWorker(queue, holdAfter, holdFile)];
    const base = method === 'logical' ? sandbox.logicalInput() : sandbox.input();
    const input: MigrationInputDraft = { ...base, migrationId: `${sandbox.input().migrationId}-${runs}` };
    const app = new AppWriter(() => sandbox.configuredUrl(), 10, true);
    app.start();
    await new Promise((r) => setTimeout(r, 300));
    const handle = await sandbox.client.workflow.start('migrateDatabase', {
      ...migrationStartOptions(queue),
      workflowId: `${sandbox.id}-crash-${runs}`,
      args: [input],
    });
    for (const gate of method === 'logical' ? ['cutover', 'go-live'] : ['go-live']) {
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate }] });
    }
    if (holdAfter) {
      // The step ran on one of the two workers, which now holds: it dies as a host would.
      for (let i = 0; i < 6000 && !existsSync(holdFile); i++) await new Promise((r) => setTimeout(r, 10));
      expect(existsSync(holdFile), `${holdAfter} never ran`).toBe(true);
      const pid = Number(readFileSync(holdFile, 'utf8'));
      workers.find((w) => w.pid === pid)?.kill('SIGKILL');
    }
    const result = await migrationResult(handle);
    await new Promise((r) => setTimeout(r, 500));
    const writes = await app.stop();
    for (const w of workers) w.kill('SIGKILL');
    expect(result.outcome).toBe('completed');
    // A verification that lost its worker is retried or reported as not run: never a false failure.
    expect(result.verification).not.toBe('failed');
    await expectEveryAckedWriteOnce(sandbox.targetUrl, writes);
    return { result, gapMs: writes.longestGapMs };
  };

  describe(`${method}: a worker killed inside the write-freeze window`, () => {
    beforeAll(async () => {
      sandbox = await openSandbox(`crash_${method.replace('-', '_')}`, { scale: SHAPES_ONLY });
      baseline = await migrate();
    }, 120_000);

    afterAll(async () => {
      for (const child of children) child.kill('SIGKILL');
      await sandbox?.close();
    });

    it('without a crash, the reported window is the gap the application saw', () => {
      expect(Math.abs(baseline.gapMs - baseline.result.freezeWindow.durationMs!)).toBeLessThan(500);
    });

    it.each(steps)(
      'killed right after %s: seconds more outage, not tens; the window reported within 0.5 s of the gap',
      async (step) => {
        const run = await migrate(step);
        const reported = run.result.freezeWindow.durationMs!;
        // Killed after its snapshots (the window went on meanwhile): truthfully not run.
        if (step === 'verifyAtFreezePoint') expect(run.result.verification).toBe('not-run');
        console.log(
          `[window-crash] ${method} ${step}: gap ${run.gapMs} ms (${baseline.gapMs} ms without a crash), reported ${reported} ms`,
        );
        // The goal is under 5 s (measured and printed above; met for these steps on an idle 2-core machine). The
        // assertion keeps a margin for a loaded CI machine while still catching the old 10-30 s timeouts.
        expect(run.gapMs - baseline.gapMs, `gap ${run.gapMs} ms vs ${baseline.gapMs} ms without a crash`).toBeLessThan(10_000);
        expect(Math.abs(run.gapMs - reported), `gap ${run.gapMs} ms, reported ${reported} ms`).toBeLessThan(500);
      },
      120_000,
    );
  });
}
