/**
 * The `logical` method on the demo data while the application inserts, updates and deletes every
 * 10 ms: copy and catch-up run live, the cutover freezes writes for a short window, every
 * acknowledged write is on the target exactly once, and nothing of the replication is left behind.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicationNames } from '../../activities/methods/cdc/marker';
import { workDir } from '../../activities/names';
import type { MigrationResult, MigrationStatus } from '../../signals';
import type { WriterStats } from '../../stack/app-writer';
import {
  expectEveryAckedWriteOnce,
  historyText,
  migrateUnderLoad,
  openSandbox,
  query,
  recordHistory,
  sourceWritable,
  type Sandbox,
} from '../helpers/harness';

let sandbox: Sandbox;
let result: MigrationResult;
let status: MigrationStatus;
let writes: WriterStats;
let history: string;

beforeAll(async () => {
  sandbox = await openSandbox('logical');
  // Both gates approved ahead of time: each opens only when its automatic checks have passed.
  const run = await migrateUnderLoad(
    sandbox,
    sandbox.logicalInput({ replication: { tablesWithoutPrimaryKey: 'replica-identity-full', maxLagBytes: 64 * 1024 } }),
    ['cutover', 'go-live'],
  );
  ({ result, status, writes } = run);
  history = await historyText(run.handle);
  await recordHistory(run.handle, 'logical-completed');
});

afterAll(async () => {
  await sandbox?.close();
});

describe('logical replication migration', () => {
  it('completes, verified on the freeze-point snapshots, through both gates', () => {
    expect(result.outcome).toBe('completed');
    expect(result.reason).toBeUndefined();
    expect(result.method).toBe('logical');
    expect(result.verification).toBe('passed');
    expect(result.catalogDifferences).toEqual([]); // the schema verification finds nothing
    expect(status.verification?.state).toBe('passed');
    expect(result.decisions.map((d) => d.gate)).toEqual(['cutover', 'go-live']);
    expect(status.steps.map((s) => s.name)).toEqual([
      'preflight',
      'replica-identity',
      'copy-schema',
      'start-replication',
      'initial-copy',
      'indexes',
      'replay-roles',
      'catch-up',
      'refresh-materialized-views',
      'freeze-source',
      'drain',
      'reconcile-sequences',
      'stop-replication',
      'freeze-target',
      'swap-config',
      'smoke-test',
      'go-live',
      'drop-replication',
      'restore-replica-identity',
      'release-config',
    ]);
    expect(status.replication).toMatchObject({ caughtUp: true });
    expect(result.freezeWindow.durationMs).toBeGreaterThan(0);
    console.log(status.steps.map((s) => `${s.name} ${s.durationMs}ms`).join(', '));
    console.log(
      `logical cutover: write-freeze window ${result.freezeWindow.durationMs} ms, longest application write gap ${writes.longestGapMs} ms`,
    );
  });

  it('has every acknowledged write on the target exactly once, and none accepted by the frozen source', async () => {
    const frozenAt = result.freezeWindow.frozenAt!;
    const onSource = writes.acked.filter((w) => w.database.endsWith(`/src_${sandbox.id}`));
    expect(onSource.length).toBeGreaterThan(10);
    expect(onSource.filter((w) => w.sentAt > frozenAt)).toEqual([]);
    await expectEveryAckedWriteOnce(sandbox.targetUrl, writes);
  });

  it('carried updates and deletes made during the copy and catch-up', async () => {
    const [renamed] = await query<{ n: number }>(
      sandbox.sourceUrl,
      `SELECT count(*)::int AS n FROM shop.customers WHERE name LIKE 'renamed %'`,
    );
    const [onTarget] = await query<{ n: number }>(
      sandbox.targetUrl,
      `SELECT count(*)::int AS n FROM shop.customers WHERE name LIKE 'renamed %'`,
    );
    expect(renamed.n).toBeGreaterThan(0);
    expect(onTarget.n).toBeGreaterThanOrEqual(renamed.n);
  });

  it('reconciles sequences (including identity columns) so new inserts do not collide', async () => {
    const [customer] = await query<{ id: string }>(
      sandbox.targetUrl,
      `INSERT INTO shop.customers (email, name) VALUES ('after@example.com', 'After') RETURNING id`,
    );
    const [max] = await query<{ m: string }>(sandbox.sourceUrl, 'SELECT max(id) AS m FROM shop.customers');
    expect(BigInt(customer.id)).toBeGreaterThan(BigInt(max.m));
    const [product] = await query<{ id: number }>(
      sandbox.targetUrl,
      `INSERT INTO shop.products (sku, name, price) VALUES ('NEW-1', 'New', 1) RETURNING id`,
    );
    const [maxProduct] = await query<{ m: number }>(sandbox.sourceUrl, 'SELECT max(id) AS m FROM shop.products');
    expect(product.id).toBeGreaterThan(maxProduct.m);
  });

  it('leaves no subscription, slot, publication or marker behind, and restores replica identity', async () => {
    const names = replicationNames(sandbox.input().migrationId!);
    expect(await query(sandbox.targetAdminUrl, 'SELECT subname FROM pg_subscription WHERE subname = $1', [names.subscription])).toEqual([]);
    expect(await query(sandbox.sourceAdminUrl, 'SELECT slot_name FROM pg_replication_slots WHERE slot_name = $1', [names.slot])).toEqual(
      [],
    );
    expect(await query(sandbox.sourceAdminUrl, 'SELECT pubname FROM pg_publication WHERE pubname = $1', [names.publication])).toEqual([]);
    expect(await query(sandbox.sourceAdminUrl, `SELECT 1 FROM pg_namespace WHERE nspname = '_pgmig'`)).toEqual([]);
    expect(await query(sandbox.targetAdminUrl, `SELECT 1 FROM pg_namespace WHERE nspname = '_pgmig'`)).toEqual([]);
    const identity = await query<{ relreplident: string }>(
      sandbox.sourceAdminUrl,
      `SELECT relreplident FROM pg_class WHERE oid = 'public.audit_log'::regclass`,
    );
    expect(identity).toEqual([{ relreplident: 'd' }]);
    expect(await sourceWritable(sandbox)).toBe(false);
    // The schema dump (kept for retries of the indexes step) went with the cleanup after go-live.
    expect(existsSync(path.join(workDir(sandbox.input().migrationId!), 'schema'))).toBe(false);
  });

  it('keeps passwords out of the history (the subscription connection string included)', () => {
    for (const url of [sandbox.sourceUrl, sandbox.targetUrl, sandbox.targetAdminUrl]) {
      expect(history).not.toContain(decodeURIComponent(new URL(url).password));
    }
  });
});
