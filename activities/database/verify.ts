/**
 * Verification of the copy: same tables and columns, exact row count and an order-independent
 * checksum per table on both sides, sequences ahead of their columns, and the rest of the catalog
 * (catalog.ts) object by object.
 *
 * The checksum is the sum of a 64-bit hash of each row (see fingerprint.ts).
 */
import type { Client } from 'pg';
import type { TableInventory } from '../../contract/plan';
import { isOwnSchemaSql } from '../methods/cdc/marker';
import { compareCatalogs, type CatalogOptions } from './catalog';
import { roleMapper, standsForDatabaseOwnership } from './grant-sql';
import { readPrivilegeCatalog } from './privileges';
import { rowHashes, tableFingerprint, tableKey, type Fingerprint } from './fingerprint';
import { checkSequencesAhead, type SequenceCheck } from './sequences';

export interface TableVerification {
  table: string;
  sourceRows: number;
  targetRows: number;
  sourceChecksum: string;
  targetChecksum: string;
  match: boolean;
}

export interface VerificationReport {
  ok: boolean;
  tablesChecked: number;
  rowsChecked: number;
  mismatches: TableVerification[];
  schemaDifferences: string[];
  sequenceProblems: SequenceCheck[];
  /**
   * The catalog compared object by object (catalog.ts), the first MAX_CATALOG_DIFFERENCES of them.
   * They count toward `ok` only where the method blocks on them (dump-restore); CDC methods report
   * them. Absent from reports made before the catalog was compared.
   */
  catalogDifferences?: string[];
  /** How long reading and comparing both catalogs took. */
  catalogMs?: number;
}

/** Enough to act on, and a report (in history, in the status query) that stays small. */
const MAX_CATALOG_DIFFERENCES = 100;

/** The first MAX_CATALOG_DIFFERENCES, and how many more there are. */
export function reportedDifferences(differences: string[]): string[] {
  const more = differences.length - MAX_CATALOG_DIFFERENCES;
  return [...differences.slice(0, MAX_CATALOG_DIFFERENCES), ...(more > 0 ? [`… and ${more} more catalog differences`] : [])];
}

export interface CatalogComparison {
  differences: string[];
  ms: number;
  /** Differences make the verification fail. */
  blocking: boolean;
}

/** Both catalogs compared on one session per side, timed. */
export async function catalogComparison(
  source: Client,
  target: Client,
  options: CatalogOptions,
  blocking: boolean,
): Promise<CatalogComparison> {
  const started = Date.now();
  let differences = await compareCatalogs(source, target, options);
  if (options.privileges) {
    // What the roles replay grants in place of owning the database is no difference.
    const expected = standsForDatabaseOwnership(await readPrivilegeCatalog(source), roleMapper(options.roleMap ?? {}));
    differences = differences.filter((d) => !expected(d));
  }
  return { differences, ms: Date.now() - started, blocking };
}

/** Tables and columns, without the migration's own marker schema and pgcopydb's sentinel schema. */
export async function columnSignature(client: Client): Promise<Map<string, string>> {
  const res = await client.query(`
    SELECT table_schema || '.' || table_name AS tbl,
           string_agg(column_name || ' ' || data_type || CASE WHEN is_nullable = 'NO' THEN ' not null' ELSE '' END, ', ' ORDER BY ordinal_position) AS cols
      FROM information_schema.columns
     WHERE table_schema NOT IN ('pg_catalog', 'information_schema', 'pgcopydb') AND NOT ${isOwnSchemaSql('table_schema')}
     GROUP BY 1`);
  return new Map(res.rows.map((r) => [r.tbl as string, r.cols as string]));
}

export function diffSchemas(source: Map<string, string>, target: Map<string, string>): string[] {
  const problems: string[] = [];
  for (const [table, cols] of source) {
    const other = target.get(table);
    if (other === undefined) problems.push(`${table}: missing on target`);
    else if (other !== cols) problems.push(`${table}: columns differ (source: ${cols}; target: ${other})`);
  }
  for (const table of target.keys()) if (!source.has(table)) problems.push(`${table}: exists only on target`);
  return problems;
}

