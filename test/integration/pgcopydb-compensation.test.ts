/**
 * The `pgcopydb` method: a cutover no-go and a failure after steps of the window leave no pgcopydb
 * process, slot, replication origin, sentinel or marker behind, the source writable and the target empty.
 */
import type { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgcopydbNames } from '../../activities/methods/pgcopydb/clone-follow';
import type { MigrationActivities } from '../../activities';
import { approveUpdate, rejectUpdate, statusQuery, type MigrationResult } from '../../signals';
import { failingAfter, openSandbox, query, recordHistory, sourceWritable, targetTableCount, type Sandbox } from '../helpers/harness';

let sandbox: Sandbox;

beforeAll(async () => {
  sandbox = await openSandbox('pgcopycomp');
});

afterAll(async () => {
  await sandbox?.close();
});

const pgcopydbInput = (migrationId: string) =>
  sandbox.input({
    migrationId,
    method: 'pgcopydb',
    // No application writes here: pgcopydb 0.10's lag in bytes grows with the rest of the cluster's WAL while this
    // database is quiet (its position moves only with a transaction it applies), so catch-up is declared early.
    replication: { tablesWithoutPrimaryKey: 'replica-identity-full', maxLagBytes: 1024 * 1024 * 1024, drainTimeout: '2m' },
  });

async function expectNothingLeft(migrationId: string): Promise<void> {
  const names = pgcopydbNames(migrationId);
  expect(await query(sandbox.sourceAdminUrl, 'SELECT slot_name FROM pg_replication_slots WHERE slot_name = $1', [names.slotName])).toEqual(
    [],
  );
  expect(await query(sandbox.targetAdminUrl, 'SELECT roname FROM pg_replication_origin WHERE roname = $1', [names.origin])).toEqual([]);
  expect(await query(sandbox.sourceAdminUrl, `SELECT nspname FROM pg_namespace WHERE nspname IN ('pgcopydb', '_pgmig')`)).toEqual([]);
  expect(
    await query(sandbox.sourceAdminUrl, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE $1`, [
      `${names.applicationName}%`,
    ]),
  ).toEqual([{ n: 0 }]);
  expect(await sourceWritable(sandbox)).toBe(true);
  expect(await targetTableCount(sandbox)).toBe(0);
}

describe('pgcopydb method: compensation', () => {
  it('a cutover no-go stops pgcopydb and removes everything it made', async () => {
    const migrationId = `${sandbox.input().migrationId}-nogo`;
    const handle = await sandbox.start(pgcopydbInput(migrationId));
    await handle.executeUpdate(rejectUpdate, { args: [{ approver: 'bob', gate: 'cutover', reason: 'not tonight' }] });
    const result = (await handle.result()) as MigrationResult;
    expect(result.outcome).toBe('rolled-back');
    expect(result.compensations.every((c) => c.state === 'completed')).toBe(true);
    await recordHistory(handle, 'pgcopydb-no-go');
    await expectNothingLeft(migrationId);
  });

  for (const step of ['drainReplication', 'smokeTest'] as (keyof MigrationActivities)[]) {
    it(`a failure right after ${String(step)} leaves nothing behind`, async () => {
      const migrationId = `${sandbox.input().migrationId}-${String(step).slice(0, 8).toLowerCase()}`;
      await sandbox.useActivities(failingAfter(sandbox.realActivities, step));
      try {
        const handle = await sandbox.start(pgcopydbInput(migrationId));
        await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'cutover' }] });
        const err = await handle.result().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect((err as WorkflowFailedError).cause?.message).toContain(`injected failure after ${String(step)}`);
        const status = await handle.query(statusQuery);
        expect(status.compensations.filter((c) => c.state !== 'completed')).toEqual([]);
        await recordHistory(handle, `pgcopydb-failed-after-${String(step)}`);
        await expectNothingLeft(migrationId);
      } finally {
        await sandbox.useActivities(sandbox.realActivities);
      }
    }, 240_000);
  }
});
