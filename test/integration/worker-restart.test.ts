/**
 * The worker is killed (SIGKILL, no goodbye) in the middle of the copy; a new worker process picks
 * the migration up, the copy starts over there and cleans up after the dead attempt, and the migration
 * completes with a verified target.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveUpdate, statusQuery } from '../../signals';
import { workflowBundlePath } from '../global-setup';
import { openSandbox, query, type Sandbox } from '../helpers/harness';
import { migrationResult } from '../../signals/outcome';

let sandbox: Sandbox;
const children: ChildProcess[] = [];

function startWorkerProcess(taskQueue: string): ChildProcess {
  const root = path.resolve(__dirname, '../..');
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'workers/main.ts')], {
    cwd: root,
    env: { ...process.env, TEMPORAL_TASK_QUEUE: taskQueue, WORKFLOW_BUNDLE_PATH: workflowBundlePath(), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  children.push(child);
  return child;
}

beforeAll(async () => {
  sandbox = await openSandbox('restart', { scale: 4 });
  // This test's migration runs on separate worker processes, not the in-process one.
  await sandbox.useActivities(sandbox.realActivities);
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await sandbox?.close();
});

describe('worker killed during the copy', () => {
  it.each(['pg-dump', 'pgcopydb'] as const)(
    'resumes on a new worker and completes (copy engine %s)',
    async (engine) => {
      if (engine === 'pgcopydb') {
        // The first run left the source read-only (its rollback reference) and the target full.
        await sandbox.resetForNextMigration();
      }
      const queue = `${sandbox.taskQueue}-processes-${engine}`;
      const first = startWorkerProcess(queue);
      const handle = await sandbox.client.workflow.start('migrateDatabase', {
        taskQueue: queue,
        workflowId: `${sandbox.id}-restart-${engine}`,
        args: [sandbox.input({ migrationId: `${sandbox.input().migrationId}-${engine}`, copy: { engine } })],
      });
      // Wait until pg_dump, pg_restore or pgcopydb's COPY of this migration is connected (they carry its application_name).
      let stage: string | undefined;
      const appName = `pgmig-${sandbox.input().migrationId}-${engine}`;
      for (let i = 0; i < 1200 && !stage; i++) {
        const [dump] = await query<{ n: number }>(
          sandbox.sourceAdminUrl,
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1`,
          [`${appName}-dump`],
        );
        const [restore] = await query<{ n: number }>(
          sandbox.targetAdminUrl,
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1`,
          [`${appName}-restore`],
        );
        const [clone] = await query<{ n: number }>(
          sandbox.targetAdminUrl,
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'copy %'`,
          [`${appName}-copy`],
        );
        if (dump.n > 0) stage = 'dump';
        else if (restore.n > 0) stage = 'restore';
        else if (clone.n > 0) stage = 'pgcopydb copy';
        else await new Promise((r) => setTimeout(r, 20));
      }
      expect(stage).toBeDefined();
      first.kill('SIGKILL');
      startWorkerProcess(queue);

      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });

      const result = await migrationResult(handle);
      expect(result.outcome).toBe('completed');
      expect(result.verification).toBe('passed');
      expect(result.rowsCopied).toBeGreaterThan(400_000);
      // The copy really ran twice: the dead worker's attempt, then the new one's. The copy is pinned to the worker
      // that began it (its queue <queue>@<worker id>): the retry there is never picked up, so the copy starts
      // over on the new worker's queue (workflows/host-group.ts).
      const history = await handle.fetchHistory();
      const copies = history.events!.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'copyAndVerify');
      expect(copies.map((e) => e.activityTaskScheduledEventAttributes!.taskQueue!.name)).toEqual([
        expect.stringMatching(new RegExp(`^${queue}@`)),
        expect.stringMatching(new RegExp(`^${queue}@`)),
      ]);
      const [lost, redone] = copies.map((e) => e.activityTaskScheduledEventAttributes!.taskQueue!.name);
      expect(redone).not.toBe(lost);
      const timedOut = history.events!.find(
        (e) => String(e.activityTaskTimedOutEventAttributes?.scheduledEventId) === String(copies[0].eventId),
      );
      expect(timedOut?.activityTaskTimedOutEventAttributes?.failure?.message).toMatch(/ScheduleToStart/);
      // The dead worker's pgcopydb (its own process group, not killed with the worker) was stopped by the retry.
      const { execSync } = await import('node:child_process');
      expect(execSync('ps -eo args').toString()).not.toContain(`pgmig/${sandbox.input().migrationId}-${engine}/pgcopydb`);
    },
    180_000,
  );

  it('resumes lag polling (logical method) on a new worker and cuts over', async () => {
    await sandbox.resetTarget();
    // The first migration left the source read-only (its rollback reference): the sandbox starts writable again.
    await query(sandbox.env.SOURCE_ADMIN_URL, 'ALTER DATABASE ' + `"src_${sandbox.id}"` + ' RESET default_transaction_read_only');
    await query(
      sandbox.env.SOURCE_ADMIN_URL,
      'ALTER ROLE app IN DATABASE ' + `"src_${sandbox.id}"` + ' RESET default_transaction_read_only',
    );
    const queue = `${sandbox.taskQueue}-lag`;
    const first = startWorkerProcess(queue);
    const handle = await sandbox.client.workflow.start('migrateDatabase', {
      taskQueue: queue,
      workflowId: `${sandbox.id}-lag`,
      args: [sandbox.logicalInput({ migrationId: `${sandbox.input().migrationId}-lag` })],
    });
    let polling = false;
    for (let i = 0; i < 1200 && !polling; i++) {
      const status = await handle.query(statusQuery).catch(() => undefined);
      polling = !!status?.steps.some((s) => (s.name === 'initial-copy' || s.name === 'catch-up') && s.state === 'running');
      if (!polling) await new Promise((r) => setTimeout(r, 20));
    }
    expect(polling).toBe(true);
    first.kill('SIGKILL');
    startWorkerProcess(queue);
    await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'cutover' }] });
    await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });
    const result = await migrationResult(handle);
    expect(result.outcome).toBe('completed');
    expect(result.verification).toBe('passed');
    const history = await handle.fetchHistory();
    const attempts = history.events!.filter(
      (e) => e.activityTaskStartedEventAttributes && (e.activityTaskStartedEventAttributes.attempt ?? 1) > 1,
    );
    expect(attempts.length).toBeGreaterThan(0);
  }, 180_000);
});
