/**
 * The `logical` method: PostgreSQL's own publish/subscribe, run the way the seeds' runbook does it.
 *
 *   schema (see schema.ts) -> PUBLICATION on the source (publish_via_partition_root) -> SUBSCRIPTION
 *   on the target with the initial copy -> every table `ready` -> indexes -> streaming -> drain to the marker.
 *
 * Or, with the initial copy by pgcopydb (the `pgcopydb` method, or `replication.initialCopy`): publication,
 * slot with an exported snapshot, pgcopydb's parallel copy of that snapshot, then the SUBSCRIPTION
 * streams from the slot without a copy of its own.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from 'pg';
import type { InitialCopy } from '../../../contract/input';
import type { TableInventory } from '../../../contract/plan';
import { qi, qname } from '../../database/pg';
import { dropMarkers, replicationNames } from '../cdc/marker';
import { publishableTables } from '../cdc/replica-identity';

/**
 * The publication of the migration's tables and its marker. Made before any slot it is read through:
 * pgoutput looks the publication up as of the position it decodes. Idempotent.
 */
export async function ensurePublication(source: Client, migrationId: string, tables: TableInventory[]): Promise<{ tables: number }> {
  const names = replicationNames(migrationId);
  await source.query('SET default_transaction_read_only = off');
  const published = publishableTables(tables).map((t) => qname(t.schema, t.name));
  published.push(names.marker);
  const hasPublication = (await source.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [names.publication])).rowCount;
  if (!hasPublication) {
    await source.query(
      `CREATE PUBLICATION ${qi(names.publication)} FOR TABLE ${published.join(', ')} WITH (publish_via_partition_root = true)`,
    );
  }
  return { tables: published.length };
}

/**
 * Idempotent: an existing publication / subscription of this migration is kept.
 * `initialCopy`: `native`, the subscription creates its slot and copies every table (copy_data);
 * `pgcopydb`, the tables were copied from the exported snapshot of the migration's slot (see
 * `pgcopydb/snapshot-copy.ts`): the subscription streams from that slot, without a copy.
 */
export async function startLogicalReplication(
  source: Client,
  subscriber: Client,
  args: { migrationId: string; sourceUrl: string; tables: TableInventory[]; initialCopy?: InitialCopy },
): Promise<{ publication: string; subscription: string; tables: number }> {
  const names = replicationNames(args.migrationId);
  const fromSnapshotCopy = args.initialCopy === 'pgcopydb';
  const { tables } = await ensurePublication(source, args.migrationId, args.tables);
  const hasSubscription = (await subscriber.query('SELECT 1 FROM pg_subscription WHERE subname = $1', [names.subscription])).rowCount;
  if (!hasSubscription) {
    if (fromSnapshotCopy) {
      if (!(await source.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [names.slot])).rowCount) {
        throw ApplicationFailure.nonRetryable(
          `the replication slot ${names.slot} of the snapshot copy is gone: the changes since the copy's snapshot are lost; roll back and start the migration again`,
          'SnapshotSlotLost',
        );
      }
    } else {
      // A slot left by an attempt that died between creating it and creating the subscription.
      await dropSlot(source, names.slot);
    }
    const conninfo = args.sourceUrl.replace(/'/g, "''");
    await subscriber.query(
      `CREATE SUBSCRIPTION ${qi(names.subscription)} CONNECTION '${conninfo}' PUBLICATION ${qi(names.publication)}
       WITH (slot_name = '${names.slot}', copy_data = ${!fromSnapshotCopy}, create_slot = ${!fromSnapshotCopy}, streaming = on)`,
    );
  }
  return { publication: names.publication, subscription: names.subscription, tables };
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

export async function dropSlot(source: Client, slot: string): Promise<boolean> {
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
  return [...dropped, ...(await dropMarkers(source, target, migrationId))];
}
