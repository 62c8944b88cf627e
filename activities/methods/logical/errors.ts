/**
 * Errors of a logical replication subscription, as the watch loop surfaces them: the counters of
 * pg_stat_subscription_stats (PostgreSQL 15+), whether the subscription's workers run
 * (pg_stat_subscription), the error text from the server log when the subscriber role may read it
 * (else where to look), and what the target itself shows (rows in a table before its initial copy).
 *
 * A failing apply or table synchronization worker exits and is restarted every
 * wal_retrieve_retry_interval (5 s by default): its error is not a state anywhere but an error count
 * that keeps growing. `ErrorEpisodes` turns that into "errors without progress since T", which fails
 * the step once it lasts `failAfterMs`.
 */
import type { Client } from 'pg';
import { redact } from '../../secrets';
import type { ReplicationErrors } from '../method';

export interface SubscriptionHealth {
  exists: boolean;
  enabled: boolean;
  /** null: the server has no pg_stat_subscription_stats (before PostgreSQL 15). */
  applyErrorCount: number | null;
  syncErrorCount: number | null;
  applyWorker: boolean;
  tableSyncWorkers: number;
}

export async function subscriptionHealth(subscriber: Client, subscription: string): Promise<SubscriptionHealth> {
  const version = Number((await subscriber.query(`SELECT current_setting('server_version_num') AS v`)).rows[0].v);
  const counters =
    version >= 150000
      ? `(SELECT apply_error_count FROM pg_stat_subscription_stats st WHERE st.subid = s.oid)::bigint AS apply_errors,
         (SELECT sync_error_count FROM pg_stat_subscription_stats st WHERE st.subid = s.oid)::bigint AS sync_errors`
      : 'NULL::bigint AS apply_errors, NULL::bigint AS sync_errors';
  const res = await subscriber.query(
    `SELECT s.subenabled AS enabled, ${counters},
            EXISTS (SELECT 1 FROM pg_stat_subscription w WHERE w.subid = s.oid AND w.relid IS NULL AND w.pid IS NOT NULL) AS apply_worker,
            (SELECT count(*) FROM pg_stat_subscription w WHERE w.subid = s.oid AND w.relid IS NOT NULL AND w.pid IS NOT NULL)::int AS sync_workers
       FROM pg_subscription s
      WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [subscription],
  );
  const row = res.rows[0] as
    { enabled: boolean; apply_errors: string | null; sync_errors: string | null; apply_worker: boolean; sync_workers: number } | undefined;
  if (!row) return { exists: false, enabled: false, applyErrorCount: null, syncErrorCount: null, applyWorker: false, tableSyncWorkers: 0 };
  const count = (v: string | null) => (v === null ? (version >= 150000 ? 0 : null) : Number(v));
  return {
    exists: true,
    enabled: row.enabled,
    applyErrorCount: count(row.apply_errors),
    syncErrorCount: count(row.sync_errors),
    applyWorker: row.apply_worker,
    tableSyncWorkers: row.sync_workers,
  };
}

/** Row values out of an error's DETAIL / CONTEXT: they are the customer's data, and the text goes to history. */
export function maskValues(text: string): string {
  return text
    .replace(/=\((?:[^()]|\([^()]*\))*\)/g, '=(…)')
    .replace(/contains \(.*\)/g, 'contains (…)')
    .replace(/(column \S+: )".*"/g, '$1"…"');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The errors of this subscription's workers in a piece of the server log: lines of the processes that
 * logged "logical replication ... worker for subscription <name> has started", up to their exit. The
 * pid is read from the log_line_prefix (`[%p]`, PostgreSQL's default and RDS's); the last few distinct
 * errors, each with its DETAIL (values masked) and CONTEXT.
 */
export function subscriptionErrorsInLog(log: string, subscription: string, max = 3): string[] {
  const started = new RegExp(
    `logical replication (?:apply worker|table synchronization worker|parallel apply worker) for subscription "${escapeRegExp(subscription)}"`,
  );
  const exited = /background worker "logical replication[^"]*" \(PID (\d+)\) exited/;
  const pidOf = (line: string) => /\[(\d+)\]/.exec(line)?.[1];
  const ours = new Set<string>();
  const errors: string[] = [];
  let lastPid: string | undefined;
  for (const line of log.split('\n')) {
    const pid = pidOf(line);
    if (started.test(line) && pid) ours.add(pid);
    const gone = exited.exec(line)?.[1];
    if (gone) ours.delete(gone);
    if (!pid || !ours.has(pid)) continue;
    const m = /\b(ERROR|FATAL|DETAIL|CONTEXT):\s+(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === 'ERROR' || m[1] === 'FATAL') {
      errors.push(m[2].trim());
      lastPid = pid;
    } else if (errors.length && lastPid === pid) {
      errors[errors.length - 1] += ` (${maskValues(m[2].trim())})`;
    }
  }
  const distinct = [...new Set(errors.reverse())].slice(0, max).reverse();
  return distinct.map((e) => redact(e).slice(0, 500));
}

const LOG_TAIL_BYTES = 256 * 1024;

/**
 * The last errors of the subscription's workers from the server log, read through SQL: the log file
 * of the logging collector (pg_current_logfile()), or without it the server's standard error when
 * that is a file. Needs a role that may read server files (superuser, pg_read_server_files); on RDS
 * and Heroku the log is not readable this way: `unreadable` then says why.
 */
export async function readSubscriptionLog(
  subscriber: Client,
  subscription: string,
): Promise<{ errors: string[]; file: string } | { unreadable: string }> {
  let file: string;
  try {
    const current = (await subscriber.query('SELECT pg_current_logfile() AS f')).rows[0].f as string | null;
    file = current ?? '/proc/self/fd/2';
  } catch (err) {
    return { unreadable: `pg_current_logfile(): ${redact((err as Error).message)}` };
  }
  try {
    const res = await subscriber.query(
      `SELECT pg_read_binary_file($1::text, greatest(0, (pg_stat_file($1::text)).size - $2::bigint), $2::bigint) AS tail`,
      [file, LOG_TAIL_BYTES],
    );
    const tail = res.rows[0].tail as Buffer | null;
    if (!tail?.length) return { unreadable: `the server's log (${file}) is not a file this role can read` };
    return { errors: subscriptionErrorsInLog(tail.toString('utf8'), subscription), file };
  } catch (err) {
    return { unreadable: `reading ${file}: ${redact((err as Error).message)}` };
  }
}

