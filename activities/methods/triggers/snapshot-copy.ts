/**
 * The initial copy, after the capture is installed and committed: every table from one exported
 * snapshot, `jobs` tables at a time, largest first. The snapshot (pg_current_snapshot()) is recorded in
 * the apply state before the first row is copied: the apply skips the log rows of transactions visible
 * in it, whose changes the copy has, and applies all others, so each change arrives exactly once.
 */
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { escapeLiteral, type Client } from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { connect, qi, qname } from '../../database/pg';
import { enterReplicaMode, type ApplyMode } from './apply-mode';
import type { TableRef } from './keys';
import type { CaptureDirection } from './names';
import { markCopied, recordCopyStart } from './state';

export interface SnapshotCopyProgress {
  tablesDone: number;
  tablesTotal: number;
  rows: number;
  /** Bytes of COPY data streamed so far. */
  bytes: number;
  /** The source tables' size on disk (pg_table_size): an estimate of `bytes` at the end. */
  bytesTotal: number;
}

export interface SnapshotCopyOptions {
  migrationId: string;
  direction: CaptureDirection;
  /** The capture side (copied from) and the apply side (copied to). */
  sourceUrl: string;
  targetUrl: string;
  /** application_name of the copy's sessions. */
  applicationName: string;
  /** The captured tables: their leaves are copied (plain tables and partitions; partitioned tables hold no rows). */
  tables: TableRef[];
  /** Tables copied at once: one session on each side per job. */
  jobs: number;
  signal?: AbortSignal;
  /** At most every `progressEveryMs` (default 1 s) and after each table. */
  onProgress?: (p: SnapshotCopyProgress) => void;
  progressEveryMs?: number;
}

export interface SnapshotCopyResult extends SnapshotCopyProgress {
  snapshot: string;
  elapsedMs: number;
  /** Whether the target sessions could skip triggers and foreign-key checks (session_replication_role). */
  mode: ApplyMode;
}

export interface Leaf {
  rel: string;
  columns: string[];
  bytes: number;
}

/** The leaves of the listed tables' partition trees, their non-generated columns, largest first. */
export async function leavesOf(client: Client, tables: TableRef[]): Promise<Leaf[]> {
  const res = await client.query<{ schema: string; name: string; columns: string[]; bytes: string }>(
    `WITH listed AS (
       SELECT c.oid FROM unnest($1::text[], $2::text[]) AS w(schema, name)
         JOIN pg_namespace n ON n.nspname = w.schema JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w.name
     ), leaves AS (
       SELECT DISTINCT coalesce(t.relid, l.oid) AS oid
         FROM listed l LEFT JOIN LATERAL pg_partition_tree(l.oid) t ON true
        WHERE coalesce(t.isleaf, true)
     )
     SELECT n.nspname AS schema, c.relname AS name, pg_table_size(c.oid) AS bytes,
            array_agg(a.attname::text ORDER BY a.attnum) AS columns
       FROM leaves JOIN pg_class c ON c.oid = leaves.oid AND c.relkind = 'r' JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
      GROUP BY 1, 2, 3 ORDER BY 3 DESC, 1, 2`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
  );
  return res.rows.map((r) => ({ rel: qname(r.schema, r.name), columns: r.columns, bytes: Number(r.bytes) }));
}

/** Empties the target tables in one statement (a foreign key between two of them would refuse one at a time). */
export async function emptyTargets(target: Client, leaves: Leaf[]): Promise<void> {
  try {
    await target.query(`TRUNCATE ${leaves.map((l) => `ONLY ${l.rel}`).join(', ')}`);
  } catch (err) {
    // A foreign key from a table outside the copy: delete instead (slow only when a retried copy left rows).
    if ((err as { code?: string }).code !== '0A000') throw err;
    for (const l of [...leaves].reverse()) await target.query(`DELETE FROM ONLY ${l.rel}`);
  }
}

/** Counts the bytes and rows (text COPY ends each row with a newline, and escapes those in values) passing through. */
function meter(counters: { bytes: number; rows: number }, onChunk: () => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      counters.bytes += chunk.length;
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) counters.rows++;
      onChunk();
      done(null, chunk);
    },
  });
}

/**
 * Streams one table's rows (its non-generated columns) from `source` into `target` by COPY, in the
 * callers' transactions, counting bytes and rows into `counters`.
 */
