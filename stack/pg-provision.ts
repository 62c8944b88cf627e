/**
 * What each cluster holds once it runs, so that the pair behaves like the real services: the
 * source like Heroku Postgres (an owning, non-superuser `app` role with REPLICATION, `app_worker`,
 * wal2json; and `heroku_app`, an owner without REPLICATION as Heroku's credential really is), the target like Amazon RDS (`rds_master` in `rds_superuser`, no superuser). Every
 * step is idempotent: it runs on each `up`, on new and existing clusters alike.
 */
import { Client } from 'pg';
import type { ClusterKind, ClusterLayout } from './config';
import type { Secrets } from './secrets';
import { ADMIN_SESSION_OPTIONS, ident, lit } from './sql';

/** Superuser connection over the owner-only unix socket (trust): works before any password is set. */
async function socketClient(c: ClusterLayout, port: number, database = 'postgres'): Promise<Client> {
  const client = new Client({ host: c.sock, port, user: 'postgres', database, password: '', options: ADMIN_SESSION_OPTIONS });
  await client.connect();
  return client;
}

async function ensureRole(client: Client, role: string, attrs: string, password: string): Promise<void> {
  const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
  if (exists.rowCount === 0) await client.query(`CREATE ROLE ${ident(role)}`);
  await client.query(`ALTER ROLE ${ident(role)} WITH ${attrs} PASSWORD ${lit(password)}`);
}