/**
 * Tables whose initial copy has not committed yet (state i or d) but that already hold rows on the
 * target: rows nobody should have written there, on which the copy fails with a duplicate key.
 */
export async function tablesWithRowsBeforeCopy(subscriber: Client, subscription: string): Promise<string[]> {
  const rel = await subscriber.query(
    `SELECT r.srrelid::regclass::text AS t FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid
      WHERE s.subname = $1 AND r.srsubstate IN ('i', 'd') ORDER BY 1 LIMIT 20`,
    [subscription],
  );
  const found: string[] = [];
  for (const { t } of rel.rows as { t: string }[]) {
    try {
      // regclass::text is the table's quoted, schema-qualified name as the catalog knows it.
      if ((await subscriber.query(`SELECT EXISTS (SELECT 1 FROM ${t}) AS x`)).rows[0].x) found.push(t);
    } catch {
      // not readable by this role: nothing to say about it
    }
  }
  return found;
}

/** How long without a new error before an episode counts as over (workers retry every wal_retrieve_retry_interval, 5 s by default). */
const QUIET_MS = 30_000;
/** An enabled subscription whose apply worker has not run this long is an error too (no worker slot, say). */
const NO_WORKER_MS = 15_000;

interface Episode {
  since: number;
  lastErrorAt: number;
  /** Tables ready when the episode began or last progressed; -1 until the first sample. */
  ready: number;
  /** The error counters' sum at the last sample. */
  counts: number;
}

/** This worker's episodes between watch calls (the workflow passes `errorsSince` back, so another worker goes on with the same clock). */
const remembered = new Map<string, Episode>();

export interface ErrorVerdict {
  /** Errors without progress right now. */
  active: boolean;
  /** Errors began with this sample: worth reporting at once. */
  began: boolean;
  /** The bound passed. */
  expired: boolean;
  since?: number;
}

/** One subscription's errors over the samples of a watch call. */
export class ErrorEpisodes {
  private episode?: Episode;
  private previousCounts?: number;
  private noWorkerSince?: number;

