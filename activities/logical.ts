/**
 * The `logical` method: PostgreSQL's own publish/subscribe, run the way the seeds' runbook does it.
 *
 *   schema (pre-data + primary keys, so the apply worker finds rows by index) -> PUBLICATION on the
 *   source (publish_via_partition_root) -> SUBSCRIPTION on the target with the initial copy ->
 *   every table `ready` -> the rest of the schema (indexes, foreign keys) -> streaming.
 *
 * At cutover the source is frozen, a marker row is committed on the source by the migration's own
 * (writable) session, and the target has drained exactly to the source's final position when that
 * row has been applied: logical replication applies commits in order.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from 'pg';
import type { TableInventory } from '../contract/plan';
import { appName, workDir } from './dump-restore';
import { countUserObjects } from './inventory';
import { libpqEnv, qi, qname, terminateByApplicationName } from './pg';
import { pgBinary, runProgram } from './processes';
import { resetTargetToBaseline, type TargetBaseline } from './target-reset';

export const MARKER_SCHEMA = '_pgmig';

export function replicationNames(migrationId: string) {
  const base = `pgmig_${migrationId.replace(/[^a-z0-9]/g, '_')}`.slice(0, 50);
  const markerTable = `${base}_marker`;
  return { publication: base, subscription: base, slot: base, markerTable, marker: qname(MARKER_SCHEMA, markerTable) };
}

/** Tables a publication can carry: not partitions (their roots publish them), not UNLOGGED. */
export function publishableTables(tables: TableInventory[]): TableInventory[] {
  return tables.filter((t) => !t.isPartition && !t.unlogged);
}

/** Splits `pg_restore -l` output: primary keys / unique constraints before the copy, the rest after. */
export function splitPostData(list: string): { keys: string; rest: string } {
  const entries = list.split('\n').filter((l) => l.trim() && !l.startsWith(';'));
  const isKey = (l: string) => /^\d+; \d+ \d+ CONSTRAINT /.test(l);
  return { keys: entries.filter(isKey).join('\n') + '\n', rest: entries.filter((l) => !isKey(l)).join('\n') + '\n' };
}

interface SchemaArgs {
  migrationId: string;
  sourceUrl: string;
  targetUrl: string;
  baseline: TargetBaseline;
  signal?: AbortSignal;
}

function schemaPaths(migrationId: string) {
  const dir = workDir(migrationId);
  return { dir, dump: path.join(dir, 'schema.dump'), keys: path.join(dir, 'keys.list'), rest: path.join(dir, 'rest.list') };
}

/**
 * Creates the cutover marker on the source, dumps the schema, and restores on the target the
 * pre-data section plus primary keys / unique constraints. A retry resets the target first.
 */
export async function copySchemaBeforeData(source: Client, target: Client, args: SchemaArgs): Promise<{ objects: number }> {
  await ensureMarker(source, args.migrationId);

  await terminateByApplicationName(target, appName(args.migrationId, 'restore'));
  if (
    (await countUserObjects(target)) > 0 ||
    (await target.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [MARKER_SCHEMA])).rowCount
  ) {
    await resetTargetToBaseline(target, args.baseline);
  }
  const p = schemaPaths(args.migrationId);
  await mkdir(p.dir, { recursive: true, mode: 0o700 });
  await runProgram(pgBinary('pg_dump'), ['--format=custom', '--schema-only', `--file=${p.dump}`], {
    env: libpqEnv(args.sourceUrl, appName(args.migrationId, 'dump')),
    signal: args.signal,
  });
  let listing = '';
  await runProgram(pgBinary('pg_restore'), ['--list', '--section=post-data', `--file=${p.keys}.all`, p.dump], {
    env: {},
    signal: args.signal,
  });
  listing = await readFile(`${p.keys}.all`, 'utf8');
  const { keys, rest } = splitPostData(listing);
  await writeFile(p.keys, keys);
  await writeFile(p.rest, rest);
  const restoreEnv = libpqEnv(args.targetUrl, appName(args.migrationId, 'restore'));
  const dbName = restoreEnv.PGDATABASE!;
  await runProgram(
    pgBinary('pg_restore'),
    ['--section=pre-data', '--no-owner', '--no-acl', '--exit-on-error', `--dbname=${dbName}`, p.dump],
    { env: restoreEnv, signal: args.signal },
  );
  await runProgram(
    pgBinary('pg_restore'),
    ['--no-owner', '--no-acl', '--exit-on-error', `--use-list=${p.keys}`, `--dbname=${dbName}`, p.dump],
    { env: restoreEnv, signal: args.signal },
  );
  return { objects: await countUserObjects(target) };
}