async function ensureDatabase(client: Client, db: string, owner: string): Promise<void> {
  const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [db]);
  if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${ident(db)} OWNER ${ident(owner)}`);
}

/** Heroku-like defaults inside one source database: app_worker gets DML on whatever its owner creates. */
export async function applySourceDatabaseGrants(client: Client, db: string, owner = 'app'): Promise<void> {
  await client.query(`GRANT CONNECT ON DATABASE ${ident(db)} TO app_worker`);
  await client.query(`ALTER DEFAULT PRIVILEGES FOR ROLE ${ident(owner)} GRANT USAGE ON SCHEMAS TO app_worker`);
  await client.query(`ALTER DEFAULT PRIVILEGES FOR ROLE ${ident(owner)} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO app_worker`);
  await client.query(`ALTER DEFAULT PRIVILEGES FOR ROLE ${ident(owner)} GRANT USAGE, SELECT ON SEQUENCES TO app_worker`);
}

/**
 * Heroku Postgres offers wal2json (pgcopydb --follow decodes with it). PostgreSQL 15.19+ only lets
 * REPLICATION users pick output plugins listed in `output_plugin_libraries` (pgoutput and
 * test_decoding by default): add wal2json when the server has that setting and lacks it.
 */
async function allowWal2jsonOutputPlugin(admin: Client): Promise<void> {
  const r = await admin.query<{ setting: string }>("SELECT setting FROM pg_settings WHERE name = 'output_plugin_libraries'");
  const current = r.rows[0]?.setting;
  if (current === undefined) return; // older server: every loadable plugin is allowed
  const plugins = current
    .split(',')
    .map((p) => p.trim().replace(/^"|"$/g, ''))
    .filter(Boolean);
  if (plugins.includes('wal2json')) return;
  // A list GUC: each element its own literal (one quoted string would become one element).
  await admin.query(`ALTER SYSTEM SET output_plugin_libraries = ${[...plugins, 'wal2json'].map(lit).join(', ')}`);
  await admin.query('SELECT pg_reload_conf()');
}

/** The replication progress functions of PostgreSQL 15 (superuser-only by default). */
const REPLICATION_ORIGIN_FUNCTIONS = [
  'pg_replication_origin_create(text)',
  'pg_replication_origin_drop(text)',
  'pg_replication_origin_oid(text)',
  'pg_replication_origin_session_setup(text)',
  'pg_replication_origin_session_reset()',
  'pg_replication_origin_session_is_setup()',
  'pg_replication_origin_session_progress(boolean)',
  'pg_replication_origin_xact_setup(pg_lsn, timestamp with time zone)',
  'pg_replication_origin_xact_reset()',
  'pg_replication_origin_advance(text, pg_lsn)',
  'pg_replication_origin_progress(text, boolean)',
];

async function bootstrapSource(c: ClusterLayout, port: number, s: Secrets): Promise<void> {
  const admin = await socketClient(c, port);
  try {
    await admin.query(`ALTER ROLE postgres WITH PASSWORD ${lit(s.sourceAdmin)}`);
    // Heroku's default credential: owns the database, not a superuser; REPLICATION for logical replication.
    await ensureRole(admin, 'app', 'LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE REPLICATION', s.app);
    await ensureRole(admin, 'app_worker', 'LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION', s.appWorker);
    // What Heroku really gives: it owns its database and tables, nothing more (no slot, no subscription).
    await ensureRole(admin, 'heroku_app', 'LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION', s.herokuApp);
    await ensureDatabase(admin, 'appdb', 'app');
    await allowWal2jsonOutputPlugin(admin);
  } finally {
    await admin.end();
  }
  const db = await socketClient(c, port, 'appdb');
  try {
    await applySourceDatabaseGrants(db, 'appdb');
  } finally {
    await db.end();
  }
}

async function bootstrapTarget(c: ClusterLayout, port: number, s: Secrets): Promise<void> {
  const admin = await socketClient(c, port);
  try {
    await admin.query(`ALTER ROLE postgres WITH PASSWORD ${lit(s.targetAdmin)}`);
    // Like RDS: the master user is not a superuser but a member of rds_superuser.
    const r = await admin.query("SELECT 1 FROM pg_roles WHERE rolname = 'rds_superuser'");
    if (r.rowCount === 0) await admin.query('CREATE ROLE rds_superuser NOLOGIN');
    await admin.query(
      'GRANT pg_monitor, pg_signal_backend, pg_read_all_settings, pg_read_all_stats, pg_stat_scan_tables, pg_checkpoint TO rds_superuser',
    );
    await ensureRole(admin, 'rds_master', 'LOGIN NOSUPERUSER CREATEDB CREATEROLE NOREPLICATION', s.rdsMaster);
    await admin.query('GRANT rds_superuser TO rds_master WITH ADMIN OPTION');
    // RDS lets rds_superuser set session_replication_role (appliers such as DMS and the triggers method use it).
    await admin.query('GRANT SET ON PARAMETER session_replication_role TO rds_superuser');
    await ensureDatabase(admin, 'appdb', 'rds_master');
  } finally {
    await admin.end();
  }
  await grantReplicationOrigins(c, port);
}

/**
 * Like RDS, rds_superuser may track replication progress (pgcopydb's follow applies changes under a
 * replication origin). Function ACLs are per database: granted in template1 they reach every new
 * database. Done once per cluster (a comment on the role says so), because a session in template1
 * makes a concurrent CREATE DATABASE fail.
 */
async function grantReplicationOrigins(c: ClusterLayout, port: number): Promise<void> {
  const marker = 'pg-cutover: EXECUTE on pg_replication_origin_* granted in template1, postgres, appdb';
  const admin = await socketClient(c, port);
  try {
    const r = await admin.query<{ d: string | null }>(
      "SELECT shobj_description(oid, 'pg_authid') AS d FROM pg_roles WHERE rolname = 'rds_superuser'",
    );
    if (r.rows[0]?.d === marker) return;
    for (const dbName of ['template1', 'postgres', 'appdb']) {
      const db = await socketClient(c, port, dbName);
      try {
        await db.query(`GRANT EXECUTE ON FUNCTION ${REPLICATION_ORIGIN_FUNCTIONS.join(', ')} TO rds_superuser`);
      } finally {
        await db.end();
      }
    }
    await admin.query(`COMMENT ON ROLE rds_superuser IS ${lit(marker)}`);
  } finally {
    await admin.end();
  }
}

/** Roles, databases and grants of a running cluster, as its kind's real service has them. */
export async function provisionCluster(kind: ClusterKind, c: ClusterLayout, port: number, secrets: Secrets): Promise<void> {
  if (kind === 'source') await bootstrapSource(c, port, secrets);
  else await bootstrapTarget(c, port, secrets);
}