  constructor(
    private readonly key: string,
    private readonly failAfterMs: number,
    errorsSince?: string,
  ) {
    this.episode = remembered.get(key);
    const since = errorsSince ? Date.parse(errorsSince) : NaN;
    if (!this.episode && Number.isFinite(since)) this.episode = { since, lastErrorAt: Date.now(), ready: -1, counts: -1 };
    if (this.episode && this.episode.counts >= 0) this.previousCounts = this.episode.counts;
  }

  observe(health: SubscriptionHealth, tablesReady: number, now = Date.now()): ErrorVerdict {
    const counts = (health.applyErrorCount ?? 0) + (health.syncErrorCount ?? 0);
    const increased = this.previousCounts !== undefined && counts > this.previousCounts;
    this.previousCounts = counts;
    if (health.exists && health.enabled && !health.applyWorker) this.noWorkerSince ??= now;
    else this.noWorkerSince = undefined;
    const failing =
      increased || !health.exists || !health.enabled || (this.noWorkerSince !== undefined && now - this.noWorkerSince >= NO_WORKER_MS);

    let began = false;
    if (failing && !this.episode) {
      this.episode = { since: now, lastErrorAt: now, ready: tablesReady, counts };
      began = true;
    } else if (this.episode) {
      if (failing) this.episode.lastErrorAt = now;
      if (this.episode.ready < 0) this.episode.ready = tablesReady;
      if (tablesReady > this.episode.ready) Object.assign(this.episode, { since: now, ready: tablesReady }); // progress: the clock starts again
      if (now - this.episode.lastErrorAt > QUIET_MS) this.episode = undefined; // errors stopped
    }
    if (this.episode) {
      this.episode.counts = counts;
      remembered.set(this.key, this.episode);
      if (remembered.size > 200) remembered.delete(remembered.keys().next().value!);
    } else {
      remembered.delete(this.key);
    }
    const episode = this.episode;
    return {
      active: !!episode,
      began,
      expired: !!episode && now - episode.since >= this.failAfterMs,
      ...(episode ? { since: episode.since } : {}),
    };
  }

  forget(): void {
    remembered.delete(this.key);
    this.episode = undefined;
  }
}

/**
 * What is known of the errors, in a few lines: the text from the log where readable (else where to
 * look), tables that held rows before their copy, the counters and the workers.
 */
export async function describeSubscriptionErrors(
  subscriber: Client,
  subscription: string,
  health: SubscriptionHealth,
): Promise<ReplicationErrors> {
  const messages: string[] = [];
  if (!health.exists) {
    messages.push(`subscription ${subscription} does not exist on the target (dropped by someone else?)`);
    return { messages, workers: { apply: false, tableSync: 0 } };
  }
  if (!health.enabled) messages.push(`subscription ${subscription} is disabled on the target`);
  const log = await readSubscriptionLog(subscriber, subscription);
  if ('errors' in log) messages.push(...log.errors);
  if ('unreadable' in log || !log.errors.length) {
    const why = 'unreadable' in log ? log.unreadable : `no error of it in the last ${LOG_TAIL_BYTES / 1024} KB of ${log.file}`;
    messages.push(
      `the error text is in the target server's log (${why}): look for "logical replication" workers of subscription ${subscription} (RDS: the postgresql log in the console or aws rds download-db-log-file-portion)`,
    );
  }
  if (health.syncErrorCount) {
    for (const table of await tablesWithRowsBeforeCopy(subscriber, subscription)) {
      messages.push(
        `target table ${table} already holds rows before its initial copy: rows with the keys of source rows make the copy fail (empty it on the target)`,
      );
    }
  }
  const counters =
    health.applyErrorCount === null
      ? 'error counters need PostgreSQL 15 (pg_stat_subscription_stats)'
      : `${health.applyErrorCount} apply error(s), ${health.syncErrorCount} table synchronization error(s)`;
  messages.push(
    `${counters}; apply worker ${health.applyWorker ? 'running' : 'not running'}, ${health.tableSyncWorkers} table synchronization worker(s)`,
  );
  return {
    messages,
    applyErrorCount: health.applyErrorCount,
    syncErrorCount: health.syncErrorCount,
    workers: { apply: health.applyWorker, tableSync: health.tableSyncWorkers },
  };
}
