/**
 * `npm run stack -- reset`: whatever a migration left (a read-only source, a logical slot, extra
 * tables, a copied target, the triggers method's herokudb), the demo databases come back as the demo
 * starts them. On databases of this file's own, so the stack's appdb stays as other files expect it.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'dotenv';
import { Client } from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { resetDemoDatabases } from '../../stack/demo-reset';
import { createSourceDatabase, databaseUrl, dropDatabase, loadStackEnv } from '../../stack/index';

const env = loadStackEnv();
const database = `reset_test_${process.pid}`;
const herokuDatabase = `reset_heroku_${process.pid}`;
const dir = mkdtempSync(path.join(os.tmpdir(), 'stack-reset-'));
const appEnvPath = path.join(dir, 'demo-app.env');

async function rows<T extends Record<string, unknown>>(url: string, sql: string): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

const userTables = `SELECT n.nspname || '.' || c.relname AS name, c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`;

afterAll(async () => {
  await dropDatabase(env.SOURCE_ADMIN_URL, database);
  await dropDatabase(env.TARGET_ADMIN_URL, database);
  await dropDatabase(env.SOURCE_ADMIN_URL, herokuDatabase);
  rmSync(dir, { recursive: true, force: true });
});

describe('stack reset', () => {
  it('puts the demo databases back to their starting state', async () => {
    const opts = { scale: 1, database, herokuDatabase, appEnvPath };
    const first = await resetDemoDatabases(env, opts);
    const source = databaseUrl(env.SOURCE_DATABASE_URL, database);
    const sourceAdmin = databaseUrl(env.SOURCE_ADMIN_URL, database);
    const target = databaseUrl(env.TARGET_DATABASE_URL, database);

    // What a migration leaves behind.
    await rows(source, 'CREATE TABLE public.leftover (id int)');
    await rows(source, 'DELETE FROM public.pgbench_history');
    await rows(sourceAdmin, `SELECT pg_create_logical_replication_slot('reset_test_${process.pid}', 'pgoutput')`);
    await rows(sourceAdmin, `ALTER DATABASE ${database} SET default_transaction_read_only = on`);
    await rows(target, 'CREATE TABLE public.copied (id int); INSERT INTO public.copied VALUES (1)');
    await createSourceDatabase(env, herokuDatabase, { heroku: true });

    const second = await resetDemoDatabases(env, opts);
    expect(second.tables).toEqual(first.tables.map((t) => ({ ...t, bytes: expect.any(Number) as number })));
    expect((await rows<{ name: string }>(source, userTables)).map((t) => t.name)).not.toContain('public.leftover');
    expect(await rows(source, 'SHOW default_transaction_read_only')).toEqual([{ default_transaction_read_only: 'off' }]);
    expect(await rows(env.SOURCE_ADMIN_URL, `SELECT slot_name FROM pg_replication_slots WHERE database = '${database}'`)).toEqual([]);
    expect(await rows(target, userTables)).toEqual([]);
    expect(await rows(env.SOURCE_ADMIN_URL, `SELECT 1 FROM pg_database WHERE datname = '${herokuDatabase}'`)).toEqual([]);
    expect(parse(readFileSync(appEnvPath, 'utf8')).DATABASE_URL).toBe(source);
  });
});
