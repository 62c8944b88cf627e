/**
 * Method `dms` through the workflow, against moto. moto keeps DMS's control plane (endpoints,
 * instance, task, start/stop, CloudWatch metrics) but moves no data, so this proves the
 * orchestration and its compensations, not replication: the test publishes the CDC latency DMS
 * would, and a cutover ends at the drain, where the marker row never arrives, and is rolled back.
 */
import { PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { DescribeEndpointsCommand, DescribeReplicationTasksCommand } from '@aws-sdk/client-database-migration-service';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dmsResourceNames } from '../../activities/methods/dms/aws-dms';
import { approveUpdate, rejectUpdate, statusQuery } from '../../signals';
import {
  SHAPES_ONLY,
  failingAfter,
  openSandbox,
  query,
  recordHistory,
  sourceWritable,
  targetTableCount,
  type Sandbox,
  untilPhase,
} from '../helpers/harness';
import { motoDmsClients } from '../helpers/moto';
import { migrationResult } from '../../signals/outcome';

let sandbox: Sandbox;
const clients = () => motoDmsClients(sandbox.env);

beforeAll(async () => {
  sandbox = await openSandbox('dms', { scale: SHAPES_ONLY });
});

afterAll(async () => {
  await sandbox?.close();
});

/** What DMS publishes once a minute while CDC runs (moto does not). */
async function publishLatency(migrationId: string, seconds: number): Promise<void> {
  const names = dmsResourceNames({ migrationId });
  const dimensions = [
    { Name: 'ReplicationInstanceIdentifier', Value: names.instance },
    { Name: 'ReplicationTaskIdentifier', Value: names.task },
  ];
  await clients().cloudwatch.send(
    new PutMetricDataCommand({
      Namespace: 'AWS/DMS',
      MetricData: ['CDCLatencySource', 'CDCLatencyTarget'].map((MetricName) => ({
        MetricName,
        Dimensions: dimensions,
        Unit: 'Seconds',
        Value: seconds,
        Timestamp: new Date(),
      })),
    }),
  );
}

async function expectNoDmsResources(migrationId: string): Promise<void> {
  const names = dmsResourceNames({ migrationId });
  const tasks = await clients()
    .dms.send(new DescribeReplicationTasksCommand({ Filters: [{ Name: 'replication-task-id', Values: [names.task] }] }))
    .catch(() => ({ ReplicationTasks: [] }));
  expect(tasks.ReplicationTasks ?? []).toEqual([]);
  const endpoints = await clients()
    .dms.send(new DescribeEndpointsCommand({ Filters: [{ Name: 'endpoint-id', Values: [names.source, names.target] }] }))
    .catch(() => ({ Endpoints: [] }));
  expect(endpoints.Endpoints ?? []).toEqual([]);
}

async function expectWorldRestored(migrationId: string): Promise<void> {
  await expectNoDmsResources(migrationId);
  expect(await sourceWritable(sandbox)).toBe(true);
  expect(await targetTableCount(sandbox)).toBe(0);
  expect(await query(sandbox.sourceAdminUrl, `SELECT 1 FROM pg_namespace WHERE nspname = '_pgmig'`)).toEqual([]);
}

describe('dms method (control plane on moto)', () => {
  it('creates endpoints, instance and task, waits for CloudWatch CDC latency, and deletes everything on a cutover no-go', async () => {
    const migrationId = `${sandbox.input().migrationId}-nogo`;
    await publishLatency(migrationId, 1);
    const handle = await sandbox.start(
      sandbox.input({ migrationId, method: 'dms', replication: { tablesWithoutPrimaryKey: 'replica-identity-full', maxLagSeconds: 5 } }),
    );
    await untilPhase(handle, 'awaiting-cutover');
    const status = await handle.query(statusQuery);
    expect(status.replication).toMatchObject({ caughtUp: true, lagSeconds: 1 });
    const names = dmsResourceNames({ migrationId });
    const task = await clients().dms.send(
      new DescribeReplicationTasksCommand({ Filters: [{ Name: 'replication-task-id', Values: [names.task] }] }),
    );
    expect(task.ReplicationTasks?.[0]).toMatchObject({ MigrationType: 'full-load-and-cdc', Status: 'running' });
    const mappings = JSON.parse(task.ReplicationTasks![0].TableMappings!) as { rules: { 'object-locator': { 'table-name': string } }[] };
    expect(mappings.rules.map((r) => r['object-locator']['table-name'])).toEqual(expect.arrayContaining(['LedgerEntries', 'customers']));

    await handle.executeUpdate(rejectUpdate, { args: [{ approver: 'bob', gate: 'cutover', reason: 'not tonight' }] });
    const result = await migrationResult(handle);
    expect(result.outcome).toBe('rolled-back');
    expect(result.compensations.every((c) => c.state === 'completed')).toBe(true);
    await recordHistory(handle, 'dms-no-go');
    await expectWorldRestored(migrationId);
  });

  it('rolls back when the target never receives the drain marker (moto moves no data)', async () => {
    const migrationId = `${sandbox.input().migrationId}-drain`;
    await publishLatency(migrationId, 0);
    const handle = await sandbox.start(
      sandbox.input({ migrationId, method: 'dms', replication: { tablesWithoutPrimaryKey: 'replica-identity-full', drainTimeout: '2s' } }),
    );
    await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'cutover' }] });
    const err = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause?.message).toMatch(/did not apply the cutover marker within 2000 ms/);
    const status = await handle.query(statusQuery);
    expect(status.compensations.map((c) => `${c.step}:${c.state}`)).toEqual([
      'unfreeze-source:completed',
      'undo-roles:completed',
      'stop-replication:completed',
      'reset-target:completed',
      'restore-replica-identity:completed',
    ]);
    await recordHistory(handle, 'dms-failed-at-drain');
    await expectWorldRestored(migrationId);
  });

  for (const step of ['setReplicaIdentityFull', 'copySchema', 'startReplication', 'waitForReplication', 'copySchemaAfterData'] as const) {
    it(`a failure right after ${step} deletes every DMS resource and restores the databases`, async () => {
      const migrationId = `${sandbox.input().migrationId}-${step.toLowerCase().slice(0, 12)}`;
      await publishLatency(migrationId, 0);
      await sandbox.useActivities(failingAfter(sandbox.realActivities, step));
      try {
        const handle = await sandbox.start(
          sandbox.input({ migrationId, method: 'dms', replication: { tablesWithoutPrimaryKey: 'replica-identity-full' } }),
        );
        const err = await handle.result().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect((err as WorkflowFailedError).cause?.message).toContain(`injected failure after ${step}`);
        const status = await handle.query(statusQuery);
        expect(status.compensations.filter((c) => c.state !== 'completed')).toEqual([]);
        await recordHistory(handle, `dms-failed-after-${step}`);
        await expectWorldRestored(migrationId);
      } finally {
        await sandbox.useActivities(sandbox.realActivities);
      }
    });
  }
});
