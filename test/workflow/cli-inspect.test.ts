/**
 * `status` and `watch` before they query: a running migration with no worker on its queue is named
 * as such within seconds; a closed one answers from its result and search attributes, worker gone.
 */
import { describe, expect, it } from 'vitest';
import { queryStatus, reachability, searchAttributeText } from '../../cli/inspect';
import { closedResult, printClosed, summaryLines } from '../../cli/summary';
import { rejectUpdate } from '../../signals';
import { migrationInput, uniqueId, useTestServer, waitForPhase, withWorker } from './harness';
import { migrationResult } from '../../signals/outcome';

const server = useTestServer();

describe.concurrent('the CLI without a worker', () => {
  it('a running migration whose queue nobody polls: said so in seconds, no query sent', async () => {
    const { client } = server();
    const taskQueue = uniqueId('nobody-polls');
    const handle = await client.workflow.start('migrateDatabase', { taskQueue, workflowId: uniqueId('orphan'), args: [migrationInput()] });
    try {
      const started = Date.now();
      const reach = await reachability(client, handle);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(reach.state).toBe('no-worker');
      if (reach.state !== 'no-worker') return;
      expect(reach.message).toContain(`no worker polls its task queue "${taskQueue}"`);
      expect(reach.message).toContain('npm run worker');
    } finally {
      await handle.terminate('test ended');
    }
  });

  it('a migration with a worker is queried; once closed, its result and search attributes answer without one', async () => {
    const { client } = server();
    const handle = await withWorker(server(), {}, async ({ start }) => {
      const h = await start(migrationInput({ gates: { 'go-live': { timeout: '1m', approvers: ['alice'] } } }));
      await waitForPhase(h, 'awaiting-go-live');
      expect((await reachability(client, h)).state).toBe('running');
      expect((await queryStatus(h)).pendingGate?.gate).toBe('go-live');
      await h.executeUpdate(rejectUpdate, { args: [{ approver: 'alice', gate: 'go-live', reason: 'not tonight' }] });
      await migrationResult(h);
      return h;
    });
    // The worker has shut down: nothing could answer a query now.
    const reach = await reachability(client, handle);
    expect(reach.state).toBe('closed');
    expect(searchAttributeText(reach.description)).toContain('MigrationOutcome=rolled-back');
    const closed = await closedResult(handle);
    expect(closed.result?.outcome).toBe('rolled-back');
    const lines: string[] = [];
    expect(printClosed(closed, handle.workflowId, (l) => lines.push(l))).toBe(2);
    expect(lines).toEqual([
      '\nmigration was rolled back: go-live rejected by alice: not tonight | the application is on the source; source writable, target writable',
      '',
      ...summaryLines(closed.result!, handle.workflowId),
    ]);
    expect(lines.join('\n')).toMatch(/outcome {14}rolled-back/);
  });
});
