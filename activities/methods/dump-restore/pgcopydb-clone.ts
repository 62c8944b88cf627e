/**
 * The freeze-copy by `pgcopydb clone` without follow: the schema's pre-data, then table data streamed
 * from source to target by `jobs` COPY processes (tables larger than `splitTablesLargerThan` in key
 * ranges by several at once), indexes and constraints built by `jobs` more as tables complete, then
 * the post-data. Nothing goes through the worker's disk but pgcopydb's small work directory.
 *
 * pgcopydb marks each table's data done in `<dir>/run/tables/<oid>.done` (a table split in parts:
 * `<oid>.<part>.done`, then `<oid>.idx` when its indexes are queued, after its last part); the table's
 * name and size are in `<dir>/schema.json`. Those files feed progress and the verification that
 * overlaps the copy.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Client } from 'pg';
import { pgBinary, runProgram } from '../../processes';
import { connect } from '../../database/pg';

export interface ClonedTable {
  schema: string;
  name: string;
  bytes: number;
}

export interface CloneProgress {
  tablesDone: number;
  tablesTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

export const PGCOPYDB = process.env.PGCOPYDB_BIN || 'pgcopydb';

interface SchemaJson {
  tables?: { oid: number; schema: string; name: string; bytes: number }[];
}

/** Watches pgcopydb's work directory: which tables have their data in, and their bytes. */
class CloneWatcher {
  private tables = new Map<number, ClonedTable>();
  private readonly done = new Set<number>();

  constructor(
    private readonly dir: string,
    private readonly onTableCopied: (t: ClonedTable) => void,
  ) {}

  async poll(): Promise<void> {
    if (!this.tables.size) {
      const file = path.join(this.dir, 'schema.json');
      if (!existsSync(file)) return;
      const parsed = JSON.parse(await readFile(file, 'utf8').catch(() => '{}')) as SchemaJson;
      for (const t of parsed.tables ?? []) this.tables.set(t.oid, { schema: t.schema, name: t.name, bytes: t.bytes });
      if (!this.tables.size) return;
    }
    const runDir = path.join(this.dir, 'run', 'tables');
    const allDone = existsSync(path.join(this.dir, 'run', 'tables.done'));
    const entries = existsSync(runDir) ? await readdir(runDir) : [];
    const finished = new Set(entries.flatMap((e) => (/^\d+\.(done|idx)$/.exec(e) ? [Number(e.split('.')[0])] : [])));
    for (const [oid, table] of this.tables) {
      if (this.done.has(oid) || !(allDone || finished.has(oid))) continue;
      this.done.add(oid);
      this.onTableCopied(table);
    }
  }

  progress(): CloneProgress {
    let bytesDone = 0;
    let bytesTotal = 0;
    for (const [oid, t] of this.tables) {
      bytesTotal += t.bytes;
      if (this.done.has(oid)) bytesDone += t.bytes;
    }
    return { tablesDone: this.done.size, tablesTotal: this.tables.size, bytesDone, bytesTotal };
  }
}

/**
 * The bytes the COPYs running now into the target's database have taken in (pg_stat_progress_copy,
 * PostgreSQL 14+), each at most its table's size: pgcopydb tells a table only once all its data is in,
 * so a large table would otherwise show no progress for most of the copy.
 */
export async function copyBytesInFlight(target: Client, sizes: Map<string, number>): Promise<number> {
  const { rows } = await target.query<{ name: string; bytes: string }>(
    `SELECT format('%s.%s', n.nspname, c.relname) AS name, p.bytes_processed AS bytes
       FROM pg_stat_progress_copy p
       JOIN pg_class c ON c.oid = p.relid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE p.datid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND p.command = 'COPY FROM'`,
  );
  return rows.reduce((sum, r) => sum + Math.min(Number(r.bytes), sizes.get(r.name) ?? Number(r.bytes)), 0);
}

/** The bytes of the tables being copied now that are in already, measured every second on a session of its own. */
class InFlightCopy {
  private bytes = 0;
  private tablesBytes = 0;
  private readonly sizes: Map<string, number>;
  private readonly client: Promise<Client | undefined>;
  private readonly timer: NodeJS.Timeout;
  private measuring = Promise.resolve();

  constructor(targetUrl: string, applicationName: string, tables: { schema: string; name: string; bytes: number }[]) {
    this.sizes = new Map(tables.map((t) => [`${t.schema}.${t.name}`, t.bytes]));
    // Progress is a convenience: a target that refuses this session leaves the count by whole tables.
    this.client = connect(targetUrl, { label: 'target', applicationName }).catch(() => undefined);
    this.timer = setInterval(() => {
      this.measuring = this.measuring.then(() => this.measure());
    }, 1_000);
  }

  private async measure(): Promise<void> {
    const client = await this.client;
    if (client) this.bytes = await copyBytesInFlight(client, this.sizes).catch(() => this.bytes);
  }

