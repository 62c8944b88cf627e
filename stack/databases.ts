/**
 * Databases for tests, the demo and the benchmark: one fresh database per test file (or run) on
 * each cluster, so they can run side by side on the one stack.
 */
import { Client } from 'pg';
import type { StackEnv } from './env-file';
import { applySourceDatabaseGrants } from './pg-provision';
import { sleep } from './proc';
import { ADMIN_SESSION_OPTIONS, ident } from './sql';

/** `baseUrl` with its database name replaced by `dbName` (credentials, host and query kept). */
export function databaseUrl(baseUrl: string, dbName: string): string {
  const u = new URL(baseUrl);
  u.pathname = `/${encodeURIComponent(dbName)}`;
  return u.toString();
}

async function withClient<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, options: ADMIN_SESSION_OPTIONS });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Drop `dbName` if it exists (as the superuser at `adminUrl`): drops its subscriptions
 * (detached from their remote slots), terminates the consumers of logical slots in it and
 * drops those slots, then DROP DATABASE ... WITH (FORCE).
 */
export async function dropDatabase(adminUrl: string, dbName: string): Promise<void> {
  const row = await withClient(adminUrl, (c) =>
    c.query<{ datallowconn: boolean }>('SELECT datallowconn FROM pg_database WHERE datname = $1', [dbName]),
  );
  if (row.rowCount === 0) return;

  if (row.rows[0].datallowconn) {
    await withClient(databaseUrl(adminUrl, dbName), async (c) => {
      const subs = await c.query<{ subname: string }>(
        'SELECT subname FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())',
      );
      for (const { subname } of subs.rows) {
        await c.query(`ALTER SUBSCRIPTION ${ident(subname)} DISABLE`);
        await c.query(`ALTER SUBSCRIPTION ${ident(subname)} SET (slot_name = NONE)`);
        await c.query(`DROP SUBSCRIPTION ${ident(subname)}`);
      }
    });
  }

  await withClient(adminUrl, async (c) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const active = await c.query<{ slot_name: string; active_pid: number | null }>(
        'SELECT slot_name, active_pid FROM pg_replication_slots WHERE database = $1 AND active',
        [dbName],
      );
      if (active.rowCount === 0) break;
      for (const s of active.rows) if (s.active_pid) await c.query('SELECT pg_terminate_backend($1)', [s.active_pid]);
      if (Date.now() > deadline) {
        throw new Error(`Cannot drop ${dbName}: replication slots ${active.rows.map((r) => r.slot_name).join(', ')} stay active`);
      }
      await sleep(200);
    }
    // A logical slot left behind (a subscription dropped without it, a migration stopped midway) makes DROP DATABASE fail.
    await c.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1', [dbName]);
    await c.query(`DROP DATABASE IF EXISTS ${ident(dbName)} WITH (FORCE)`);
  });
}

/**
 * (Re)create `dbName` on the source cluster, owned by `app` (or, `heroku: true`, by `heroku_app`: an
 * owner without REPLICATION, as Heroku's credential really is), with the same default privileges for
 * app_worker as appdb. Returns its URL for the owning role.
 */
export async function createSourceDatabase(env: StackEnv, dbName: string, opts: { heroku?: boolean } = {}): Promise<string> {
  const owner = opts.heroku ? 'heroku_app' : 'app';
  await dropDatabase(env.SOURCE_ADMIN_URL, dbName);
  await withClient(env.SOURCE_ADMIN_URL, (c) => c.query(`CREATE DATABASE ${ident(dbName)} OWNER ${ident(owner)}`));
  await withClient(databaseUrl(env.SOURCE_ADMIN_URL, dbName), (c) => applySourceDatabaseGrants(c, dbName, owner));
  return databaseUrl(opts.heroku ? env.SOURCE_HEROKU_DATABASE_URL : env.SOURCE_DATABASE_URL, dbName);
}

/** (Re)create `dbName` on the target cluster, owned by `rds_master`. Returns its URL for `rds_master`. */
export async function createTargetDatabase(env: StackEnv, dbName: string): Promise<string> {
  await dropDatabase(env.TARGET_ADMIN_URL, dbName);
  await withClient(env.TARGET_ADMIN_URL, (c) => c.query(`CREATE DATABASE ${ident(dbName)} OWNER rds_master`));
  return databaseUrl(env.TARGET_DATABASE_URL, dbName);
}