/** The cutover marker table (in `_pgmig`), created by the migration's own writable session. */
export async function ensureMarker(client: Client, migrationId: string): Promise<void> {
  await client.query('SET default_transaction_read_only = off');
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${qi(MARKER_SCHEMA)}`);
  await client.query(
    `CREATE TABLE IF NOT EXISTS ${replicationNames(migrationId).marker} (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())`,
  );
}

/** Indexes, foreign keys, triggers: created once the initial copy is done (faster than maintaining them during it). */
export async function copySchemaAfterData(args: SchemaArgs & { jobs: number }): Promise<void> {
  const p = schemaPaths(args.migrationId);
  if (!existsSync(p.dump)) throw new Error(`schema dump ${p.dump} is missing on this worker; the schema step must run again`);
  const restoreEnv = libpqEnv(args.targetUrl, appName(args.migrationId, 'restore'));
  // --clean --if-exists: a retry after a partial run drops and recreates what the first attempt made.
  await runProgram(
    pgBinary('pg_restore'),
    [
      '--no-owner',
      '--no-acl',
      '--clean',
      '--if-exists',
      `--jobs=${args.jobs}`,
      `--use-list=${p.rest}`,
      `--dbname=${restoreEnv.PGDATABASE}`,
      p.dump,
    ],
    { env: restoreEnv, signal: args.signal },
  );
  await rm(p.dir, { recursive: true, force: true });
}

/** Idempotent: an existing publication / subscription of this migration is kept. */
export async function startLogicalReplication(
  source: Client,
  subscriber: Client,
  args: { migrationId: string; sourceUrl: string; tables: TableInventory[] },
): Promise<{ publication: string; subscription: string; tables: number }> {
  const names = replicationNames(args.migrationId);
  await source.query('SET default_transaction_read_only = off');
  const tables = publishableTables(args.tables).map((t) => qname(t.schema, t.name));
  tables.push(names.marker);
  const hasPublication = (await source.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [names.publication])).rowCount;
  if (!hasPublication) {
    await source.query(
      `CREATE PUBLICATION ${qi(names.publication)} FOR TABLE ${tables.join(', ')} WITH (publish_via_partition_root = true)`,
    );
  }
  const hasSubscription = (await subscriber.query('SELECT 1 FROM pg_subscription WHERE subname = $1', [names.subscription])).rowCount;
  if (!hasSubscription) {
    // A slot left by an attempt that died between creating it and creating the subscription.
    await dropSlot(source, names.slot);
    const conninfo = args.sourceUrl.replace(/'/g, "''");
    await subscriber.query(
      `CREATE SUBSCRIPTION ${qi(names.subscription)} CONNECTION '${conninfo}' PUBLICATION ${qi(names.publication)}
       WITH (slot_name = '${names.slot}', copy_data = true, create_slot = true, streaming = on)`,
    );
  }
  return { publication: names.publication, subscription: names.subscription, tables: tables.length };
}

export interface SyncState {
  tablesTotal: number;
  tablesReady: number;
  /** Bytes of WAL the subscriber has not confirmed yet. */
  lagBytes: number | null;
}

export async function syncState(source: Client, subscriber: Client, migrationId: string): Promise<SyncState> {
  const names = replicationNames(migrationId);
  const rel = await subscriber.query(
    `SELECT count(*)::int AS total, count(*) FILTER (WHERE r.srsubstate = 'r')::int AS ready
       FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid WHERE s.subname = $1`,
    [names.subscription],
  );
  return { tablesTotal: rel.rows[0].total, tablesReady: rel.rows[0].ready, lagBytes: await lagBytes(source, names.slot) };
}

/** WAL between the source's current position and what the subscriber confirmed (null: no slot). */
export async function lagBytes(source: Client, slot: string): Promise<number | null> {
  const res = await source.query(
    `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), coalesce(confirmed_flush_lsn, restart_lsn))::bigint AS lag FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  return res.rowCount ? Number(res.rows[0].lag) : null;
}

