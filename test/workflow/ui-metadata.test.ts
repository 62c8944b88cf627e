/**
 * What the Temporal UI shows of a migration, read the way the UI reads it: the start summary, the
 * current details (the `__temporal_workflow_metadata` query), the search attributes of the list, and
 * the summaries of the timeline's activities and timers. A migration at the go-live gate with writes
 * frozen says so, names who may decide and the exact command; a rolled-back one closes as Failed.
 */
import { defaultPayloadConverter, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { rejectUpdate } from '../../signals';
import { AwaitingGateKey, GateApproversKey, MigrationOutcomeKey, WritesFrozenKey } from '../../signals/search-attributes';
import { migrationInput, settle, waitForPhase, withWorker, useTestServer } from './harness';

const server = useTestServer();

async function currentDetails(handle: WorkflowHandle): Promise<string> {
  const metadata = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  return metadata.currentDetails ?? '';
}

describe('the Temporal UI metadata of a migration', () => {
  it('at the go-live gate: WRITES FROZEN, who may decide and the command; rolled back: Failed, told apart in the list', async () => {
    await withWorker(server(), {}, async ({ start }) => {
      const input = migrationInput({ downtimeBudget: '30s', gates: { 'go-live': { timeout: '10m', approvers: ['alice'] } } });
      const handle = await start(input);
      await waitForPhase(handle, 'awaiting-go-live');

      const description = await handle.describe();
      expect(await description.staticSummary()).toBe(
        `${input.migrationId}: env:FAKE_SOURCE_URL -> env:FAKE_TARGET_URL (dump-restore, downtime budget 30s)`,
      );
      const details = await currentDetails(handle);
      expect(details).toMatch(/^## WRITES FROZEN since \d\d:\d\d:\d\d UTC/);
      expect(details).toMatch(/Budget 30\.0 s: exceeded at \d\d:\d\d:\d\d UTC\./);
      expect(details).toContain('The application points at the target; source READ-ONLY, target READ-ONLY.');
      expect(details).toContain('### Waiting for the go-live gate');
      expect(details).toContain('May decide: alice.');
      expect(details).toContain(`npm run cli -- approve ${handle.workflowId} --gate go-live --approver alice`);
      expect(details).toContain(`npm run cli -- reject ${handle.workflowId} --gate go-live --approver alice --reason "<why>"`);
      expect(details).toContain('env:FAKE_SOURCE_URL → env:FAKE_TARGET_URL');
      expect(description.typedSearchAttributes.get(WritesFrozenKey)).toBe(true);
      expect(description.typedSearchAttributes.get(GateApproversKey)).toEqual(['alice']);
      expect(description.typedSearchAttributes.get(AwaitingGateKey)).toBe('go-live');

      await handle.executeUpdate(rejectUpdate, { args: [{ approver: 'alice', gate: 'go-live', reason: 'not tonight' }] });
      const { result, failure } = await settle(handle);
      expect(result.outcome).toBe('rolled-back');
      expect(failure?.type).toBe('MigrationRolledBack');
      await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);

      const closed = await handle.describe();
      expect(closed.status.name).toBe('FAILED');
      expect(closed.typedSearchAttributes.get(WritesFrozenKey)).toBe(false);
      expect(closed.typedSearchAttributes.get(MigrationOutcomeKey)).toBe('rolled-back');
      expect(closed.typedSearchAttributes.get(GateApproversKey)).toBeUndefined();

      // The timeline: activities and the gate's timer carry summaries a person can read.
      const summaries: string[] = [];
      for (const event of (await handle.fetchHistory()).events ?? []) {
        const payload = event.userMetadata?.summary;
        if (payload) summaries.push(defaultPayloadConverter.fromPayload<string>(payload));
      }
      expect(summaries).toEqual(
        expect.arrayContaining([
          'preflight: inventory of both databases, the plan and its blockers',
          expect.stringMatching(/^copy and verify \(.+\), writes frozen$/),
          expect.stringMatching(/^go-live gate: no decision by \d\d:\d\d:\d\d UTC means no-go$/),
          'undo: point the application back at the source (config sink)',
        ]),
      );
    });
  });

  it('a migration that went live: Completed, writes not frozen, the report command in its details', async () => {
    await withWorker(server(), {}, async ({ start }) => {
      const handle = await start(migrationInput({ gates: { 'go-live': { timeout: '1m' } } }));
      await waitForPhase(handle, 'awaiting-go-live');
      expect(await currentDetails(handle)).toContain('May decide: anyone.');
      await handle.signal('approve', { approver: 'bob', gate: 'go-live' });
      const { result } = await settle(handle);
      expect(result.outcome).toBe('completed');
      const closed = await handle.describe();
      expect(closed.status.name).toBe('COMPLETED');
      expect(closed.typedSearchAttributes.get(WritesFrozenKey)).toBe(false);
      const details = await currentDetails(handle).catch(() => '');
      // A closed workflow still answers queries from its history when a worker is there.
      expect(details).toContain('## WENT LIVE; write freeze');
      expect(details).toContain(`npm run cli -- report ${handle.workflowId}`);
    });
  });
});
