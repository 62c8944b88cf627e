/**
 * Several workers on several hosts: two worker processes (the real entry point, workers/main.ts) poll
 * the test's queue, each with a scratch directory and a worker id of its own, so each also polls
 * `<queue>@<id>`. The dump-restore copy runs on one of them (its dump is in that worker's scratch
 * directory); that worker's process group (the worker and its pg_dump / pg_restore) is SIGKILLed during
 * the copy, as a host dying would. The copy's next attempt is not picked up on the dead worker's queue
 * within its scheduleToStartTimeout; the workflow resets the target and redoes the copy on the other
 * worker, and the migration completes there with every row and every acknowledged write on the target.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveUpdate, statusQuery, type MigrationResult, type MigrationStatus } from '../../signals';
import { hostTaskQueue, migrationStartOptions } from '../../signals/task-queue';
import { AppWriter, type WriterStats } from '../../stack/app-writer';
import { workflowBundlePath } from '../global-setup';
import { expectEveryAckedWriteOnce, openSandbox, query, recordHistory, type Sandbox } from '../helpers/harness';

/** Demo data scale: big enough that the copy lasts a second or two here, so it is surely killed during it. */
const SCALE = Number(process.env.HOSTS_TEST_SCALE ?? 4);

interface WorkerProcess {
  id: string;
  scratch: string;
  child: ChildProcess;
}

describe('two worker hosts, one lost during a dump-restore copy', () => {
  let sandbox: Sandbox;
  const root = mkdtempSync(path.join(os.tmpdir(), 'pgmig-hosts-'));
  const workers: WorkerProcess[] = [];
  let queue: string;

  const startWorker = (name: string): WorkerProcess => {
    const id = `${name}-${sandbox.id}`;
    const scratch = path.join(root, name);
    const repo = path.resolve(__dirname, '../..');
    const log = openSync(path.join(root, `${name}.log`), 'a');
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(repo, 'workers/main.ts')], {
      cwd: repo,
      env: {
        ...process.env,
        TEMPORAL_TASK_QUEUE: queue,
        WORKER_ID: id,
        WORKER_SCRATCH_DIR: scratch,
        WORKFLOW_BUNDLE_PATH: workflowBundlePath(),
      },
      // Its own process group: killing the group kills the worker with its pg_dump and pg_restore, as a host's death would.
      detached: true,
      stdio: ['ignore', log, log],
    });
    const worker = { id, scratch, child };
    workers.push(worker);
    return worker;
  };

  /** Until `queue` has `n` activity pollers (a worker polls only once it is up). */
  const untilPolled = async (name: string, n: number) => {
    for (let i = 0; i < 600; i++) {
      const res = await sandbox.client.workflowService.describeTaskQueue({
        namespace: sandbox.env.TEMPORAL_NAMESPACE || 'default',
        taskQueue: { name },
        taskQueueType: 2, // TASK_QUEUE_TYPE_ACTIVITY
      });
      if ((res.pollers?.length ?? 0) >= n) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${name}: fewer than ${n} pollers after 60 s`);
  };

  const killHost = (w: WorkerProcess) => {
    try {
      process.kill(-w.child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  };

  let result: MigrationResult;
  let status: MigrationStatus;
  let writes: WriterStats;
  let killed: WorkerProcess;
  let survivor: WorkerProcess;
  let migrationId: string;

  beforeAll(async () => {
    sandbox = await openSandbox('hosts', { scale: SCALE });
    queue = `${sandbox.taskQueue}-hosts`;
    const [a, b] = [startWorker('a'), startWorker('b')];
    await Promise.all([untilPolled(queue, 2), untilPolled(hostTaskQueue(queue, a.id), 1), untilPolled(hostTaskQueue(queue, b.id), 1)]);

    migrationId = `${sandbox.input().migrationId}-hosts`;
    // Inserts only: after go-live the target's tables differ from the frozen source by those writes alone.
    const app = new AppWriter(() => sandbox.configuredUrl(), 10);
    app.start();
    await new Promise((r) => setTimeout(r, 300));
    const handle = await sandbox.client.workflow.start('migrateDatabase', {
      ...migrationStartOptions(queue),
      workflowId: `${sandbox.id}-hosts`,
      args: [sandbox.input({ migrationId, copy: { engine: 'pg-dump' } })],
    });
    await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });

    // The copy's dump appears in the scratch directory of the worker running it: that host dies.
    let copying: WorkerProcess | undefined;
    for (let i = 0; i < 12_000 && !copying; i++) {
      copying = workers.find((w) => existsSync(path.join(w.scratch, migrationId, 'dump')));
      if (!copying) await new Promise((r) => setTimeout(r, 10));
    }
    expect(copying, 'no worker started the copy').toBeDefined();
    killed = copying!;
    survivor = workers.find((w) => w !== killed)!;
    killHost(killed);

    const killedAt = Date.now();
    result = (await handle.result()) as MigrationResult;
    status = await handle.query(statusQuery);
    await recordHistory(handle, 'dump-restore-copy-restarted-on-another-worker');
    const copy = status.steps.find((s) => s.name === 'copy');
    console.log(
      `[worker-hosts] ${killed.id} killed ${killedAt - Date.parse(copy?.startedAt ?? '')} ms into the copy step; ` +
        `the step took ${copy?.durationMs} ms in all, the write-freeze window ${result.freezeWindow.durationMs} ms`,
    );
    await new Promise((r) => setTimeout(r, 500));
    writes = await app.stop();
  }, 240_000);

  afterAll(async () => {
    for (const w of workers) killHost(w);
    await sandbox?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('completes on the other worker, which redid the copy', () => {
    expect(result.outcome).toBe('completed');
    expect(result.verification).toBe('passed');
    const copy = status.steps.find((s) => s.name === 'copy');
    expect(copy?.state).toBe('completed');
    expect(copy?.detail).toBe(`on worker ${survivor.id} (started over after worker ${killed.id} was lost)`);
  });

  it('loses nothing: every row of every table, every acknowledged write', async () => {
    const tables = await query<{ t: string }>(
      sandbox.sourceAdminUrl,
      `SELECT format('%I.%I', schemaname, relname) AS t FROM pg_stat_user_tables WHERE schemaname NOT LIKE '\\_pgmig%' ORDER BY 1`,
    );
    expect(tables.length).toBeGreaterThan(3);
    // The source is frozen since the copy; the application's writes (counted below) went on on the target.
    const count = async (url: string, t: string) =>
      (await query<{ n: string }>(url, `SELECT count(*) AS n FROM ${t}${t === 'public.audit_log' ? ` WHERE event <> 'app-write'` : ''}`))[0]
        .n;
    for (const { t } of tables) expect(await count(sandbox.targetAdminUrl, t), t).toBe(await count(sandbox.sourceAdminUrl, t));
    await expectEveryAckedWriteOnce(sandbox.targetUrl, writes);
  });

  it("keeps files only in the scratch directory of the worker that wrote them: the survivor's dump is gone", () => {
    // The survivor removes its dump once restored (customer data); the dead host's stays with that host.
    expect(existsSync(path.join(survivor.scratch, migrationId, 'dump'))).toBe(false);
    expect(existsSync(path.join(killed.scratch, migrationId))).toBe(true);
    expect(readdirSync(root).sort()).toEqual(['a', 'a.log', 'b', 'b.log']);
  });
});
