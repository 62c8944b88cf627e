/**
 * The hold after go-live: reverse replication target -> source, a `rollback` Update that switches the
 * application back without losing a write made on the target, and the decommission gate.
 */
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reverseNames } from '../../activities/methods/logical/reverse';
import type { MigrationInputDraft } from '../../contract/input';
import { approveUpdate, rejectUpdate, rollbackUpdate, statusQuery } from '../../signals';
import { AppWriter } from '../../stack/app-writer';
import {
  SHAPES_ONLY,
  expectEveryAckedWriteOnce,
  openSandbox,
  query,
  recordHistory,
  sourceWritable,
  type Sandbox,
  untilPhase,
  untilStatus,
} from '../helpers/harness';
import { migrationResult } from '../../signals/outcome';

let sandbox: Sandbox;

beforeAll(async () => {
  sandbox = await openSandbox('hold', { scale: SHAPES_ONLY });
});

afterAll(async () => {
  await sandbox?.close();
});

const withHold = (hold: NonNullable<MigrationInputDraft['hold']>, migrationId: string): MigrationInputDraft =>
  sandbox.input({
    migrationId,
    source: { url: { env: sandbox.sourceRef }, replicationUrl: { env: sandbox.sourceReplicationRef } },
    target: { url: { env: sandbox.targetRef }, replicationUrl: { env: sandbox.replicationRef } },
    hold,
    replication: { tablesWithoutPrimaryKey: 'replica-identity-full' },
    gates: { 'go-live': { timeout: '2m', approvers: ['alice'] }, decommission: { timeout: '1m' } },
  });

/** The sandbox again as before a migration: source writable, target empty, config on the source. */
async function resetSandbox(config: string): Promise<void> {
  await query(sandbox.env.SOURCE_ADMIN_URL, `ALTER DATABASE "src_${sandbox.id}" RESET default_transaction_read_only`);
  await query(sandbox.env.SOURCE_ADMIN_URL, `ALTER ROLE app IN DATABASE "src_${sandbox.id}" RESET default_transaction_read_only`);
  await query(sandbox.sourceAdminUrl, `DELETE FROM public.audit_log WHERE event = 'app-write'`);
  await sandbox.resetTarget();
  const { writeFileSync } = await import('node:fs');
  writeFileSync(sandbox.configFile, config);
}

async function expectNoReverseReplication(migrationId: string): Promise<void> {
  const names = reverseNames(migrationId);
  expect(await query(sandbox.sourceAdminUrl, 'SELECT subname FROM pg_subscription WHERE subname = $1', [names.subscription])).toEqual([]);
  expect(await query(sandbox.targetAdminUrl, 'SELECT slot_name FROM pg_replication_slots WHERE slot_name = $1', [names.slot])).toEqual([]);
  expect(await query(sandbox.targetAdminUrl, 'SELECT pubname FROM pg_publication WHERE pubname = $1', [names.publication])).toEqual([]);
  expect(await query(sandbox.sourceAdminUrl, `SELECT 1 FROM pg_namespace WHERE nspname = '_pgmig'`)).toEqual([]);
}