/**
 * Commits a marker row on the (frozen) source with the migration's own writable session and waits
 * until the target has applied it: then the target holds every commit the source ever acknowledged.
 */
export async function drainToMarker(
  source: Client,
  target: Client,
  migrationId: string,
  timeoutMs: number,
  /** Told the source's final position before the wait (pgcopydb applies its last changes only once it knows its endpos). */
  onFinalLsn?: (lsn: string) => Promise<void>,
): Promise<{ finalLsn: string; waitedMs: number }> {
  const names = replicationNames(migrationId);
  await source.query('SET default_transaction_read_only = off');
  // One cutover per migration: the marker row is id 1, which the verification activity waits for too.
  await source.query(`INSERT INTO ${names.marker} (id) VALUES (1) ON CONFLICT (id) DO NOTHING`);
  const finalLsn = (await source.query('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0].lsn as string;
  await onFinalLsn?.(finalLsn);
  const started = Date.now();
  await waitForMarker(target, migrationId, timeoutMs);
  return { finalLsn, waitedMs: Date.now() - started };
}

/** Resolves once the cutover marker has been applied on the target. */
export async function waitForMarker(target: Client, migrationId: string, timeoutMs: number): Promise<void> {
  const names = replicationNames(migrationId);
  const started = Date.now();
  for (;;) {
    const seen = await target.query(`SELECT 1 FROM ${names.marker} WHERE id = 1`);
    if (seen.rowCount) return;
    if (Date.now() - started > timeoutMs) {
      // Not retried: writes are frozen while we wait, and replication.drainTimeout is the agreed bound.
      throw ApplicationFailure.nonRetryable(
        `the target did not apply the cutover marker within ${timeoutMs} ms (replication.drainTimeout); is replication running?`,
        'DrainTimeout',
      );
    }
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function dropSlot(source: Client, slot: string): Promise<boolean> {
  for (let i = 0; i < 250; i++) {
    const res = await source.query('SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    if (!res.rowCount) return false;
    const pid = res.rows[0].active_pid as number | null;
    if (pid === null) {
      await source.query('SELECT pg_drop_replication_slot($1)', [slot]);
      return true;
    }
    // The subscription is gone (or detached): its walsender has nobody to serve.
    await source.query('SELECT pg_terminate_backend($1)', [pid]);
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`replication slot ${slot} stays active`);
}

/**
 * Ends replication and removes everything it created: subscription (target), slot, publication and
 * marker (source). The forward step at cutover and the compensation alike; idempotent.
 */
export async function dropLogicalReplication(source: Client, subscriber: Client, target: Client, migrationId: string): Promise<string[]> {
  return [...(await dropSubscription(subscriber, migrationId)), ...(await dropReplicationLeftovers(source, target, migrationId))];
}

/** Ends replication on the target (fast: the cutover does only this inside the write-freeze window). */
export async function dropSubscription(subscriber: Client, migrationId: string): Promise<string[]> {
  const names = replicationNames(migrationId);
  if (!(await subscriber.query('SELECT 1 FROM pg_subscription WHERE subname = $1', [names.subscription])).rowCount) return [];
  await subscriber.query(`ALTER SUBSCRIPTION ${qi(names.subscription)} DISABLE`);
  await subscriber.query(`ALTER SUBSCRIPTION ${qi(names.subscription)} SET (slot_name = NONE)`);
  await subscriber.query(`DROP SUBSCRIPTION ${qi(names.subscription)}`);
  return [`subscription ${names.subscription}`];
}

/** The slot, publication and markers: after the subscription is gone (after go-live, outside the window). */
export async function dropReplicationLeftovers(
  source: Client,
  target: Client,
  migrationId: string,
  opts: { keepMarkers?: boolean } = {},
): Promise<string[]> {
  const names = replicationNames(migrationId);
  const dropped: string[] = [];
  await source.query('SET default_transaction_read_only = off');
  if (await dropSlot(source, names.slot)) dropped.push(`slot ${names.slot}`);
  if ((await source.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [names.publication])).rowCount) {
    await source.query(`DROP PUBLICATION ${qi(names.publication)}`);
    dropped.push(`publication ${names.publication}`);
  }
  if (opts.keepMarkers) return dropped;
  for (const [side, client] of [
    ['source', source],
    ['target', target],
  ] as const) {
    await client.query('SET default_transaction_read_only = off');
    const had = await client.query(`SELECT to_regclass($1) IS NOT NULL AS present`, [names.marker]);
    if (had.rows[0].present) {
      await client.query(`DROP TABLE ${names.marker}`);
      dropped.push(`${side} marker`);
    }
    // The schema goes once no other migration's marker is in it.
    await client.query(
      `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '${MARKER_SCHEMA}')
         THEN DROP SCHEMA IF EXISTS ${qi(MARKER_SCHEMA)}; END IF; END $$`,
    );
  }
  return dropped;
}

/** For tables without a primary key: REPLICA IDENTITY FULL on the source so UPDATE/DELETE replicate. */
export async function setReplicaIdentityFull(source: Client, tables: TableInventory[]): Promise<string[]> {
  await source.query('SET default_transaction_read_only = off');
  const changed: string[] = [];
  for (const t of tables) {
    await source.query(`ALTER TABLE ${qname(t.schema, t.name)} REPLICA IDENTITY FULL`);
    changed.push(`${t.schema}.${t.name}`);
  }
  return changed;
}

export async function restoreReplicaIdentity(source: Client, tables: TableInventory[]): Promise<void> {
  await source.query('SET default_transaction_read_only = off');
  for (const t of tables) {
    const mode = t.replicaIdentity === 'n' ? 'NOTHING' : t.replicaIdentity === 'f' ? 'FULL' : 'DEFAULT';
    await source.query(`ALTER TABLE IF EXISTS ${qname(t.schema, t.name)} REPLICA IDENTITY ${mode}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Reverse replication: target -> source during the hold, so a rollback after go-live loses nothing.

export function reverseNames(migrationId: string) {
  const forward = replicationNames(migrationId);
  const base = `${forward.publication.slice(0, 46)}_rev`;
  return { publication: base, subscription: base, slot: base, marker: forward.marker };
}

/**
 * Started inside the cutover window, before the target accepts writes (the markers exist on both
 * sides, owned by the application roles: see ensureMarker): a publication on the target,
 * a subscription on the source without initial copy (both hold the same data at this point), its slot
 * created now so every later write on the target is captured. The source stays read-only for the
 * application; the subscription's own role gets a per-database override so its apply worker can write.
 */
export async function startReverseReplication(
  target: Client,
  sourceSubscriber: Client,
  args: { migrationId: string; targetConnUrl: string; tables: TableInventory[]; appRoles: string[] },
): Promise<string[]> {
  const names = reverseNames(args.migrationId);
  await target.query('SET default_transaction_read_only = off');
  await sourceSubscriber.query('SET default_transaction_read_only = off');
  // Published on the target now: without a replica identity its UPDATE/DELETE would fail for the application.
  await setReplicaIdentityFull(target, withoutIdentity(args.tables));
  if (!(await target.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [names.publication])).rowCount) {
    const tables = publishableTables(args.tables).map((t) => qname(t.schema, t.name));
    tables.push(names.marker);
    await target.query(
      `CREATE PUBLICATION ${qi(names.publication)} FOR TABLE ${tables.join(', ')} WITH (publish_via_partition_root = true)`,
    );
  }
  const who = (await sourceSubscriber.query('SELECT current_database() AS db, current_user AS usr')).rows[0] as { db: string; usr: string };
  if (args.appRoles.includes(who.usr)) {
    throw ApplicationFailure.nonRetryable(
      `source.replicationUrl connects as "${who.usr}", an application role: its write override would undo the freeze; use a separate role`,
      'ReplicationRoleIsAppRole',
    );
  }
  await sourceSubscriber.query(`ALTER ROLE CURRENT_USER IN DATABASE ${qi(who.db)} SET default_transaction_read_only = off`);
  if (!(await sourceSubscriber.query('SELECT 1 FROM pg_subscription WHERE subname = $1', [names.subscription])).rowCount) {
    await dropSlot(target, names.slot);
    const conninfo = args.targetConnUrl.replace(/'/g, "''");
    await sourceSubscriber.query(
      `CREATE SUBSCRIPTION ${qi(names.subscription)} CONNECTION '${conninfo}' PUBLICATION ${qi(names.publication)}
       WITH (slot_name = '${names.slot}', copy_data = false, create_slot = true, streaming = on)`,
    );
  }
  return [`publication ${names.publication} (target)`, `subscription ${names.subscription} (source)`];
}

/** Rollback: the marker committed on the frozen target has reached the source. */
export async function drainReverse(target: Client, source: Client, migrationId: string, timeoutMs: number): Promise<{ waitedMs: number }> {
  const names = reverseNames(migrationId);
  await target.query('SET default_transaction_read_only = off');
  await target.query(`INSERT INTO ${names.marker} (id) VALUES (2) ON CONFLICT (id) DO NOTHING`);
  const started = Date.now();
  for (;;) {
    if ((await source.query(`SELECT 1 FROM ${names.marker} WHERE id = 2`)).rowCount) return { waitedMs: Date.now() - started };
    if (Date.now() - started > timeoutMs) {
      throw ApplicationFailure.nonRetryable(
        `the source did not apply the rollback marker within ${timeoutMs} ms; is reverse replication running?`,
        'DrainTimeout',
      );
    }
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Idempotent: subscription (source), its role override, slot and publication (target). */
export async function stopReverseReplication(
  target: Client,
  sourceSubscriber: Client,
  migrationId: string,
  tables: TableInventory[],
): Promise<string[]> {
  const names = reverseNames(migrationId);
  const dropped: string[] = [];
  await sourceSubscriber.query('SET default_transaction_read_only = off');
  if ((await sourceSubscriber.query('SELECT 1 FROM pg_subscription WHERE subname = $1', [names.subscription])).rowCount) {
    await sourceSubscriber.query(`ALTER SUBSCRIPTION ${qi(names.subscription)} DISABLE`);
    await sourceSubscriber.query(`ALTER SUBSCRIPTION ${qi(names.subscription)} SET (slot_name = NONE)`);
    await sourceSubscriber.query(`DROP SUBSCRIPTION ${qi(names.subscription)}`);
    dropped.push(`subscription ${names.subscription} (source)`);
  }
  const db = (await sourceSubscriber.query('SELECT current_database() AS db')).rows[0].db as string;
  await sourceSubscriber.query(`ALTER ROLE CURRENT_USER IN DATABASE ${qi(db)} RESET default_transaction_read_only`);
  await target.query('SET default_transaction_read_only = off');
  if (await dropSlot(target, names.slot)) dropped.push(`slot ${names.slot} (target)`);
  if ((await target.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [names.publication])).rowCount) {
    await target.query(`DROP PUBLICATION ${qi(names.publication)}`);
    dropped.push(`publication ${names.publication} (target)`);
  }
  await restoreReplicaIdentity(target, withoutIdentity(tables));
  return dropped;
}

/** Tables that would need REPLICA IDENTITY FULL to be published (no primary key, default identity). */
function withoutIdentity(tables: TableInventory[]): TableInventory[] {
  return tables.filter(
    (t) => !t.partitioned && !t.isPartition && !t.unlogged && !t.hasPrimaryKey && (t.replicaIdentity === 'd' || t.replicaIdentity === 'n'),
  );
}
