/**
 * rehearseMigration on fake activities: snapshot, the migration as a child (approved automatically),
 * teardown in reverse order of registration whatever happened, then the report.
 */
import { WorkflowFailedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import type { RehearsalInputDraft } from '../../contract/rehearsal';
import { AUTOMATIC_APPROVER } from '../../contract/rehearsal';
import { rehearsalStatusQuery, type RehearsalSummary } from '../../signals/rehearsal';
import type { ActivityName } from './fakes';
import { migrationInput, withWorker, useTestServer } from './harness';

const server = useTestServer();

const rehearsalInput = (): RehearsalInputDraft => ({
  migration: migrationInput({ method: 'auto', downtimeBudget: '30s', gates: { 'go-live': { timeout: '1m', approvers: ['alice'] } } }),
  snapshot: { type: 'logical', scratch: { env: 'FAKE_SCRATCH_URL' } },
  marginPercent: 50,
  minMarginMs: 1000,
});

const CHILD: ActivityName[] = [
  'preflight',
  'acquireLease',
  'freezeSource',
  'claimHost',
  'copyAndVerify',
  'reconcileSequences',
  'freezeTarget',
  'swapConfig',
  'smokeTest',
  'unfreezeTarget',
];
const TEARDOWN: ActivityName[] = ['dropScratchDatabase', 'dropScratchDatabase', 'removeStagingFiles'];

describe.concurrent('rehearseMigration on fake activities', () => {
  it('passes: snapshot, the child migration approved automatically, teardown in reverse, report', async () => {
    await withWorker(server(), {}, async ({ fakes, startRehearsal }) => {
      const input = rehearsalInput();
      const handle = await startRehearsal(input);
      const workflowId = handle.workflowId;
      const summary: RehearsalSummary = await handle.result();
      expect(summary).toMatchObject({ outcome: 'passed', verdict: 'pass', migrationId: input.migration.migrationId, withinBudget: true });
      expect(summary.rehearsedWindowMs).toBeGreaterThanOrEqual(0);
      expect(summary.publishableDowntimeMs).toBeGreaterThanOrEqual(summary.rehearsedWindowMs! + 1000); // minMarginMs
      expect(fakes.names()).toEqual([
        'prepareLogicalSnapshot',
        ...CHILD,
        'releaseConfig',
        'releaseLease',
        'rehearsalChildStatus',
        ...TEARDOWN,
        'writeRehearsalReport',
      ]);
      // Target side first (its subscriptions hold the source's slots), then the source, then the files.
      const dropped = fakes.calls.filter((c) => c.name === 'dropScratchDatabase').map((c) => (c.args as { database: string }).database);
      expect(dropped[0]).toMatch(/_tgt$/);
      expect(dropped[1]).toMatch(/_src$/);
      // The child runs against the scratch copies and a staging sink, never the real ones.
      const preflight = fakes.calls.find((c) => c.name === 'preflight')!.args as {
        input: { source: unknown; configSink: { path: string } };
      };
      expect(preflight.input.source).toEqual({ url: { env: 'FAKE_SCRATCH_URL', database: dropped[1] } });
      expect(preflight.input.configSink.path).toMatch(/staging\.env$/);

      const child = await server().client.workflow.getHandle(`${workflowId}-migration`).result();
      expect(child.outcome).toBe('completed');
      expect(child.decisions).toEqual([expect.objectContaining({ gate: 'go-live', approver: AUTOMATIC_APPROVER, via: 'signal' })]);
      const status = await handle.query(rehearsalStatusQuery);
      expect(status.phase).toBe('done');
      expect(status.teardown.map((t) => [t.step, t.state])).toEqual([
        ['drop-scratch-target', 'completed'],
        ['drop-scratch-source', 'completed'],
        ['remove-staging-files', 'completed'],
      ]);
    });
  });

  it('a child migration that fails is undone, the scratch resources torn down all the same, the rehearsal failed', async () => {
    await withWorker(server(), { failAfter: { activity: 'copyAndVerify' } }, async ({ fakes, startRehearsal }) => {
      const handle = await startRehearsal(rehearsalInput());
      const err = await handle.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
      expect(cause.type).toBe('RehearsalFailed');
      expect(cause.message).toContain('injected failure after copyAndVerify');
      expect((cause.details?.[0] as RehearsalSummary).outcome).toBe('failed');
      expect(fakes.names()).toEqual([
        'prepareLogicalSnapshot',
        ...CHILD.slice(0, CHILD.indexOf('copyAndVerify') + 1),
        'unfreezeSource', // the child's own compensation, production first
        'resetTarget',
        'releaseLease',
        'rehearsalChildStatus',
        ...TEARDOWN,
        'writeRehearsalReport',
      ]);
    });
  });
});
