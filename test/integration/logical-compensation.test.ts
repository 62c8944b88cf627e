/**
 * Logical method: a failure injected right after each forward step (and a no-go at the cutover gate)
 * leaves no subscription, slot, publication or marker behind, the source writable with its replica
 * identities, the target empty and the config unchanged. One sandbox serves every case in turn.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MigrationActivities } from '../../activities';
import { replicationNames } from '../../activities/methods/cdc/marker';
import { workDir } from '../../activities/names';
import { rejectUpdate, statusQuery } from '../../signals';
import {
  SHAPES_ONLY,
  failingAfter,
  openSandbox,
  query,
  readOnlySettings,
  sourceWritable,
  targetTableCount,
  untilPhase,
  type Sandbox,
} from '../helpers/harness';
import { migrationResult } from '../../signals/outcome';

let sandbox: Sandbox;
let before: { config: string; sourceSettings: string[]; identities: unknown[] };
const identities = (s: Sandbox) =>
  query(
    s.sourceAdminUrl,
    `SELECT c.oid::regclass::text AS t, c.relreplident FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname IN ('shop', 'billing', 'public') ORDER BY 1`,
  );

beforeAll(async () => {
  sandbox = await openSandbox('logcomp', { scale: SHAPES_ONLY });
  before = {
    config: sandbox.configText(),
    sourceSettings: await readOnlySettings(sandbox.sourceAdminUrl),
    identities: await identities(sandbox),
  };
});

afterAll(async () => {
  await sandbox?.close();
});

const logicalInput = () => sandbox.logicalInput({ gates: { cutover: { timeout: '2m' }, 'go-live': { timeout: '2m' } } });

async function expectNothingLeft(): Promise<void> {
  const names = replicationNames(sandbox.input().migrationId!);
  expect(await query(sandbox.targetAdminUrl, 'SELECT subname FROM pg_subscription WHERE subname = $1', [names.subscription])).toEqual([]);
  expect(await query(sandbox.sourceAdminUrl, 'SELECT slot_name FROM pg_replication_slots WHERE slot_name = $1', [names.slot])).toEqual([]);
  expect(await query(sandbox.sourceAdminUrl, 'SELECT pubname FROM pg_publication WHERE pubname = $1', [names.publication])).toEqual([]);
  expect(await query(sandbox.sourceAdminUrl, `SELECT 1 FROM pg_namespace WHERE nspname = '_pgmig'`)).toEqual([]);
  expect(await identities(sandbox)).toEqual(before.identities);
  expect(sandbox.configText()).toBe(before.config);
  expect(await sourceWritable(sandbox)).toBe(true);
  expect(await readOnlySettings(sandbox.sourceAdminUrl)).toEqual(before.sourceSettings);
  expect(await targetTableCount(sandbox)).toBe(0);
}

const steps: (keyof MigrationActivities)[] = [
  'setReplicaIdentityFull',
  'copySchema',
  'startReplication',
  'waitForReplication',
  'copySchemaAfterData',
  'freezeSource',
  'drainReplication',
  'reconcileSequences',
  'stopSubscription',
  'freezeTarget',
  'swapConfig',
  'smokeTest',
];

describe('logical method: compensation', () => {
  for (const step of steps) {
    it(`leaves nothing behind when ${step} fails after doing its work`, async () => {
      await sandbox.useActivities(failingAfter(sandbox.realActivities, step));
      const handle = await sandbox.start(logicalInput());
      if (!['setReplicaIdentityFull', 'copySchema', 'startReplication', 'waitForReplication', 'copySchemaAfterData'].includes(step)) {
        await handle.executeUpdate('approve', { args: [{ approver: 'alice', gate: 'cutover' }] });
      }
      const error = await handle.result().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(WorkflowFailedError);
      expect((error as WorkflowFailedError).cause?.message).toContain(`injected failure after ${step}`);
      const status = await handle.query(statusQuery);
      expect(status.compensations.filter((c) => c.state !== 'completed')).toEqual([]);
      await expectNothingLeft();
    });
  }

  it('rolls back cleanly on a no-go at the cutover gate', async () => {
    await sandbox.useActivities(sandbox.realActivities);
    const handle = await sandbox.start(logicalInput());
    await handle.executeUpdate(rejectUpdate, { args: [{ approver: 'bob', gate: 'cutover', reason: 'traffic peak' }] });
    const result = await migrationResult(handle);
    expect(result.outcome).toBe('rolled-back');
    expect(result.reason).toBe('cutover rejected by bob: traffic peak');
    expect(result.freezeWindow.frozenAt).toBeUndefined(); // writes were never frozen
    await expectNothingLeft();
  });

  it('copySchemaAfterData makes the schema dump again where it is missing, and a retry after it completed succeeds', async () => {
    const real = sandbox.realActivities;
    const schemaDir = path.join(workDir(sandbox.input().migrationId!), 'schema');
    const outcomes: string[] = [];
    await sandbox.useActivities({
      ...real,
      copySchemaAfterData: async (...args: Parameters<typeof real.copySchemaAfterData>) => {
        const first = outcomes.length === 0;
        // As if this attempt ran on another host than copySchema (or after an attempt that removed the dump).
        if (first) await rm(schemaDir, { recursive: true, force: true });
        const done = await real.copySchemaAfterData(...args);
        outcomes.push(done.schemaDump);
        // The worker dies after the work, before its completion is recorded: the retry must not fail.
        if (first) throw ApplicationFailure.retryable('injected: worker lost after copySchemaAfterData', 'InjectedRetry');
        return done;
      },
    });
    const handle = await sandbox.start(logicalInput());
    await untilPhase(handle, 'awaiting-cutover');
    expect(outcomes).toEqual(['recreated', 'reused']);
    const indexes = (url: string) =>
      query(url, `SELECT schemaname || '.' || indexname AS i FROM pg_indexes WHERE schemaname IN ('shop', 'billing', 'public') ORDER BY 1`);
    expect(await indexes(sandbox.targetAdminUrl)).toEqual(await indexes(sandbox.sourceAdminUrl));
    const fks = (url: string) =>
      query(url, `SELECT conrelid::regclass::text || ' ' || conname AS c FROM pg_constraint WHERE contype = 'f' ORDER BY 1`);
    expect(await fks(sandbox.targetAdminUrl)).toEqual(await fks(sandbox.sourceAdminUrl));

    await handle.executeUpdate(rejectUpdate, { args: [{ approver: 'bob', gate: 'cutover', reason: 'test over' }] });
    expect((await migrationResult(handle)).outcome).toBe('rolled-back');
    await expectNothingLeft();
    expect(existsSync(schemaDir)).toBe(false); // removed with the compensation
  });

  it('rolls back cleanly when nobody answers the cutover gate', async () => {
    await sandbox.useActivities(sandbox.realActivities);
    const handle = await sandbox.start(sandbox.logicalInput({ gates: { cutover: { timeout: '1s' } } }));
    const result = await migrationResult(handle);
    expect(result.outcome).toBe('rolled-back');
    expect(result.reason).toMatch(/^cutover timed out/);
    await expectNothingLeft();
  });
});
