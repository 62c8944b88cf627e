/**
 * The `pgcopydb` method: a failure after each of its steps (the snapshot copy, the subscription, the
 * drain, the smoke test) and a cutover no-go leave no slot, publication, subscription, marker or
 * pgcopydb session behind, the source writable and the target empty; and a copy that fails mid-way
 * (its snapshot's session cut, as when its worker dies) is retried by Temporal from a new slot and
 * snapshot, and the migration completes with every acknowledged write exactly once.
 */
import type { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MigrationActivities } from '../../activities';
import { replicationNames } from '../../activities/methods/cdc/marker';
import { pgcopydbAppName, snapshotAppName } from '../../activities/methods/pgcopydb/names';
import { approveUpdate, rejectUpdate, statusQuery } from '../../signals';
import {
  expectEveryAckedWriteOnce,
  failingAfter,
  migrateUnderLoad,
  openSandbox,
  query,
  recordHistory,
  sourceWritable,
  targetTableCount,
  type Sandbox,
} from '../helpers/harness';
import { migrationResult } from '../../signals/outcome';

let sandbox: Sandbox;

beforeAll(async () => {
  sandbox = await openSandbox('pgcopycomp');
});

afterAll(async () => {
  await sandbox?.close();
});

const pgcopydbInput = (migrationId: string) =>
  sandbox.logicalInput({
    migrationId,
    method: 'pgcopydb',
    replication: { tablesWithoutPrimaryKey: 'replica-identity-full', drainTimeout: '30s' },
  });

