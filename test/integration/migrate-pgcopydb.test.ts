/**
 * The `pgcopydb` method through the workflow, on the demo data while the application inserts,
 * updates and deletes: pgcopydb clones and follows beside the workflow, the drain sets its endpos and
 * waits for the marker, and nothing of pgcopydb (slot, origin, sentinel) is left afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgcopydbNames } from '../../activities/pgcopydb';
import { approveUpdate, statusQuery, type MigrationResult, type MigrationStatus } from '../../signals';
import { AppWriter, type WriterStats } from '../../stack/app-writer';
import { openSandbox, query, type Sandbox } from '../helpers/harness';

let sandbox: Sandbox;
let result: MigrationResult;
let status: MigrationStatus;
let writes: WriterStats;

beforeAll(async () => {
  sandbox = await openSandbox('pgcopydbwf');
  const app = new AppWriter(() => sandbox.configuredUrl(), 10, true);
  app.start();
  await new Promise((r) => setTimeout(r, 300));
  const handle = await sandbox.start(
    sandbox.input({ method: 'pgcopydb', replication: { tablesWithoutPrimaryKey: 'replica-identity-full', maxLagBytes: 16 * 1024 * 1024, drainTimeout: '2m' } }),
  );
  await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'cutover' }] });
  await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });
  result = (await handle.result()) as MigrationResult;
  await new Promise((r) => setTimeout(r, 500));
  writes = await app.stop();
  status = await handle.query(statusQuery);
}, 300_000);

afterAll(async () => {
  await sandbox?.close();
});

describe('pgcopydb migration', () => {
  it('completes, verified on the freeze-point snapshots', () => {
    expect(result.outcome).toBe('completed');
    expect(result.method).toBe('pgcopydb');
    expect(result.verification).toBe('passed');
    expect(status.steps.map((s) => s.name)).toEqual(expect.arrayContaining(['initial-copy', 'catch-up', 'freeze-source', 'drain', 'pgcopydb-exit', 'go-live', 'drop-replication']));
    console.log(`pgcopydb cutover: write-freeze window ${result.freezeWindow.durationMs} ms; ${status.steps.map((s) => `${s.name} ${s.durationMs}ms`).join(', ')}`);
  });

  it('has every acknowledged write on the target exactly once', async () => {
    const frozenAt = result.freezeWindow.frozenAt!;
    expect(writes.acked.filter((w) => w.database.endsWith(`/src_${sandbox.id}`) && w.sentAt > frozenAt)).toEqual([]);
    const rows = await query<{ seq: number; n: number }>(sandbox.targetUrl, `SELECT (payload->>'seq')::int AS seq, count(*)::int AS n FROM public.audit_log WHERE event = 'app-write' GROUP BY 1`);
    const counts = new Map(rows.map((r) => [r.seq, r.n]));
    expect(writes.acked.filter((w) => counts.get(w.seq) !== 1)).toEqual([]);
    expect(counts.size).toBe(writes.acked.length);
  });

  it('leaves no slot, replication origin, sentinel or marker', async () => {
    const names = pgcopydbNames(sandbox.input().migrationId!);
    expect(await query(sandbox.sourceAdminUrl, 'SELECT slot_name FROM pg_replication_slots WHERE slot_name = $1', [names.slotName])).toEqual([]);
    expect(await query(sandbox.targetAdminUrl, 'SELECT roname FROM pg_replication_origin WHERE roname = $1', [names.origin])).toEqual([]);
    expect(await query(sandbox.sourceAdminUrl, `SELECT nspname FROM pg_namespace WHERE nspname IN ('pgcopydb', '_pgmig')`)).toEqual([]);
  });
});