  /** The clone's progress with the bytes in flight added (a table just in is not counted twice). */
  add(p: CloneProgress): CloneProgress {
    if (p.bytesDone > this.tablesBytes) this.bytes = 0;
    this.tablesBytes = p.bytesDone;
    const bytesDone = p.bytesDone + this.bytes;
    return { ...p, bytesDone: p.bytesTotal > 0 ? Math.min(p.bytesTotal, bytesDone) : bytesDone };
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.measuring;
    await (await this.client)?.end().catch(() => undefined);
  }
}

/** pgcopydb runs pg_dump / pg_restore from PATH: the newest installed PostgreSQL binaries first. */
function pathWithPgBinaries(): string {
  const dump = pgBinary('pg_dump');
  return [path.isAbsolute(dump) ? path.dirname(dump) : undefined, process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin']
    .filter(Boolean)
    .join(':');
}

const MB = 1024 * 1024;
const UNITS: Record<string, number> = { kB: 1024, MB, GB: 1024 * MB, TB: 1024 * 1024 * MB };

/** "512MB", "2 GB" (copy.splitTablesLargerThan's form) in bytes. */
export function sizeInBytes(size: string): number {
  const m = /^(\d+)\s*(kB|MB|GB|TB)$/.exec(size.trim());
  if (!m) throw new Error(`not a size: ${size}`);
  return Number(m[1]) * UNITS[m[2]];
}

/**
 * The split threshold pgcopydb can use on these tables: 0.10 computes a split table's parts with
 * `pg_table_size('schema.name')` unquoted, which fails on a name that needs quoting (mixed case, say):
 * when such a table is above the threshold, nothing is split (0).
 */
export function splitAbove(thresholdBytes: number, tables: { schema: string; name: string; bytes: number }[]): number {
  const plain = (name: string) => /^[a-z_][a-z0-9_]*$/.test(name);
  const blocked = tables.some((t) => t.bytes > thresholdBytes && !(plain(t.schema) && plain(t.name)));
  return blocked ? 0 : thresholdBytes;
}

export async function pgcopydbClone(args: {
  sourceUrl: string;
  targetUrl: string;
  /** Its work directory (removed and made anew by the caller). */
  dir: string;
  jobs: number;
  /** Tables larger than this many bytes are copied in key ranges by several jobs (when pgcopydb can: see splitAbove). */
  splitTablesLargerThan: number;
  /** The tables to copy, with their size (the plan's inventory): what the split threshold is checked against. */
  tables: { schema: string; name: string; bytes: number }[];
  applicationName: string;
  /** Copy this exported snapshot (the `pgcopydb` method's slot) instead of one pgcopydb takes itself. */
  snapshot?: string;
  /** A pgcopydb filters file (e.g. schemas it must not copy). */
  filters?: string;
  /** Every line pgcopydb logs (for a log file, the current step). */
  onLine?: (line: string) => void;
  signal?: AbortSignal;
  onTableCopied: (t: ClonedTable) => void;
  onProgress: (p: CloneProgress) => void;
}): Promise<CloneProgress> {
  const watcher = new CloneWatcher(args.dir, args.onTableCopied);
  const inFlight = new InFlightCopy(args.targetUrl, args.applicationName, args.tables);
  const report = () => args.onProgress(inFlight.add(watcher.progress()));
  let polling = Promise.resolve();
  const timer = setInterval(() => {
    polling = polling.then(() => watcher.poll().then(report, () => undefined));
  }, 200);
  const jobs = String(args.jobs);
  const split = splitAbove(args.splitTablesLargerThan, args.tables);
  try {
    await runProgram(
      PGCOPYDB,
      [
        'clone',
        '--dir',
        args.dir,
        '--table-jobs',
        jobs,
        '--index-jobs',
        jobs,
        ...(split ? ['--split-tables-larger-than', `${Math.ceil(split / MB)}MB`] : []),
        ...(args.snapshot ? ['--snapshot', args.snapshot] : []),
        ...(args.filters ? ['--filters', args.filters] : []),
        '--no-owner',
        '--no-acl',
      ],
      {
        // Connection strings in the environment (pgcopydb hands its children the URI without the password): none in argv.
        env: {
          PATH: pathWithPgBinaries(),
          HOME: args.dir,
          TMPDIR: args.dir,
          XDG_DATA_HOME: args.dir,
          PGCOPYDB_SOURCE_PGURI: args.sourceUrl,
          PGCOPYDB_TARGET_PGURI: args.targetUrl,
          PGAPPNAME: args.applicationName,
          PGCONNECT_TIMEOUT: '10',
        },
        signal: args.signal,
        onLine: args.onLine,
        group: true,
      },
    );
  } finally {
    clearInterval(timer);
    await polling;
    await inFlight.stop();
  }
  // Whatever the last poll did not see yet: the clone is complete.
  await watcher.poll();
  report();
  return watcher.progress();
}