async function expectNothingLeft(migrationId: string): Promise<void> {
  const names = replicationNames(migrationId);
  expect(await query(sandbox.sourceAdminUrl, 'SELECT slot_name FROM pg_replication_slots WHERE slot_name = $1', [names.slot])).toEqual([]);
  expect(await query(sandbox.sourceAdminUrl, 'SELECT pubname FROM pg_publication WHERE pubname = $1', [names.publication])).toEqual([]);
  expect(await query(sandbox.targetAdminUrl, 'SELECT subname FROM pg_subscription WHERE subname = $1', [names.subscription])).toEqual([]);
  expect(await query(sandbox.sourceAdminUrl, `SELECT nspname FROM pg_namespace WHERE nspname IN ('pgcopydb', '_pgmig')`)).toEqual([]);
  for (const url of [sandbox.sourceAdminUrl, sandbox.targetAdminUrl]) {
    expect(
      await query(url, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name IN ($1, $2)`, [
        pgcopydbAppName(migrationId),
        snapshotAppName(migrationId),
      ]),
    ).toEqual([{ n: 0 }]);
  }
  expect(await sourceWritable(sandbox)).toBe(true);
  expect(await targetTableCount(sandbox)).toBe(0);
}

describe('pgcopydb method: compensation', () => {
  it('a cutover no-go removes the subscription, slot and publication and resets the target', async () => {
    const migrationId = `${sandbox.input().migrationId}-nogo`;
    const handle = await sandbox.start(pgcopydbInput(migrationId));
    await handle.executeUpdate(rejectUpdate, { args: [{ approver: 'bob', gate: 'cutover', reason: 'not tonight' }] });
    const result = await migrationResult(handle);
    expect(result.outcome).toBe('rolled-back');
    expect(result.compensations.every((c) => c.state === 'completed')).toBe(true);
    await recordHistory(handle, 'pgcopydb-snapshot-no-go');
    await expectNothingLeft(migrationId);
  }, 120_000);

  for (const step of ['copySnapshot', 'startReplication', 'drainReplication', 'smokeTest'] as (keyof MigrationActivities)[]) {
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
        await recordHistory(handle, `pgcopydb-snapshot-failed-after-${String(step)}`);
        await expectNothingLeft(migrationId);
      } finally {
        await sandbox.useActivities(sandbox.realActivities);
      }
    }, 240_000);
  }

  it('a cancellation in the middle of the copy stops pgcopydb before the undos and leaves nothing', async () => {
    const migrationId = `${sandbox.input().migrationId}-cancel`;
    const handle = await sandbox.start(pgcopydbInput(migrationId));
    let copying = 0;
    for (let i = 0; i < 3000 && !copying; i++) {
      const [n] = await query<{ n: number }>(
        sandbox.targetAdminUrl,
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND query ILIKE 'COPY%'`,
        [pgcopydbAppName(migrationId)],
      );
      copying = n.n;
      if (!copying) await new Promise((r) => setTimeout(r, 5));
    }
    await handle.cancel();
    const err = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(copying).toBeGreaterThan(0);
    expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    const status = await handle.query(statusQuery);
    expect(status.outcome).toBe('rolled-back');
    expect(status.steps.find((s) => s.name === 'snapshot-copy')?.state).not.toBe('completed');
    expect(status.compensations.filter((c) => c.state !== 'completed')).toEqual([]);
    await expectNothingLeft(migrationId);
  }, 120_000);

  it('a copy that fails mid-way (its snapshot session cut) is retried from a new slot; every acknowledged write arrives once', async () => {
    const migrationId = `${sandbox.input().migrationId}-retry`;
    const slot = replicationNames(migrationId).slot;
    const attempts: { startedOver: boolean; restartLsn?: string; error?: string }[] = [];
    const real = sandbox.realActivities;
    await sandbox.useActivities({
      ...real,
      copySnapshot: async (args: Parameters<MigrationActivities['copySnapshot']>[0]) => {
        const first = attempts.length === 0;
        let cut: NodeJS.Timeout | undefined;
        let restartLsn: string | undefined;
        if (first) {
          // As a dead worker: the session holding the snapshot goes, and pgcopydb's sessions with it.
          cut = setInterval(() => {
            void (async () => {
              const [row] = await query<{ restart_lsn: string }>(
                sandbox.sourceAdminUrl,
                'SELECT restart_lsn::text FROM pg_replication_slots WHERE slot_name = $1',
                [slot],
              );
              if (!row) return;
              // Mid-way: the slot exists and pgcopydb works on the target (its schema or its data). Waiting
              // for a COPY alone missed it now and then: this small database's data is copied in a blink.
              const [copying] = await query<{ n: number }>(
                sandbox.targetAdminUrl,
                `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1`,
                [pgcopydbAppName(migrationId)],
              );
              if (!copying.n) return;
              restartLsn = row.restart_lsn;
              clearInterval(cut);
              for (const url of [sandbox.sourceAdminUrl, sandbox.targetAdminUrl]) {
                await query(url, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name IN ($1, $2)`, [
                  pgcopydbAppName(migrationId),
                  snapshotAppName(migrationId),
                ]);
              }
            })().catch(() => undefined);
          }, 5);
        }
        try {
          const result = await real.copySnapshot(args);
          attempts.push({ startedOver: result.startedOver, restartLsn });
          return result;
        } catch (err) {
          attempts.push({ startedOver: false, restartLsn, error: (err as Error).message });
          throw err;
        } finally {
          clearInterval(cut);
        }
      },
    });
    try {
      await sandbox.resetForNextMigration();
      const { result, status, writes } = await migrateUnderLoad(sandbox, pgcopydbInput(migrationId), ['cutover', 'go-live']);
      expect(result.outcome).toBe('completed');
      expect(result.verification).toBe('passed');
      expect(attempts.length).toBe(2);
      expect(attempts[0].error).toBeDefined();
      expect(attempts[0].error).not.toContain(new URL(sandbox.sourceUrl).password);
      expect(attempts[1]).toMatchObject({ startedOver: true });
      expect(status.steps.filter((s) => s.name === 'snapshot-copy')).toHaveLength(1);
      console.log(`pgcopydb copy retried after: ${attempts[0].error}; window ${result.freezeWindow.durationMs} ms`);
      await expectEveryAckedWriteOnce(sandbox.targetUrl, writes);
    } finally {
      await sandbox.useActivities(real);
    }
  }, 300_000);
});