export async function copyLeaf(
  source: Client,
  target: Client,
  leaf: Leaf,
  counters: { bytes: number; rows: number },
  opts: { onChunk?: () => void; signal?: AbortSignal } = {},
): Promise<void> {
  const cols = leaf.columns.map(qi).join(', ');
  await pipeline(
    source.query(copyTo(`COPY (SELECT ${cols} FROM ONLY ${leaf.rel}) TO STDOUT`)),
    meter(counters, opts.onChunk ?? (() => undefined)),
    target.query(copyFrom(`COPY ${leaf.rel} (${cols}) FROM STDIN`)),
    { signal: opts.signal },
  );
}

/**
 * Copies every table from one snapshot of the source. The first source session exports the snapshot
 * and stays open until the others imported it (it copies too); each target table is emptied first, so
 * a retried copy starts clean, and each is loaded in its own transaction. Aborting (`signal`) or any
 * failure ends every session: nothing half-loaded is committed.
 */
export async function snapshotCopy(opts: SnapshotCopyOptions): Promise<SnapshotCopyResult> {
  opts.signal?.throwIfAborted();
  const started = Date.now();
  const sessions: Client[] = [];
  const stop = new AbortController();
  const abort = () => stop.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', abort, { once: true });
  const open = async (url: string, label: string) => {
    const client = await connect(url, { label, applicationName: opts.applicationName });
    sessions.push(client);
    // A role's statement or idle timeouts must not cut a copy of a large table.
    await client.query('SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0');
    return client;
  };
  try {
    const pairs: { source: Client; target: Client }[] = [];
    while (pairs.length < Math.max(1, opts.jobs)) {
      pairs.push({ source: await open(opts.sourceUrl, 'source'), target: await open(opts.targetUrl, 'target') });
    }
    const [exporter, ...importers] = pairs.map((p) => p.source);
    await exporter.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const snap = (
      await exporter.query<{ name: string; snapshot: string }>(
        `SELECT pg_export_snapshot() AS name, pg_current_snapshot()::text AS snapshot`,
      )
    ).rows[0];
    await recordCopyStart(pairs[0].target, opts.migrationId, opts.direction, snap.snapshot);
    for (const source of importers) {
      await source.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await source.query(`SET TRANSACTION SNAPSHOT ${escapeLiteral(snap.name)}`);
    }
    const leaves = await leavesOf(exporter, opts.tables);
    const modes = await Promise.all(pairs.map((p) => enterReplicaMode(p.target)));
    await emptyTargets(pairs[0].target, leaves);

    const progress: SnapshotCopyProgress = {
      tablesDone: 0,
      tablesTotal: leaves.length,
      rows: 0,
      bytes: 0,
      bytesTotal: leaves.reduce((n, l) => n + l.bytes, 0),
    };
    let reported = 0;
    const report = (force: boolean) => {
      if (!force && Date.now() - reported < (opts.progressEveryMs ?? 1000)) return;
      reported = Date.now();
      opts.onProgress?.({ ...progress });
    };
    const queue = [...leaves];
    const worker = async ({ source, target }: { source: Client; target: Client }) => {
      for (let leaf = queue.shift(); leaf; leaf = queue.shift()) {
        await target.query('BEGIN');
        await copyLeaf(source, target, leaf, progress, { onChunk: () => report(false), signal: stop.signal });
        await target.query('COMMIT');
        progress.tablesDone++;
        report(true);
      }
    };
    await Promise.all(
      pairs.map((p) =>
        worker(p).catch((err: unknown) => {
          stop.abort(err);
          throw err;
        }),
      ),
    );
    for (const { source } of pairs) await source.query('COMMIT');
    await markCopied(pairs[0].target, opts.migrationId, opts.direction);
    return {
      ...progress,
      snapshot: snap.snapshot,
      elapsedMs: Date.now() - started,
      mode: modes.every((m) => m === 'replica') ? 'replica' : 'origin',
    };
  } catch (err) {
    // The first failure, not the aborts it caused in the other workers.
    throw stop.signal.aborted ? stop.signal.reason : err;
  } finally {
    opts.signal?.removeEventListener('abort', abort);
    await Promise.all(sessions.map((c) => c.end().catch(() => undefined)));
  }
}
