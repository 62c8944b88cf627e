/**
 * The apply side's statements for one table, built from its catalog and the key the capture recorded.
 * Rows arrive as json text (never parsed in Node: a numeric would lose digits) and are expanded with
 * json_populate_recordset into the apply side's own row type, so each value goes through the column's
 * input function as if it were typed in.
 */
import type { Client } from 'pg';
import { qi } from '../../database/pg';
import type { CaptureTable } from './keys';

export interface TargetTable {
  rel: string;
  partitioned: boolean;
  key: CaptureTable['key'];
  keyColumns: string[];
  /** Columns a row is written with: not generated (the apply side computes those itself). */
  columns: string[];
  generated: string[];
  /** GENERATED ALWAYS identity columns: written with OVERRIDING SYSTEM VALUE, never updated in place. */
  identityAlways: string[];
  /** A non-deferrable unique index on exactly the key columns: upsert with ON CONFLICT; else delete, then insert. */
  onConflict: boolean;
}

/** Reads `rel`'s columns and indexes on the apply side; `key` is what the capture recorded. */
export async function loadTargetTable(apply: Client, rel: string, key: CaptureTable['key'], keyColumns: string[]): Promise<TargetTable> {
  const res = await apply.query<{
    partitioned: boolean;
    columns: string[];
    generated: string[];
    identity_always: string[];
    on_conflict: boolean;
  }>(
    `SELECT c.relkind = 'p' AS partitioned,
            coalesce(array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attgenerated = ''), '{}') AS columns,
            coalesce(array_agg(a.attname::text) FILTER (WHERE a.attgenerated <> ''), '{}') AS generated,
            coalesce(array_agg(a.attname::text) FILTER (WHERE a.attidentity = 'a'), '{}') AS identity_always,
            EXISTS (SELECT 1 FROM pg_index i
                     WHERE i.indrelid = c.oid AND i.indisunique AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL
                       AND (SELECT array_agg(k.attname::text ORDER BY k.attname::text) FROM pg_attribute k
                             WHERE k.attrelid = c.oid AND k.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1]))
                           = (SELECT array_agg(x ORDER BY x) FROM unnest($2::text[]) x)) AS on_conflict
       FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE c.oid = to_regclass($1)
      GROUP BY c.oid, c.relkind`,
    [rel, keyColumns],
  );
  const r = res.rows[0];
  if (!r) throw new Error(`table ${rel} does not exist on the apply side`);
  return {
    rel,
    partitioned: r.partitioned,
    key,
    keyColumns,
    columns: r.columns,
    generated: r.generated,
    identityAlways: r.identity_always,
    onConflict: key !== 'whole-row' && r.on_conflict,
  };
}

const list = (columns: string[], prefix = '') => columns.map((c) => prefix + qi(c)).join(', ');
/** The rows of parameter $1 (json text) as rows of the table's own type. */
const rowsOf = (t: TargetTable) => `json_populate_recordset(NULL::${t.rel}, $1::json)`;

function insertRows(t: TargetTable): string {
  const insert = `INSERT INTO ${t.rel} (${list(t.columns)}) OVERRIDING SYSTEM VALUE SELECT ${list(t.columns)} FROM ${rowsOf(t)}`;
  if (!t.onConflict) return insert;
  // An identity ALWAYS column can only be updated to DEFAULT: it keeps its value (it is the key in practice).
  const set = t.columns.filter((c) => !t.keyColumns.includes(c) && !t.identityAlways.includes(c));
  return `${insert} ON CONFLICT (${list(t.keyColumns)}) ${set.length ? `DO UPDATE SET ${set.map((c) => `${qi(c)} = EXCLUDED.${qi(c)}`).join(', ')}` : 'DO NOTHING'}`;
}

/** Deletes the rows whose keys are in $1 (rows or keys alike: only the key columns are read). */
function deleteKeys(t: TargetTable): string {
  return `DELETE FROM ${t.rel} AS t USING ${rowsOf(t)} AS k WHERE ${t.keyColumns.map((c) => `t.${qi(c)} = k.${qi(c)}`).join(' AND ')}`;
}

/**
 * Whole-row tables: deletes one row per row of $1 (two equal rows in $1, two rows go), matching on
 * every column but the generated ones ($2), compared as jsonb of the table's own type; rows are told
 * apart by (tableoid, ctid), ctid alone repeating across partitions.
 */
function deleteWholeRows(t: TargetTable): string {
  return `DELETE FROM ${t.rel} AS t WHERE (t.tableoid, t.ctid) IN (
    SELECT m.tableoid, m.ctid FROM (
      SELECT x.tableoid, x.ctid, o.n, row_number() OVER (PARTITION BY o.r ORDER BY x.tableoid, x.ctid) AS i
        FROM (SELECT to_jsonb(r) - $2::text[] AS r, count(*) AS n FROM ${rowsOf(t)} AS r GROUP BY 1) o
        JOIN ${t.rel} AS x ON to_jsonb(x) - $2::text[] = o.r) m
     WHERE m.i <= m.n)`;
}

export interface Statement {
  sql: string;
  /** Which json of the log row is $1: its old keys (old rows) or its new rows. */
  rows: 'old' | 'new';
  withGenerated?: boolean;
}

/** What a log row of `op` runs, in order (TRUNCATE is planned across log rows, see `truncateSql`). */
export function changeStatements(t: TargetTable, op: 'I' | 'U' | 'D', hasOld: boolean): Statement[] {
  const remove: Statement =
    t.key === 'whole-row' ? { sql: deleteWholeRows(t), rows: 'old', withGenerated: true } : { sql: deleteKeys(t), rows: 'old' };
  // Without an index ON CONFLICT can use (e.g. a deferrable key), an upsert is a delete of the new rows' keys, then an insert.
  const write: Statement[] =
    t.key !== 'whole-row' && !t.onConflict
      ? [
          { sql: deleteKeys(t), rows: 'new' },
          { sql: insertRows(t), rows: 'new' },
        ]
      : [{ sql: insertRows(t), rows: 'new' }];
  if (op === 'D') return [remove];
  if (op === 'I') return write;
  return hasOld ? [remove, ...write] : write;
}

/** One TRUNCATE for the tables a source statement truncated together (a partitioned table cannot be truncated ONLY). */
export function truncateSql(tables: TargetTable[]): string {
  return `TRUNCATE ${tables.map((t) => (t.partitioned ? t.rel : `ONLY ${t.rel}`)).join(', ')}`;
}

/** The fallback when the apply side refuses that TRUNCATE (a foreign key from a table not truncated with them). */
export function truncateFallbackSql(tables: TargetTable[]): string[] {
  return [...tables].reverse().map((t) => `DELETE FROM ${t.partitioned ? t.rel : `ONLY ${t.rel}`}`);
}

export interface LogRow {
  id: string;
  xid: string;
  rel: string;
  op: 'I' | 'U' | 'D' | 'T';
  nRows: number;
}

/** Log rows in id order, in steps: each row alone, but consecutive TRUNCATE rows of one transaction together. */
export function planSteps<R extends LogRow>(rows: R[]): R[][] {
  const steps: R[][] = [];
  for (const row of rows) {
    const last = steps.at(-1);
    if (row.op === 'T' && last && last[0].op === 'T' && last[0].xid === row.xid) last.push(row);
    else steps.push([row]);
  }
  return steps;
}
