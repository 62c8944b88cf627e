/**
 * The cutover marker every replication method drains through: at cutover the source is frozen, a
 * marker row is committed on it by the migration's own (writable) session, and the target has every
 * commit the source ever acknowledged once that row has been applied (commits apply in order).
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from 'pg';
import { qi, qname } from '../../database/pg';
import { fitName } from '../../names';

export const MARKER_SCHEMA = '_pgmig';
/**
 * The migration's own schemas, never part of the user's data: `_pgmig` (markers, apply state) and
 * `_pgmig_*` (the triggers method's change capture). `column` names a schema name in SQL.
 */
export const isOwnSchemaSql = (column: string) => `(${column} = '${MARKER_SCHEMA}' OR ${column} LIKE '\\_pgmig\\_%')`;
/** The same as a pg_dump --exclude-schema pattern (the marker schema itself is dumped: the target needs its table). */
export const CAPTURE_SCHEMA_PATTERN = '_pgmig_*';

/** Publication, subscription and slot names: [a-z0-9_], within 50 characters (a hash of the id when longer). */
export function replicationNames(migrationId: string) {
  const base = fitName(`pgmig_${migrationId.replace(/[^a-z0-9]/g, '_')}`, 50, { id: migrationId, separator: '_' });
  const markerTable = `${base}_marker`;
  return { publication: base, subscription: base, slot: base, markerTable, marker: qname(MARKER_SCHEMA, markerTable) };
}

/** The cutover marker table (in `_pgmig`), created by the migration's own writable session. */
export async function ensureMarker(client: Client, migrationId: string): Promise<void> {
  await client.query('SET default_transaction_read_only = off');
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${qi(MARKER_SCHEMA)}`);
  await client.query(
    `CREATE TABLE IF NOT EXISTS ${replicationNames(migrationId).marker} (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())`,
  );
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

/** The cutover markers on both sides, and their schema once no other migration's marker is in it. */
export async function dropMarkers(source: Client, target: Client, migrationId: string): Promise<string[]> {
  const names = replicationNames(migrationId);
  const dropped: string[] = [];
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
