/** Read-only inventory of one database: what preflight plans with and what compensation compares against. */
import type { Client } from 'pg';
import type { DatabaseInventory, SequenceInventory, TableInventory } from '../../contract/plan';
import { isOwnSchemaSql } from '../methods/cdc/marker';
import { sessionsBeyondTheFreeze } from './freeze';

/** The user's schemas: not the system's, not the migration's own (its marker, its change capture). */
export const USER_SCHEMA = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND NOT ${isOwnSchemaSql('n.nspname')} AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'`;
/** Objects that belong to an extension are the extension's business, not the migration's. */
export const NOT_EXTENSION_MEMBER = (cls: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '${cls}'::regclass AND e.objid = ${oid} AND e.deptype = 'e')`;

export async function listTables(client: Client): Promise<TableInventory[]> {
  const res = await client.query(`
    SELECT n.nspname AS schema, c.relname AS name, greatest(c.reltuples, 0)::bigint AS est,
           pg_total_relation_size(c.oid) AS bytes,
           EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p') AS has_pk,
           EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
                      AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey) k JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k WHERE NOT a.attnotnull)) AS has_unique_key,
           c.relpersistence = 'u' AS unlogged, c.relkind = 'p' AS partitioned,
           c.relispartition AS is_partition, c.relreplident AS replident, pg_get_userbyid(c.relowner) AS owner
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND ${USER_SCHEMA} AND ${NOT_EXTENSION_MEMBER('pg_class', 'c.oid')}
     ORDER BY 1, 2`);
  return res.rows.map((r) => ({
    schema: r.schema,
    name: r.name,
    estimatedRows: Number(r.est),
    bytes: Number(r.bytes),
    hasPrimaryKey: r.has_pk,
    hasUniqueKey: r.has_unique_key,
    unlogged: r.unlogged,
    partitioned: r.partitioned,
    isPartition: r.is_partition,
    replicaIdentity: r.replident,
    owner: r.owner,
  }));
}

export async function listSequences(client: Client): Promise<SequenceInventory[]> {
  const res = await client.query(`
    SELECT n.nspname AS schema, c.relname AS name, s.last_value,
           o.schema AS owner_schema, o.tbl AS owner_table, o.col AS owner_column
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_sequences s ON s.schemaname = n.nspname AND s.sequencename = c.relname
      LEFT JOIN LATERAL (
        SELECT tn.nspname AS schema, t.relname AS tbl, a.attname AS col
          FROM pg_depend d
          JOIN pg_class t ON t.oid = d.refobjid
          JOIN pg_namespace tn ON tn.oid = t.relnamespace
          JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
         WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
           AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
         LIMIT 1) o ON true
     WHERE c.relkind = 'S' AND ${USER_SCHEMA} AND ${NOT_EXTENSION_MEMBER('pg_class', 'c.oid')}
     ORDER BY 1, 2`);
  return res.rows.map((r) => ({
    schema: r.schema,
    name: r.name,
    lastValue: r.last_value === null ? null : Number(r.last_value),
    ...(r.owner_table ? { ownedBy: { schema: r.owner_schema, table: r.owner_table, column: r.owner_column } } : {}),
  }));
}

export async function countUserObjects(client: Client): Promise<number> {
  const res = await client.query(`
    SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND ${USER_SCHEMA} AND ${NOT_EXTENSION_MEMBER('pg_class', 'c.oid')})
         + (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE t.typtype IN ('e', 'd', 'r', 'm') AND ${USER_SCHEMA} AND ${NOT_EXTENSION_MEMBER('pg_type', 't.oid')})
         + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE ${USER_SCHEMA} AND ${NOT_EXTENSION_MEMBER('pg_proc', 'p.oid')}) AS n`);
  return Number(res.rows[0].n);
}

export async function listUserSchemas(client: Client): Promise<string[]> {
  const res = await client.query(`SELECT n.nspname FROM pg_namespace n WHERE ${USER_SCHEMA} ORDER BY 1`);
  return res.rows.map((r) => r.nspname as string);
}

/** Whether the connected role may CREATE SUBSCRIPTION: superuser, pg_create_subscription (16+), or RDS's rds_superuser. */
export const CAN_SUBSCRIBE_SQL = `((SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
  OR (current_setting('server_version_num')::int >= 160000 AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pg_create_subscription') AND pg_has_role(current_user, 'pg_create_subscription', 'MEMBER'))
  OR (EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_superuser') AND pg_has_role(current_user, 'rds_superuser', 'MEMBER')))`;

/** Whether the connected role may SET session_replication_role: superuser, or (15+) GRANT SET ON PARAMETER (RDS's rds_superuser has it). */
async function canSetReplicationRole(client: Client, superuser: boolean, versionNum: number): Promise<boolean> {
  if (superuser) return true;
  if (versionNum < 150000) return false; // has_parameter_privilege is new in 15: before, only superusers may
  return (await client.query<{ ok: boolean }>(`SELECT has_parameter_privilege('session_replication_role', 'SET') AS ok`)).rows[0].ok;
}

/** `sampleWalRateMs`: measure the WAL write rate over that long (the source's write rate, for CDC planning). */
export async function inventoryDatabase(client: Client, opts: { sampleWalRateMs?: number } = {}): Promise<DatabaseInventory> {
  const facts = (
    await client.query(`
      SELECT current_setting('server_version') AS version, current_setting('server_version_num')::int AS version_num,
             current_database() AS db, current_user AS usr,
             (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
             (SELECT pg_has_role(current_user, datdba, 'MEMBER') FROM pg_database WHERE datname = current_database()) AS owns,
             pg_encoding_to_char((SELECT encoding FROM pg_database WHERE datname = current_database())) AS encoding,
             pg_database_size(current_database()) AS size,
             current_setting('wal_level') AS wal_level,
             current_setting('max_connections')::int AS max_connections,
             (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int AS in_use,
             (SELECT count(*) FROM pg_largeobject_metadata)::int AS large_objects,
             pg_total_relation_size('pg_largeobject') AS large_object_bytes,
             (SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database())::int AS prepared,
             (SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user) AS can_replicate,
             ${CAN_SUBSCRIBE_SQL} AS can_subscribe,

             current_setting('max_replication_slots')::int AS max_slots,
             (SELECT count(*) FROM pg_replication_slots)::int AS slots_used,
             current_setting('max_wal_senders')::int AS max_senders,
             (SELECT count(*) FROM pg_stat_replication)::int AS senders_used,
             (SELECT count(*) FILTER (WHERE a.attidentity <> '')::int FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND ${USER_SCHEMA}) AS identity_columns,
             (SELECT count(*) FILTER (WHERE a.attgenerated <> '')::int FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND ${USER_SCHEMA}) AS generated_columns,
             pg_current_wal_lsn()::text AS lsn, clock_timestamp() AS at`)
  ).rows[0];
  // One connection runs one query at a time: sequential, not Promise.all.
  const tables = await listTables(client);
  const sequences = await listSequences(client);
  const extensions = await client.query('SELECT extname FROM pg_extension ORDER BY 1');
  const available = await client.query('SELECT name FROM pg_available_extensions ORDER BY 1');
  const schemas = await listUserSchemas(client);
  const userObjects = await countUserObjects(client);
  const readOnly = await client.query(`
      SELECT r.rolname AS role, d.datname AS database, split_part(cfg, '=', 2) AS value
        FROM pg_db_role_setting s
        LEFT JOIN pg_roles r ON r.oid = s.setrole
        LEFT JOIN pg_database d ON d.oid = s.setdatabase
        CROSS JOIN LATERAL unnest(s.setconfig) AS cfg
       WHERE cfg LIKE 'default_transaction_read_only=%' AND (s.setdatabase = 0 OR d.datname = current_database())`);
  let walBytesPerSecond = 0;
  if (opts.sampleWalRateMs) {
    await new Promise((r) => setTimeout(r, opts.sampleWalRateMs));
    const later = (
      await client.query(
        `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::bigint AS bytes, extract(epoch FROM clock_timestamp() - $2::timestamptz) AS secs`,
        [facts.lsn, facts.at],
      )
    ).rows[0];
    walBytesPerSecond = Math.round(Number(later.bytes) / Math.max(Number(later.secs), 0.001));
  }
  return {
    serverVersion: facts.version,
    serverVersionNum: facts.version_num,
    database: facts.db,
    currentUser: facts.usr,
    isSuperuser: facts.superuser,
    ownsDatabase: facts.owns,
    encoding: facts.encoding,
    sizeBytes: Number(facts.size),
    walLevel: facts.wal_level,
    maxConnections: facts.max_connections,
    connectionsInUse: facts.in_use,
    tables,
    sequences,
    extensions: extensions.rows.map((r) => r.extname),
    availableExtensions: available.rows.map((r) => r.name),
    largeObjects: facts.large_objects,
    largeObjectBytes: Number(facts.large_object_bytes),
    preparedTransactions: facts.prepared,
    schemas,
    userObjects,
    readOnlySettings: readOnly.rows.map((r) => ({ role: r.role, database: r.database, value: r.value })),
    canReplicate: facts.can_replicate,
    canSubscribe: facts.can_subscribe,
    canSetReplicationRole: await canSetReplicationRole(client, facts.superuser, facts.version_num),
    unendableSessions: await sessionsBeyondTheFreeze(client),
    maxReplicationSlots: facts.max_slots,
    replicationSlotsUsed: facts.slots_used,
    maxWalSenders: facts.max_senders,
    walSendersUsed: facts.senders_used,
    walBytesPerSecond,
    identityColumns: facts.identity_columns,
    generatedColumns: facts.generated_columns,
  };
}
