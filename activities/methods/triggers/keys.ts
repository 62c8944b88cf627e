/**
 * What the capture records for each table and how the applier finds the row a change belongs to: the
 * primary key; else a unique index on NOT NULL columns (not partial, no expressions); else, only when
 * the policy allows it, the whole row. Usable at preflight to name the tables that would be refused.
 *
 * Partitioned tables are captured as whole trees (the root and every partition): a statement fires the
 * statement-level triggers of the table it names only, so DML naming a partition directly is seen by
 * the partition's triggers, and DML naming the root by the root's (its transition tables hold the rows
 * of every partition). Statement-level triggers with transition tables are allowed on partitions; only
 * row-level ones are not.
 */
import type { Client } from 'pg';
import { qname } from '../../database/pg';

export interface TableRef {
  schema: string;
  name: string;
}

/** replication.tablesWithoutPrimaryKey: refuse such tables, or match their rows whole. */
export type KeylessPolicy = 'refuse' | 'replica-identity-full';

export interface CaptureTable extends TableRef {
  /** qname(schema, name): how the log and the registry name the table. */
  rel: string;
  partitioned: boolean;
  isPartition: boolean;
  key: 'primary-key' | 'unique-index' | 'whole-row';
  /** The key's columns, in index order; empty for whole-row tables. */
  keyColumns: string[];
}

export interface CaptureKeys {
  tables: CaptureTable[];
  /** One line per table that cannot be captured, naming it and why. */
  refused: string[];
}

interface KeyRow {
  schema: string;
  name: string;
  relkind: string | null;
  persistence: string | null;
  is_partition: boolean;
  inherits: boolean;
  key_kind: 'primary-key' | 'unique-index' | null;
  key_columns: string[] | null;
}

/**
 * Listed tables (missing ones come back with relkind NULL), partition trees expanded from their root,
 * and each table's best key: the primary key, else the unique index with the fewest columns.
 */
const KEYS_SQL = `
  WITH listed AS (
    SELECT w.schema, w.name, c.oid
      FROM unnest($1::text[], $2::text[]) AS w(schema, name)
      LEFT JOIN pg_namespace n ON n.nspname = w.schema
      LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w.name
  ), tables AS (
    SELECT DISTINCT coalesce(t.relid, l.oid) AS oid, CASE WHEN l.oid IS NULL THEN l.schema END AS missing_schema,
           CASE WHEN l.oid IS NULL THEN l.name END AS missing_name
      FROM listed l
      LEFT JOIN LATERAL pg_partition_tree(pg_partition_root(l.oid)) t ON true
  )
  SELECT coalesce(n.nspname, t.missing_schema) AS schema, coalesce(c.relname, t.missing_name) AS name,
         c.relkind::text AS relkind, c.relpersistence::text AS persistence, coalesce(c.relispartition, false) AS is_partition,
         coalesce(NOT c.relispartition AND c.relkind <> 'p'
                  AND EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid OR i.inhparent = c.oid), false) AS inherits,
         k.kind AS key_kind, k.columns AS key_columns
    FROM tables t
    LEFT JOIN pg_class c ON c.oid = t.oid
    LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN LATERAL (
      SELECT CASE WHEN i.indisprimary THEN 'primary-key' ELSE 'unique-index' END AS kind,
             array_agg(a.attname::text ORDER BY k.ord) AS columns
        FROM pg_index i
        CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
       WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
         AND k.ord <= i.indnkeyatts
       GROUP BY i.indexrelid, i.indisprimary
      HAVING bool_and(a.attnotnull)
       ORDER BY i.indisprimary DESC, count(*), i.indexrelid::regclass::text
       LIMIT 1
    ) k ON true
   ORDER BY 1, 2`;

/** Each table's key from the catalog, or why it cannot be captured under `policy`. */
export async function captureKeys(client: Client, tables: TableRef[], policy: KeylessPolicy): Promise<CaptureKeys> {
  const rows = (await client.query<KeyRow>(KEYS_SQL, [tables.map((t) => t.schema), tables.map((t) => t.name)])).rows;
  const result: CaptureKeys = { tables: [], refused: [] };
  for (const r of rows) {
    const display = `${r.schema}.${r.name}`;
    const refuse = (why: string) => result.refused.push(`${display}: ${why}`);
    if (r.relkind === null) refuse('does not exist');
    else if (r.relkind !== 'r' && r.relkind !== 'p') refuse(`not a table (relkind ${r.relkind}), its changes cannot be captured`);
    else if (r.persistence === 't') refuse('a temporary table');
    else if (r.inherits) refuse("in an inheritance hierarchy (not partitioning): a parent's statement triggers see its children's rows");
    else if (!r.key_kind && policy === 'refuse') {
      refuse(
        'no primary key and no unique index on NOT NULL columns, so changed rows cannot be found on the other side; add one, or set replication.tablesWithoutPrimaryKey to "replica-identity-full"',
      );
    } else {
      result.tables.push({
        schema: r.schema,
        name: r.name,
        rel: qname(r.schema, r.name),
        partitioned: r.relkind === 'p',
        isPartition: r.is_partition,
        key: r.key_kind ?? 'whole-row',
        keyColumns: r.key_columns ?? [],
      });
    }
  }
  return result;
}
