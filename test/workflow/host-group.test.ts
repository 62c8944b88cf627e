/**
 * The copy as a group pinned to one worker (workflows/host-group.ts), on fake activities: `claimHost`
 * names a worker queue nobody polls (a host that died after answering), the copy is not started there
 * within its scheduleToStartTimeout, the target is reset and the copy runs on the next worker's queue.
 * After MAX_HOSTS_PER_GROUP lost workers the copy's failure is the migration's, undone as any other.
 */
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { hostTaskQueue } from '../../signals/task-queue';
import { MAX_HOSTS_PER_GROUP } from '../../workflows/host-group';
import { approveUpdate } from '../../signals';
import type { Call } from './fakes';
import { migrationInput, settle, useTestServer, withWorker } from './harness';

const server = useTestServer();

/** Hands out the workers in order: a claim on the shared queue answers with the next one. */
function hosts(ids: string[]) {
  const state = { queue: '', next: 0 };
  return {
    state,
    claimHost: async () => {
      const workerId = ids[Math.min(state.next++, ids.length - 1)];
      return { workerId, taskQueue: hostTaskQueue(state.queue, workerId) };
    },
  };
}

const callsOf = (calls: Call[], name: string) => calls.filter((c) => c.name === name).length;

describe.concurrent('a group of steps on one worker', () => {
  it('the copy starts over on another worker when its worker is gone, after a target reset', async () => {
    const h = hosts(['dead', 'alive']);
    await withWorker(server(), { overrides: { claimHost: h.claimHost } }, async ({ fakes, taskQueue, start }) => {
      h.state.queue = taskQueue;
      // Only the second worker polls its own queue; the first one's is never polled.
      const alive = await Worker.create({
        connection: server().nativeConnection,
        namespace: server().namespace,
        taskQueue: hostTaskQueue(taskQueue, 'alive'),
        activities: fakes.activities,
        debugMode: true,
        shutdownGraceTime: '1s',
      });
      await alive.runUntil(async () => {
        const handle = await start(migrationInput());
        await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });
        const { result, failure } = await settle(handle);
        expect(failure).toBeUndefined();
        expect(result.outcome).toBe('completed');
        expect(result.verification).toBe('passed');
        const names = fakes.names();
        expect(names.slice(names.indexOf('freezeSource') + 1, names.indexOf('copyAndVerify') + 1)).toEqual([
          'claimHost',
          'resetTarget', // what the partial copy left on the target, before it starts over
          'claimHost',
          'copyAndVerify',
        ]);
        expect(callsOf(fakes.calls, 'copyAndVerify')).toBe(1);
        expect(result.steps.find((s) => s.name === 'copy')).toMatchObject({
          state: 'completed',
          detail: 'on worker alive (started over after worker dead was lost)',
        });
      });
    });
  }, 60_000);

  it(`after ${MAX_HOSTS_PER_GROUP} lost workers the copy fails the migration, which is undone`, async () => {
    const h = hosts(['gone-1', 'gone-2', 'gone-3', 'never-asked']);
    await withWorker(server(), { overrides: { claimHost: h.claimHost } }, async ({ fakes, taskQueue, start }) => {
      h.state.queue = taskQueue;
      const handle = await start(migrationInput());
      const { result, failure } = await settle(handle);
      expect(failure?.type).toBe('MigrationFailed');
      expect(result.outcome).toBe('failed');
      expect(callsOf(fakes.calls, 'claimHost')).toBe(MAX_HOSTS_PER_GROUP);
      expect(callsOf(fakes.calls, 'copyAndVerify')).toBe(0);
      expect(result.compensations.map((c) => [c.step, c.state])).toEqual([
        ['unfreeze-source', 'completed'],
        ['reset-target', 'completed'],
      ]);
      expect(result.steps.find((s) => s.name === 'copy')).toMatchObject({ state: 'failed' });
      expect(result.steps.find((s) => s.name === 'copy')?.error).toMatch(/ScheduleToStart/i);
    });
  }, 60_000);
});
