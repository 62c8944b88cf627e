/** What a change stream can carry, and the replica identity that lets UPDATE/DELETE of keyless tables replicate. */
import type { Client } from 'pg';
import type { TableInventory } from '../../../contract/plan';
import { qname } from '../../database/pg';

/** Tables a publication can carry: not partitions (their roots publish them), not UNLOGGED. */
export function publishableTables(tables: TableInventory[]): TableInventory[] {
  return tables.filter((t) => !t.isPartition && !t.unlogged);
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
