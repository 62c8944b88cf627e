/**
 * The local stack against the real components (Temporal dev server, two PostgreSQL 15
 * clusters, moto). Never calls stackDown: other test files share the stack.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_TABLE_REFS, DEMO_TABLES, DEMO_TABLES_WITHOUT_PK, seedDemoData } from '../stack/demo-data';
import {
  createSourceDatabase,
  createTargetDatabase,
  databaseUrl,
  dropDatabase,
  loadStackEnv,
  repoRoot,
  STACK_ENV_KEYS,
  stackStatus,
  stackUp,
  type StackEnv,
} from '../stack/index';
import { SEARCH_ATTRIBUTES } from '../stack/search-attributes';

let env: StackEnv;
const seededDb = `stack_test_${process.pid}`;
const targetDb = `stack_test_target_${process.pid}`;

async function query<T extends Record<string, unknown>>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = password;
  return u.toString();
}

function pids(status: Awaited<ReturnType<typeof stackStatus>>): Record<string, number | undefined> {
  return Object.fromEntries(status.map((c) => [c.name, c.pid]));
}

beforeAll(async () => {
  env = await stackUp();
}, 120_000);

afterAll(async () => {
  if (!env) return;
  await dropDatabase(env.SOURCE_ADMIN_URL, seededDb);
  await dropDatabase(env.SOURCE_ADMIN_URL, `${seededDb}_tenth`);
  await dropDatabase(env.TARGET_ADMIN_URL, targetDb);
}, 60_000);

describe('stack lifecycle', () => {
  it('every component is running and the env file matches stackUp()', async () => {
    const status = await stackStatus();
    expect(status.map((c) => c.name).sort()).toEqual(['moto', 'source-postgres', 'target-postgres', 'temporal', 'temporal-ui'].sort());
    for (const c of status) expect(c, c.name).toMatchObject({ running: true });
    expect(loadStackEnv()).toEqual(env);
    expect(env.TEMPORAL_NAMESPACE).toBe('default');
    expect(new URL(env.SOURCE_DATABASE_URL).username).toBe('app');
    expect(new URL(env.TARGET_DATABASE_URL).username).toBe('rds_master');
  });

  it('stackUp() again (also twice concurrently) starts no new process: same pids', async () => {
    const before = pids(await stackStatus());
    for (const pid of Object.values(before)) expect(pid).toBeGreaterThan(0);
    const again = await stackUp();
    const [a, b] = await Promise.all([stackUp(), stackUp()]);
    expect(again).toEqual(env);
    expect(a).toEqual(env);
    expect(b).toEqual(env);
    expect(pids(await stackStatus())).toEqual(before);
  }, 120_000);

  it('Temporal answers and has the custom search attributes', async () => {
    const res = await fetch(`${env.TEMPORAL_UI_URL}/api/v1/namespaces/default/search-attributes`);
    expect(res.ok).toBe(true);
    const body = (await res.json()) as { keys?: Record<string, string>; customAttributes?: Record<string, string> };
    const custom = body.customAttributes ?? body.keys ?? {};
    for (const name of Object.keys(SEARCH_ATTRIBUTES)) expect(Object.keys(custom)).toContain(name);
  });

  it('moto answers on AWS_ENDPOINT_URL', async () => {
    const res = await fetch(`${env.AWS_ENDPOINT_URL}/moto-api/`);
    expect(res.status).toBe(200);
  });
});

describe('PostgreSQL clusters', () => {
  it('the source rejects a wrong password (28P01), as does the target', async () => {
    for (const url of [env.SOURCE_DATABASE_URL, env.TARGET_DATABASE_URL, env.SOURCE_ADMIN_URL]) {
      const client = new Client({ connectionString: withPassword(url, 'definitely-not-the-password') });
      await expect(client.connect()).rejects.toMatchObject({ code: '28P01' });
    }
  });

  it('source: app is a non-superuser with REPLICATION, app_worker is plain, wal_level is logical', async () => {
    const [me] = await query<{ user: string; rolsuper: boolean; rolreplication: boolean; wal_level: string; owner: string }>(
      env.SOURCE_DATABASE_URL,
      `SELECT current_user AS user, r.rolsuper, r.rolreplication, current_setting('wal_level') AS wal_level,
              pg_get_userbyid(d.datdba) AS owner
       FROM pg_roles r, pg_database d WHERE r.rolname = current_user AND d.datname = current_database()`,
    );
    expect(me).toEqual({ user: 'app', rolsuper: false, rolreplication: true, wal_level: 'logical', owner: 'app' });
    const [worker] = await query<{ rolsuper: boolean; rolreplication: boolean }>(
      env.SOURCE_WORKER_DATABASE_URL,
      'SELECT rolsuper, rolreplication FROM pg_roles WHERE rolname = current_user',
    );
    expect(worker).toEqual({ rolsuper: false, rolreplication: false });
    const [settings] = await query<{ slots: string; senders: string; conns: string }>(
      env.SOURCE_ADMIN_URL,
      `SELECT current_setting('max_replication_slots') AS slots, current_setting('max_wal_senders') AS senders,
              current_setting('max_connections') AS conns`,
    );
    expect(settings).toEqual({ slots: '16', senders: '16', conns: '200' });
  });

  it('target: rds_master is CREATEDB CREATEROLE but not superuser, owns appdb, wal_level logical', async () => {
    const [me] = await query<Record<string, unknown>>(
      env.TARGET_DATABASE_URL,
      `SELECT r.rolsuper, r.rolcreatedb, r.rolcreaterole, pg_get_userbyid(d.datdba) AS owner,
              current_setting('wal_level') AS wal_level
       FROM pg_roles r, pg_database d WHERE r.rolname = current_user AND d.datname = current_database()`,
    );
    expect(me).toEqual({ rolsuper: false, rolcreatedb: true, rolcreaterole: true, owner: 'rds_master', wal_level: 'logical' });
  });

  it('databaseUrl replaces only the database name', () => {
    const url = databaseUrl('postgres://u:p%40ss@127.0.0.1:5432/appdb?sslmode=disable', 'other_db');
    expect(url).toBe('postgres://u:p%40ss@127.0.0.1:5432/other_db?sslmode=disable');
  });

  it('createTargetDatabase makes a database owned by rds_master (and recreates it empty)', async () => {
    const url = await createTargetDatabase(env, targetDb);
    await query(url, 'CREATE TABLE t (id int)');
    const again = await createTargetDatabase(env, targetDb);
    expect(again).toBe(url);
    const rows = await query<{ owner: string; tables: string }>(
      url,
      `SELECT pg_get_userbyid(datdba) AS owner, (SELECT count(*) FROM pg_tables WHERE schemaname = 'public') AS tables
       FROM pg_database WHERE datname = current_database()`,
    );
    expect(rows).toEqual([{ owner: 'rds_master', tables: '0' }]);
  });
});

describe('demo dataset', () => {
  it('seedDemoData(scale 1) into a fresh source database loads every table, owned by app', async () => {
    const url = await createSourceDatabase(env, seededDb);
    expect(url).toBe(databaseUrl(env.SOURCE_DATABASE_URL, seededDb));

    const summary = await seedDemoData(url, { scale: 1 });
    expect(summary.skipped).toBe(false);
    expect(summary.database).toBe(seededDb);
    expect(summary.tables.map((t) => t.table)).toEqual([...DEMO_TABLES]);
    for (const t of summary.tables) expect(t.rows, t.table).toBeGreaterThan(0);
    const rows = Object.fromEntries(summary.tables.map((t) => [t.table, t.rows]));
    expect(rows['public.pgbench_accounts']).toBe(100_000);
    expect(rows['billing."LedgerEntries"']).toBeGreaterThan(0);
    expect(summary.totalBytes).toBeGreaterThan(15 * 1024 * 1024);

    // Everything belongs to app, like on Heroku.
    const owners = await query<{ owner: string }>(
      url,
      `SELECT DISTINCT pg_get_userbyid(c.relowner) AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname IN ('shop', 'billing') OR (n.nspname = 'public' AND c.relname = ANY($1))`,
      [DEMO_TABLE_REFS.filter((t) => t.schema === 'public').map((t) => t.table)],
    );
    expect(owners).toEqual([{ owner: 'app' }]);

    // No primary key where there should be none, one everywhere else.
    const pk = await query<{ tbl: string; has_pk: boolean }>(
      url,
      `SELECT format('%I.%I', n.nspname, c.relname) AS tbl,
              EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p') AS has_pk
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind = 'r' AND format('%I.%I', n.nspname, c.relname) = ANY($1)`,
      [[...DEMO_TABLES]],
    );
    expect(pk).toHaveLength(DEMO_TABLES.length);
    for (const { tbl, has_pk } of pk) expect(has_pk, tbl).toBe(!DEMO_TABLES_WITHOUT_PK.includes(tbl));
    expect(pk.find((r) => r.tbl === 'public.audit_log')?.has_pk).toBe(false);

    // Sequences sit at max(id); the standalone sequence is owned by no column and ahead of its use.
    const [seq] = await query<Record<string, boolean>>(
      url,
      `SELECT (SELECT last_value FROM shop.orders_id_seq) = (SELECT max(id) FROM shop.orders) AS orders,
              (SELECT last_value FROM shop.products_id_seq) = (SELECT max(id) FROM shop.products) AS products,
              (SELECT last_value FROM billing.invoices_id_seq) = (SELECT max(id) FROM billing.invoices) AS invoices,
              (SELECT last_value FROM billing."LedgerEntries_id_seq") = (SELECT max(id) FROM billing."LedgerEntries") AS ledger,
              (SELECT last_value FROM shop.invoice_number_seq) >
                (SELECT max(substr(invoice_number, 5)::bigint) FROM billing.invoices) AS invoice_number_ahead,
              NOT EXISTS (SELECT 1 FROM pg_depend WHERE classid = 'pg_class'::regclass
                          AND objid = 'shop.invoice_number_seq'::regclass AND deptype IN ('a', 'i')) AS standalone,
              (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(delta) FROM pgbench_history) AS pgbench_consistent`,
    );
    expect(seq).toEqual({
      orders: true,
      products: true,
      invoices: true,
      ledger: true,
      invoice_number_ahead: true,
      standalone: true,
      pgbench_consistent: true,
    });

    // app_worker got DML through the default privileges of the new database.
    const workerUrl = databaseUrl(env.SOURCE_WORKER_DATABASE_URL, seededDb);
    const [w] = await query<{ n: string }>(workerUrl, 'SELECT count(*) AS n FROM shop.orders');
    expect(Number(w.n)).toBe(rows['shop.orders']);

    // Same scale again: skipped, nothing reloaded.
    const again = await seedDemoData(url, { scale: 1 });
    expect(again.skipped).toBe(true);
    expect(again.tables.map((t) => [t.table, t.rows])).toEqual(summary.tables.map((t) => [t.table, t.rows]));
  }, 120_000);

  it('a fraction of a unit keeps every table and pgbench whole (one branch, ten tellers); other scales are refused', async () => {
    const url = await createSourceDatabase(env, `${seededDb}_tenth`);
    const summary = await seedDemoData(url, { scale: 0.1 });
    const rows = Object.fromEntries(summary.tables.map((t) => [t.table, t.rows]));
    for (const t of summary.tables) expect(t.rows, t.table).toBeGreaterThan(0);
    expect(rows['public.pgbench_accounts']).toBe(10_000);
    expect(rows['public.pgbench_branches']).toBe(1);
    expect(rows['public.pgbench_tellers']).toBe(10);
    expect(rows['shop.customers']).toBe(200);
    const [balances] = await query<{ ok: boolean }>(
      url,
      `SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(delta) FROM pgbench_history) AS ok`,
    );
    expect(balances.ok).toBe(true);
    for (const scale of [0, 0.001, 1.5, Number.NaN]) {
      await expect(seedDemoData(url, { scale }), String(scale)).rejects.toThrow(/scale must be/);
    }
  }, 120_000);
});

describe('docker-compose', () => {
  it('registers the same search attributes and gives the worker every stack.env key', () => {
    const compose = readFileSync(path.join(repoRoot(), 'docker-compose.yml'), 'utf8');
    for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) expect(compose).toContain(`- ${name}=${type}`);
    const composeEnv = parseDotenv(readFileSync(path.join(repoRoot(), 'docker', 'compose.env'), 'utf8'));
    for (const key of STACK_ENV_KEYS) expect(composeEnv[key], key).toBeTruthy();
  });

  it('runs a real Temporal server on its own PostgreSQL, versions pinned, and scalable workers with a scratch of their own', () => {
    const compose = readFileSync(path.join(repoRoot(), 'docker-compose.yml'), 'utf8');
    expect(compose).not.toContain('start-dev');
    for (const image of ['temporalio/server', 'temporalio/admin-tools', 'temporalio/ui']) {
      expect(compose).toMatch(new RegExp(`image: ${image}:\\d+\\.\\d+\\.\\d+\\n`));
    }
    expect(compose).toContain('DB: postgres12');
    expect(compose).toContain('POSTGRES_SEEDS: temporal-postgres');
    // A replica of the worker service: no fixed container name or published port, its own anonymous scratch volume.
    const worker = compose.slice(compose.indexOf('\n  worker:\n'), compose.indexOf('\nvolumes:\n'));
    expect(worker).not.toMatch(/container_name|ports:/);
    expect(worker).toContain('WORKER_SCRATCH_DIR: /var/lib/pgmig/scratch');
    expect(worker).toContain('      - /var/lib/pgmig/scratch\n');
  });
});
