/**
 * A complete dump-restore migration of the demo data on the real stack, with the stand-in
 * application writing the whole time.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableFingerprint } from '../../activities/database/fingerprint';
import { Client } from 'pg';
import { statusQuery, type MigrationResult, type MigrationStatus } from '../../signals';
import { AppWriter, type WriterStats } from '../../stack/app-writer';
import { historyText, openSandbox, recordHistory, query, sourceWritable, type Sandbox } from '../helpers/harness';
import { migrationResult } from '../../signals/outcome';

let sandbox: Sandbox;
let result: MigrationResult;
let status: MigrationStatus;
let writes: WriterStats;
let historyJson: string;

beforeAll(async () => {
  sandbox = await openSandbox('full');
  const app = new AppWriter(() => sandbox.configuredUrl(), 10);
  app.start();
  await new Promise((r) => setTimeout(r, 300));
  // pgcopydb forced: `auto` takes pg_dump for a database this small (the compensation tests run that engine).
  const handle = await sandbox.start(
    sandbox.input({ copy: { engine: 'pgcopydb' }, gates: { 'go-live': { timeout: '2m', approvers: ['alice'] } } }),
  );
  // Approve ahead of time: the gate opens only after the smoke tests pass, and then goes live at once.
  await handle.executeUpdate('approve', { args: [{ approver: 'alice', gate: 'go-live', reason: 'rehearsed twice' }] });
  result = await migrationResult(handle);
  await new Promise((r) => setTimeout(r, 500));
  writes = await app.stop();
  status = await handle.query(statusQuery);
  historyJson = await historyText(handle);
  await recordHistory(handle, 'dump-restore-completed-local-window');
});

afterAll(async () => {
  await sandbox?.close();
});

describe('dump-restore migration', () => {
  it('completes with verification passed and records the approval', () => {
    expect(result.outcome).toBe('completed');
    expect(result.verification).toBe('passed');
    expect(result.catalogDifferences).toEqual([]); // the schema verification finds nothing
    expect(result.rowsCopied).toBeGreaterThan(100_000);
    expect(result.decisions).toEqual([
      expect.objectContaining({ gate: 'go-live', approved: true, approver: 'alice', reason: 'rehearsed twice' }),
    ]);
    expect(status.phase).toBe('completed');
    expect(status.steps.map((s) => s.name)).toEqual([
      'preflight',
      'freeze-source',
      'copy',
      'reconcile-sequences',
      'replay-roles',
      'freeze-target',
      'swap-config',
      'smoke-test',
      'go-live',
      'release-config',
    ]);
    expect(status.steps.every((s) => s.state === 'completed' && typeof s.durationMs === 'number')).toBe(true);
    expect(result.freezeWindow.durationMs).toBeGreaterThan(0);
  });

  it('keeps no copy of the source URL (with its password) beside the config file once completed without a hold', () => {
    const dir = path.dirname(sandbox.configFile);
    expect(readdirSync(dir).filter((f) => f.includes('.pgmig-'))).toEqual([]);
    expect(sandbox.configText()).not.toContain(`/src_${sandbox.id}`);
  });

  it('leaves the target equal to the source, table by table (counts and checksums)', async () => {
    const tables = await query<{ schema: string; name: string }>(
      sandbox.sourceUrl,
      `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`,
    );
    expect(tables.length).toBeGreaterThanOrEqual(8);
    const source = new Client({ connectionString: sandbox.sourceUrl });
    const target = new Client({ connectionString: sandbox.targetUrl });
    await Promise.all([source.connect(), target.connect()]);
    try {
      for (const c of [source, target]) await c.query("SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET extra_float_digits = 1");
      for (const t of tables) {
        if (t.name === 'audit_log') continue; // the application kept writing there after go-live: checked below
        const [s, d] = await Promise.all([tableFingerprint(source, t.schema, t.name), tableFingerprint(target, t.schema, t.name)]);
        expect({ table: `${t.schema}.${t.name}`, ...d }).toEqual({ table: `${t.schema}.${t.name}`, ...s });
      }
      const afterGoLive = writes.acked.filter((w) => w.database.endsWith(`/tgt_${sandbox.id}`)).map((w) => w.seq);
      const auditSql = `SELECT count(*)::int AS n, coalesce(sum(hashtextextended(t::text, 0)::numeric), 0)::text AS sum
                          FROM public.audit_log t WHERE NOT (event = 'app-write' AND (payload->>'seq')::int = ANY($1::int[]))`;
      const [s, d] = await Promise.all([source.query(auditSql, [[]]), target.query(auditSql, [afterGoLive])]);
      expect(d.rows[0]).toEqual(s.rows[0]);
    } finally {
      await Promise.all([source.end(), target.end()]);
    }
  });

  it('sets sequences so that new inserts on the target do not collide', async () => {
    const [customer] = await query<{ id: string }>(
      sandbox.targetUrl,
      `INSERT INTO shop.customers (email, name) VALUES ('new@example.com', 'New') RETURNING id`,
    );
    const [max] = await query<{ m: string }>(sandbox.sourceUrl, 'SELECT max(id) AS m FROM shop.customers');
    expect(BigInt(customer.id)).toBeGreaterThan(BigInt(max.m));
    const [invoice] = await query<{ id: string }>(
      sandbox.targetUrl,
      `INSERT INTO billing.invoices (order_id, amount, issued_on) SELECT id, 1, current_date FROM shop.orders LIMIT 1 RETURNING id`,
    );
    expect(Number(invoice.id)).toBeGreaterThan(0);
  });

  it('points the config sink at the target, keeping the other settings, and leaves the target writable', async () => {
    expect(sandbox.configuredUrl()).toBe(sandbox.targetUrl);
    expect(sandbox.configText()).toContain('RAILS_ENV=production');
    expect(sandbox.configText()).toContain('REDIS_URL=redis://127.0.0.1:6379');
    const [row] = await query<{ ro: string }>(sandbox.targetUrl, `SELECT current_setting('default_transaction_read_only') AS ro`);
    expect(row.ro).toBe('off');
  });

  it('keeps the source read-only afterwards (it is the rollback reference)', async () => {
    expect(await sourceWritable(sandbox)).toBe(false);
  });

  it('loses no acknowledged write and lets no write through during the freeze', async () => {
    const frozenAt = result.freezeWindow.frozenAt!;
    const onSource = writes.acked.filter((w) => w.database.endsWith(`/src_${sandbox.id}`));
    const onTarget = writes.acked.filter((w) => w.database.endsWith(`/tgt_${sandbox.id}`));
    expect(onSource.length).toBeGreaterThan(0);
    expect(onTarget.length).toBeGreaterThan(0);
    // Writes sent after the freeze was in force must all have been refused by the source.
    expect(onSource.filter((w) => w.sentAt > frozenAt)).toEqual([]);
    const landed = new Set(
      (
        await query<{ seq: number }>(
          sandbox.targetUrl,
          `SELECT (payload->>'seq')::int AS seq FROM public.audit_log WHERE event = 'app-write'`,
        )
      ).map((r) => r.seq),
    );
    const missing = writes.acked.filter((w) => !landed.has(w.seq));
    expect(missing).toEqual([]);
    expect(landed.size).toBe(writes.acked.length);
    expect(writes.failures).toBeGreaterThan(0);
  });

  it('never puts a password in the workflow history', () => {
    const passwords = [sandbox.sourceUrl, sandbox.targetUrl, sandbox.env.SOURCE_ADMIN_URL, sandbox.env.TARGET_ADMIN_URL].map((u) =>
      decodeURIComponent(new URL(u).password),
    );
    expect(passwords.every((p) => p.length >= 12)).toBe(true);
    expect(historyJson.length).toBeGreaterThan(1000);
    expect(historyJson).toContain(sandbox.sourceRef);
    for (const p of passwords) expect(historyJson).not.toContain(p);
  });
});