/** One table's fingerprints side by side. */
export function compareTable(t: Pick<TableInventory, 'schema' | 'name'>, s: Fingerprint, d: Fingerprint): TableVerification {
  return {
    table: `${t.schema}.${t.name}`,
    sourceRows: s.rows,
    targetRows: d.rows,
    sourceChecksum: s.checksum,
    targetChecksum: d.checksum,
    match: s.rows === d.rows && s.checksum === d.checksum,
  };
}

/** Partitioned parents hold no rows of their own; their leaves are checked one by one. */
export function tablesWithRows(tables: TableInventory[]): TableInventory[] {
  return tables.filter((t) => !t.partitioned);
}

export function verificationReport(
  results: TableVerification[],
  schemaDifferences: string[],
  sequenceProblems: SequenceCheck[] = [],
  catalog?: CatalogComparison,
): VerificationReport {
  const mismatches = results.filter((r) => !r.match);
  const catalogProblems = catalog?.blocking ? catalog.differences.length : 0;
  return {
    ok: mismatches.length === 0 && schemaDifferences.length === 0 && sequenceProblems.length === 0 && catalogProblems === 0,
    tablesChecked: results.length,
    rowsChecked: results.reduce((n, r) => n + r.targetRows, 0),
    mismatches,
    schemaDifferences,
    sequenceProblems,
    ...(catalog ? { catalogDifferences: reportedDifferences(catalog.differences), catalogMs: catalog.ms } : {}),
  };
}

/**
 * Checks tables with `concurrency` table pairs in flight; `sourcePool` and `targetPool` each hold
 * that many connections. `onTable` reports progress.
 */
export async function verifyCopy(args: {
  sourcePool: Client[];
  targetPool: Client[];
  tables: TableInventory[];
  onTable: (done: number, total: number) => void;
  /** Off for the freeze-point snapshots: sequences are not MVCC, and the reconcile step checks its own work. */
  checkSequences?: boolean;
  /** The catalog comparison, made by the caller on these sessions. */
  catalog?: CatalogComparison;
}): Promise<VerificationReport> {
  const [sourceSig, targetSig] = await Promise.all([columnSignature(args.sourcePool[0]), columnSignature(args.targetPool[0])]);
  const schemaDifferences = diffSchemas(sourceSig, targetSig);
  const queue = tablesWithRows(args.tables);
  const hashes = await rowHashes(args.sourcePool[0], args.targetPool[0], queue);
  const results: TableVerification[] = [];
  let next = 0;
  const worker = async (source: Client, target: Client) => {
    while (next < queue.length) {
      const t = queue[next++];
      const hash = hashes.get(tableKey(t.schema, t.name));
      const [s, d] = await Promise.all([
        tableFingerprint(source, t.schema, t.name, hash),
        tableFingerprint(target, t.schema, t.name, hash),
      ]);
      results.push(compareTable(t, s, d));
      args.onTable(results.length, queue.length);
    }
  };
  await Promise.all(args.sourcePool.map((s, i) => worker(s, args.targetPool[i])));
  const sequenceProblems = args.checkSequences === false ? [] : (await checkSequencesAhead(args.targetPool[0])).filter((c) => !c.ok);
  return verificationReport(results, schemaDifferences, sequenceProblems, args.catalog);
}

/**
 * Opens `size` connections per side inside one REPEATABLE READ snapshot each (exported by the
 * first connection, imported by the others): what the checksums then read is the state at this
 * moment, whatever the application writes afterwards.
 */
export async function openSnapshotPool(open: () => Promise<Client>, size: number): Promise<Client[]> {
  const first = await open();
  const pool = [first];
  try {
    await first.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const snapshot = (await first.query('SELECT pg_export_snapshot() AS s')).rows[0].s as string;
    for (let i = 1; i < size; i++) {
      const c = await open();
      pool.push(c);
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await c.query(`SET TRANSACTION SNAPSHOT '${snapshot}'`);
    }
  } catch (err) {
    // Those that opened are closed: a session left open would hold its snapshot (and the worker's sockets).
    await Promise.all(pool.map((c) => c.end().catch(() => undefined)));
    throw err;
  }
  return pool;
}

/** DDL during replication: the target's tables and columns are still the source's of when replication began. */
export async function schemaChanges(source: Client, target: Client): Promise<string[]> {
  const [s, t] = await Promise.all([columnSignature(source), columnSignature(target)]);
  return diffSchemas(s, t);
}