describe('hold, reverse replication and rollback', () => {
  it('rolls back during the hold without losing a write made on the target after go-live', async () => {
    const config = sandbox.configText();
    const migrationId = `${sandbox.input().migrationId}-rb`;
    const app = new AppWriter(() => sandbox.configuredUrl(), 10);
    app.start();
    const handle = await sandbox.start(withHold({ duration: '10m', reverseReplication: true }, migrationId));
    await expect(handle.executeUpdate(rollbackUpdate, { args: [{ approver: 'alice' }] })).rejects.toThrow(WorkflowUpdateFailedError);
    await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });
    await untilPhase(handle, 'holding');
    await new Promise((r) => setTimeout(r, 1000)); // the application writes on the target
    const refused = await handle
      .executeUpdate(rollbackUpdate, { args: [{ approver: 'mallory' }] })
      .catch((e: WorkflowUpdateFailedError) => e.cause?.message);
    expect(refused).toMatch(/approver "mallory" may not roll back/);
    await handle.executeUpdate(rollbackUpdate, { args: [{ approver: 'alice', reason: 'p99 latency doubled' }] });
    const result = await migrationResult(handle);
    await new Promise((r) => setTimeout(r, 700)); // and on the source again
    const writes = await app.stop();

    expect(result.outcome).toBe('rolled-back');
    expect(result.reason).toBe('rolled back during the hold by alice: p99 latency doubled');
    await recordHistory(handle, 'hold-rollback');
    const status = await handle.query(statusQuery);
    expect(status.hold?.rollback?.windowMs).toBeGreaterThan(0);
    console.log(
      `rollback window: ${status.hold?.rollback?.windowMs} ms, longest application write gap over the whole run ${writes.longestGapMs} ms`,
    );

    const onTarget = writes.acked.filter((w) => w.database.endsWith(`/tgt_${sandbox.id}`));
    const onSourceAfter = writes.acked.filter(
      (w) => w.database.endsWith(`/src_${sandbox.id}`) && w.sentAt > (result.freezeWindow.unfrozenAt ?? 0),
    );
    expect(onTarget.length).toBeGreaterThan(20);
    expect(onSourceAfter.length).toBeGreaterThan(5);
    await expectEveryAckedWriteOnce(sandbox.sourceUrl, writes);
    expect(sandbox.configText()).toBe(config);
    expect(await sourceWritable(sandbox)).toBe(true);
    await expectNoReverseReplication(migrationId);
    await resetSandbox(config);
  });

  it('with go-live decided after writes resume, a no-go is a lossless rollback', async () => {
    const config = sandbox.configText();
    const migrationId = `${sandbox.input().migrationId}-late`;
    const app = new AppWriter(() => sandbox.configuredUrl(), 10);
    app.start();
    const handle = await sandbox.start(withHold({ duration: '10m', reverseReplication: true, goLiveAfterWritesResume: true }, migrationId));
    await untilPhase(handle, 'awaiting-go-live');
    const status = await handle.query(statusQuery);
    expect(status.freezeWindow.unfrozenAt).toBeDefined(); // writes already resumed on the target
    await new Promise((r) => setTimeout(r, 500));
    await handle.executeUpdate(rejectUpdate, { args: [{ approver: 'alice', gate: 'go-live', reason: 'error rate up' }] });
    const result = await migrationResult(handle);
    await new Promise((r) => setTimeout(r, 300));
    const writes = await app.stop();
    expect(result.outcome).toBe('rolled-back');
    const [{ n }] = await query<{ n: number }>(
      sandbox.sourceUrl,
      `SELECT count(DISTINCT (payload->>'seq')::int)::int AS n FROM public.audit_log WHERE event = 'app-write'`,
    );
    expect(n).toBe(writes.acked.length);
    expect(sandbox.configText()).toBe(config);
    await expectNoReverseReplication(migrationId);
    await resetSandbox(config);
  });

  it('decommissions when the hold ends and the gate approves', async () => {
    const migrationId = `${sandbox.input().migrationId}-dec`;
    const handle = await sandbox.start(withHold({ duration: '2s', reverseReplication: true }, migrationId));
    await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });
    await handle.executeUpdate(approveUpdate, { args: [{ approver: 'bob', gate: 'decommission' }] });
    const result = await migrationResult(handle);
    expect(result.outcome).toBe('completed');
    expect(result.steps.map((s) => s.name)).toEqual(
      expect.arrayContaining(['start-reverse-replication', 'stop-reverse-replication', 'drop-markers']),
    );
    expect(result.decisions.map((d) => d.gate)).toEqual(['go-live', 'decommission']);
    await expectNoReverseReplication(migrationId);
    expect(await sourceWritable(sandbox)).toBe(false); // the source stays read-only: it is not the live database
  });

  it('holds again when the decommission gate times out, and decommissions on the next approval', async () => {
    await query(sandbox.env.SOURCE_ADMIN_URL, `ALTER DATABASE "src_${sandbox.id}" RESET default_transaction_read_only`);
    await query(sandbox.env.SOURCE_ADMIN_URL, `ALTER ROLE app IN DATABASE "src_${sandbox.id}" RESET default_transaction_read_only`);
    await sandbox.resetTarget();
    const migrationId = `${sandbox.input().migrationId}-again`;
    const handle = await sandbox.start({
      ...withHold({ duration: '1s', reverseReplication: true }, migrationId),
      gates: { 'go-live': { timeout: '2m', approvers: ['alice'] }, decommission: { timeout: '1s' } },
    });
    await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });
    // The whole migration comes first (a loaded machine takes tens of seconds), then the 1 s hold and the 1 s gate.
    await untilStatus(
      handle,
      (status) =>
        status.decisions.some((d) => d.gate === 'decommission' && d.via === 'timeout') && status.phase === 'awaiting-decommission',
      'the decommission gate open again after its timeout',
    );
    await handle.executeUpdate(approveUpdate, { args: [{ approver: 'bob', gate: 'decommission' }] });
    const result = await migrationResult(handle);
    expect(result.outcome).toBe('completed');
    expect(result.decisions.map((d) => `${d.gate}:${d.via}:${d.approved}`)).toEqual([
      'go-live:update:true',
      'decommission:timeout:false',
      'decommission:update:true',
    ]);
    await expectNoReverseReplication(migrationId);
  });
});
