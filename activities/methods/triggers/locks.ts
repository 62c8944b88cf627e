/**
 * Short, bounded lock windows on the application's tables: installing and removing the capture
 * triggers needs a lock that queues every writer (CREATE TRIGGER: SHARE ROW EXCLUSIVE, DROP TRIGGER:
 * ACCESS EXCLUSIVE). Waiting behind a long transaction would stall the application for as long, so each
 * table gets its own transaction with a lock_timeout, a few tries, and when it stays blocked the caller
 * learns who holds the conflicting lock.
 */
import type { Client } from 'pg';

export type LockMode = 'SHARE ROW EXCLUSIVE' | 'ACCESS EXCLUSIVE';

/** The lock modes each requested mode conflicts with (PostgreSQL's conflict table): ACCESS EXCLUSIVE conflicts with every mode. */
const SHARE_ROW_EXCLUSIVE_CONFLICTS = [
  'RowExclusiveLock',
  'ShareUpdateExclusiveLock',
  'ShareLock',
  'ShareRowExclusiveLock',
  'ExclusiveLock',
  'AccessExclusiveLock',
];
const CONFLICTS: Record<LockMode, string[]> = {
  'SHARE ROW EXCLUSIVE': SHARE_ROW_EXCLUSIVE_CONFLICTS,
  'ACCESS EXCLUSIVE': ['AccessShareLock', 'RowShareLock', ...SHARE_ROW_EXCLUSIVE_CONFLICTS],
};

export interface LockWindowOptions {
  /** lock_timeout of each try (default 2 s). */
  lockTimeoutMs?: number;
  /** Tries before giving up (default 3), with a growing pause between them. */
  attempts?: number;
}

export interface LockHolder {
  pid: number | null;
  mode: string;
  granted: boolean;
  usename: string | null;
  backendType: string | null;
  state: string | null;
  query: string | null;
  xactAgeSeconds: number | null;
}

/** One line naming who holds (or queues ahead for) a conflicting lock, from what pg_stat_activity shows this role. */
export function describeHolder(h: LockHolder): string {
  if (h.pid === null) return `a prepared transaction (${h.mode})`;
  if (h.backendType === 'autovacuum worker') {
    return `autovacuum${/to prevent wraparound/.test(h.query ?? '') ? ' (to prevent wraparound)' : ''} (pid ${h.pid})`;
  }
  const { query: text } = h;
  const hidden = text === null || text === '<insufficient privilege>';
  const parts = [
    h.usename ? `role ${h.usename}` : 'a background process',
    hidden ? 'details hidden from this role (pg_read_all_stats shows them)' : `${h.state ?? 'unknown state'}`,
    h.xactAgeSeconds === null ? null : `transaction open for ${h.xactAgeSeconds} s`,
    `${h.granted ? 'holds' : 'queued for'} ${h.mode}`,
  ].filter((p) => p !== null);
  const query = hidden ? '' : `: ${JSON.stringify(text.slice(0, 100))}`;
  return `pid ${h.pid} (${parts.join(', ')})${query}`;
}

/** Sessions holding or queued for a lock on `rel` that conflicts with `mode` (the granted ones first). */
export async function conflictingHolders(client: Client, rel: string, mode: LockMode): Promise<LockHolder[]> {
  const res = await client.query<LockHolder>(
    `SELECT l.pid, l.mode, l.granted, a.usename::text AS "usename", a.backend_type AS "backendType", a.state, a.query,
            extract(epoch FROM now() - a.xact_start)::int AS "xactAgeSeconds"
       FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'relation' AND l.relation = to_regclass($1)
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND l.pid IS DISTINCT FROM pg_backend_pid() AND l.mode = ANY($2)
      ORDER BY l.granted DESC, a.xact_start NULLS LAST`,
    [rel, CONFLICTS[mode]],
  );
  return res.rows;
}

/**
 * Runs `fn` in its own transaction holding `mode` on `rel` (ONLY: a partitioned table's partitions are
 * separate windows). Returns null once committed, or the holders that kept the lock from being granted
 * on every try (the transaction rolled back: nothing of `fn` remains).
 */
export async function inLockWindow(
  client: Client,
  rel: string,
  mode: LockMode,
  opts: LockWindowOptions,
  fn: () => Promise<void>,
): Promise<LockHolder[] | null> {
  const attempts = opts.attempts ?? 3;
  for (let attempt = 1; ; attempt++) {
    try {
      await client.query('BEGIN');
      await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(opts.lockTimeoutMs ?? 2000))}`);
      await client.query(`LOCK TABLE ONLY ${rel} IN ${mode} MODE`);
      await fn();
      await client.query('COMMIT');
      return null;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      if ((err as { code?: string }).code !== '55P03') throw err;
      // Read while the holders are still there; the last try's list is what the caller reports.
      const holders = await conflictingHolders(client, rel, mode);
      if (attempt >= attempts) return holders;
      await new Promise((r) => setTimeout(r, 250 * attempt));
    }
  }
}
