/**
 * The `pgcopydb` method through the workflow, on the demo data while the application inserts,
 * updates and deletes: pgcopydb clones and follows beside the workflow, the drain sets its endpos and
 * waits for the marker, and nothing of pgcopydb (slot, origin, sentinel) is left afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgcopydbNames } from '../../activities/methods/pgcopydb/clone-follow';
import type { MigrationResult, MigrationStatus } from '../../signals';
import type { WriterStats } from '../../stack/app-writer';
import { expectEveryAckedWriteOnce, migrateUnderLoad, openSandbox, query, recordHistory, type Sandbox } from '../helpers/harness';

let sandbox: Sandbox;
let result: MigrationResult;
let status: MigrationStatus;
let writes: WriterStats;

beforeAll(async () => {
  sandbox = await openSandbox('pgcopydbwf');
  const run = await migrateUnderLoad(
    sandbox,
    sandbox.input({
      method: 'pgcopydb',
      replication: { tablesWithoutPrimaryKey: 'replica-identity-full', maxLagBytes: 16 * 1024 * 1024, drainTimeout: '2m' },
    }),
    ['cutover', 'go-live'],
  );
  ({ result, status, writes } = run);
  await recordHistory(run.handle, 'pgcopydb-completed');
}, 300_000);

afterAll(async () => {
  await sandbox?.close();
});

describe('pgcopydb migration', () => {
  it('completes, verified on the freeze-point snapshots', () => {
    expect(result.outcome).toBe('completed');
    expect(result.method).toBe('pgcopydb');
    expect(result.verification).toBe('passed');
    expect(status.steps.map((s) => s.name)).toEqual(
      expect.arrayContaining(['initial-copy', 'catch-up', 'freeze-source', 'drain', 'pgcopydb-exit', 'go-live', 'drop-replication']),
    );
    console.log(
      `pgcopydb cutover: write-freeze window ${result.freezeWindow.durationMs} ms; ${status.steps.map((s) => `${s.name} ${s.durationMs}ms`).join(', ')}`,
    );
  });

  it('has every acknowledged write on the target exactly once', async () => {
    const frozenAt = result.freezeWindow.frozenAt!;
    expect(writes.acked.filter((w) => w.database.endsWith(`/src_${sandbox.id}`) && w.sentAt > frozenAt)).toEqual([]);
    await expectEveryAckedWriteOnce(sandbox.targetUrl, writes);
  });

  it('leaves no slot, replication origin, sentinel or marker', async () => {
    const names = pgcopydbNames(sandbox.input().migrationId!);
    expect(
      await query(sandbox.sourceAdminUrl, 'SELECT slot_name FROM pg_replication_slots WHERE slot_name = $1', [names.slotName]),
    ).toEqual([]);
    expect(await query(sandbox.targetAdminUrl, 'SELECT roname FROM pg_replication_origin WHERE roname = $1', [names.origin])).toEqual([]);
    expect(await query(sandbox.sourceAdminUrl, `SELECT nspname FROM pg_namespace WHERE nspname IN ('pgcopydb', '_pgmig')`)).toEqual([]);
  });
});
