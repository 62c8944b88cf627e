/** Reverse replication: target -> source during the hold, so a rollback after go-live loses nothing. */
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from 'pg';
import type { TableInventory } from '../../../contract/plan';
import { qi, qname } from '../../database/pg';
import { replicationNames } from '../cdc/marker';
import { fitName } from '../../names';
import { publishableTables, restoreReplicaIdentity, setReplicaIdentityFull } from '../cdc/replica-identity';
import { dropSlot } from './replication';

export function reverseNames(migrationId: string) {
  const forward = replicationNames(migrationId);
  const base = fitName(`${forward.publication}_rev`, 50, { id: `${migrationId}/rev`, separator: '_' });
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

/**
 * Tables that would need REPLICA IDENTITY FULL to be published (no primary key, default identity). Partitions
 * too: published through their root, an UPDATE on a keyless partition is still refused without it ("cannot
 * update table ... because it does not have a replica identity and publishes updates", PostgreSQL 15).
 */
function withoutIdentity(tables: TableInventory[]): TableInventory[] {
  return tables.filter(
    (t) => !t.partitioned && !t.unlogged && !t.hasPrimaryKey && (t.replicaIdentity === 'd' || t.replicaIdentity === 'n'),
  );
}
