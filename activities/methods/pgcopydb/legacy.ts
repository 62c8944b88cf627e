/**
 * What a migration begun on the former pgcopydb method (0.10's `clone --follow`, before the patch
 * `pgcopydb-snapshot-copy-then-subscription`) left in the databases: its slot, its replication origin
 * on the target and the `pgcopydb.sentinel` table. Such a run's follow can no longer run here (its
 * activity fails non-retryable); its compensation removes these. Idempotent, on a frozen source too.
 */
import type { Client } from 'pg';
import { shortHash } from '../../names';
import { dropSlot } from '../logical/replication';

/** The slot and origin name the former method derived from the migration id. */
export function legacySlotName(migrationId: string): string {
  const clean = migrationId
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 40);
  return `pgmig_${clean ? `${clean}_` : ''}${shortHash(migrationId, 8)}`;
}

export async function dropLegacyFollow(source: Client, target: Client, migrationId: string): Promise<string[]> {
  const name = legacySlotName(migrationId);
  const dropped: string[] = [];
  await source.query('SET default_transaction_read_only = off');
  if (await dropSlot(source, name)) dropped.push(`pgcopydb 0.10 slot ${name}`);
  if ((await source.query(`SELECT to_regclass('pgcopydb.sentinel') IS NOT NULL AS e`)).rows[0].e) {
    await source.query('DROP TABLE pgcopydb.sentinel');
    await source.query(`DO $$ BEGIN DROP SCHEMA IF EXISTS pgcopydb; EXCEPTION WHEN dependent_objects_still_exist THEN NULL; END $$`);
    dropped.push('pgcopydb.sentinel');
  }
  await target.query('SET default_transaction_read_only = off');
  if ((await target.query('SELECT 1 FROM pg_replication_origin WHERE roname = $1', [name])).rowCount) {
    await target.query('SELECT pg_replication_origin_drop($1)', [name]);
    dropped.push(`pgcopydb 0.10 replication origin ${name}`);
  }
  return dropped;
}
