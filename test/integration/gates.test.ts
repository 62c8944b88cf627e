/**
 * The go-live gate: no-go and timeout roll back; the Update validator refuses unknown gates,
 * unauthorized approvers and duplicate or late decisions; refused signals are recorded.
 */
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveSignal, approveUpdate, rejectUpdate, statusQuery } from '../../signals';
import {
  SHAPES_ONLY,
  openSandbox,
  readOnlySettings,
  recordHistory,
  sourceWritable,
  targetTableCount,
  type Sandbox,
  untilStatus,
} from '../helpers/harness';
import { migrationResult } from '../../signals/outcome';

let sandbox: Sandbox;
let before: { config: string; sourceSettings: string[] };

beforeAll(async () => {
  sandbox = await openSandbox('gates', { scale: SHAPES_ONLY });
  before = { config: sandbox.configText(), sourceSettings: await readOnlySettings(sandbox.sourceAdminUrl) };
});

afterAll(async () => {
  await sandbox?.close();
});

async function refusal(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
  return (err as WorkflowUpdateFailedError).cause?.message ?? '';
}

async function expectRolledBack(): Promise<void> {
  expect(sandbox.configText()).toBe(before.config);
  expect(await sourceWritable(sandbox)).toBe(true);
  expect(await readOnlySettings(sandbox.sourceAdminUrl)).toEqual(before.sourceSettings);
  expect(await targetTableCount(sandbox)).toBe(0);
}

describe('go-live gate', () => {
  it('validates decisions, and a no-go rolls everything back', async () => {
    const handle = await sandbox.start(sandbox.input({ gates: { 'go-live': { timeout: '5m', approvers: ['alice', 'bob'] } } }));
    const status = await untilStatus(handle, (s) => !!s.pendingGate, 'a gate open');
    expect(status.pendingGate).toMatchObject({ gate: 'go-live', approvers: ['alice', 'bob'] });
    expect(status.phase).toBe('awaiting-go-live');
    // While the gate is open the config already points at the target and writes are frozen on both sides.
    expect(sandbox.configuredUrl()).toBe(sandbox.targetUrl);
    expect(await sourceWritable(sandbox)).toBe(false);

    const listed = [];
    for await (const wf of sandbox.client.workflow.list({
      query: `WorkflowId = '${handle.workflowId}' AND AwaitingApproval = true AND AwaitingGate = 'go-live'`,
    }))
      listed.push(wf.workflowId);
    expect(listed).toEqual([handle.workflowId]);

    expect(await refusal(handle.executeUpdate(approveUpdate, { args: [{ approver: 'mallory' }] }))).toMatch(
      /approver "mallory" is not allowed at gate go-live/,
    );
    expect(await refusal(handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'launch' }] }))).toMatch(
      /unknown gate "launch"/,
    );
    expect(await refusal(handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'cutover' }] }))).toMatch(
      /unknown gate "cutover"/,
    );
    expect(await refusal(handle.executeUpdate(approveUpdate, { args: [{ approver: '' }] }))).toMatch(/^approver: is required/);
    await handle.signal(approveSignal, { approver: 'mallory', gate: 'go-live' });

    const decision = await handle.executeUpdate(rejectUpdate, { args: [{ approver: 'bob', reason: 'smoke numbers look off' }] });
    expect(decision).toMatchObject({ gate: 'go-live', approved: false, approver: 'bob', via: 'update' });
    const result = await migrationResult(handle);
    expect(result.outcome).toBe('rolled-back');
    expect(result.reason).toBe('go-live rejected by bob: smoke numbers look off');
    expect(result.compensations.map((c) => `${c.step}:${c.state}`)).toEqual([
      'restore-config:completed',
      'unfreeze-source:completed',
      'unfreeze-target:completed',
      'undo-roles:completed',
      'reset-target:completed',
    ]);
    expect(result.freezeWindow.durationMs).toBeGreaterThan(0);

    const after = await handle.query(statusQuery);
    expect(after.refusedDecisions).toEqual([expect.objectContaining({ reason: expect.stringMatching(/mallory/) })]);
    // A late decision, once the migration has closed, is refused by the server.
    await expect(handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] })).rejects.toThrow(
      /already completed/,
    );
    await recordHistory(handle, 'dump-restore-no-go-closes-failed');
    const described = await handle.describe();
    expect(described.memo?.decisions).toEqual([expect.objectContaining({ approver: 'bob', approved: false })]);
    await expectRolledBack();
  });

  it('decides no-go when nobody answers before the timeout', async () => {
    const handle = await sandbox.start(sandbox.input({ gates: { 'go-live': { timeout: '2s' } } }));
    const result = await migrationResult(handle);
    expect(result.outcome).toBe('rolled-back');
    expect(result.decisions).toEqual([expect.objectContaining({ approved: false, via: 'timeout', approver: 'timeout' })]);
    expect(result.reason).toMatch(/go-live timed out/);
    await expectRolledBack();
  });

  it('refuses a second decision for a gate already decided ahead of time', async () => {
    const handle = await sandbox.start(sandbox.input({ gates: { 'go-live': { timeout: '2m' } } }));
    await handle.executeUpdate(rejectUpdate, { args: [{ approver: 'alice', gate: 'go-live', reason: 'not tonight' }] });
    expect(await refusal(handle.executeUpdate(approveUpdate, { args: [{ approver: 'bob', gate: 'go-live' }] }))).toMatch(
      /already rejected by alice/,
    );
    const result = await migrationResult(handle);
    expect(result.outcome).toBe('rolled-back');
    await expectRolledBack();
  });
});
