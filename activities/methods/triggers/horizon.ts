/**
 * The apply's safe horizon: the highest log id H such that no log row with id <= H can still appear.
 *
 * Why it is needed: a log id is a sequence value taken when a statement ends, in its transaction. For
 * any one row, id order is commit order (a second writer of the row waits for the first to commit
 * before its own statement can end, and only then takes its ids). But across rows it is not: a
 * transaction may hold uncommitted log rows with ids below committed ones. A watermark at the highest
 * committed id would pass over them, and when they commit they would be lost. xid ranges (xmin
 * horizons) do not order rows across batches either, so the horizon is made of ids alone:
 *
 * 1. Read M = the sequence's last value. Every id <= M has been handed out.
 * 2. Then (a separate statement) read H = the transactions holding ROW EXCLUSIVE on the log
 *    (pg_locks, by virtual transaction id). A transaction that took an id took that lock before (an
 *    INSERT locks its table before it computes its defaults) and keeps it until it ends, so every
 *    transaction that may still commit ids <= M is in H. A transaction releases its locks only after
 *    it left the proc array, so one that is no longer in H is visible, or gone, to every later snapshot.
 * 3. Once every member of H has ended, no row with id <= M can appear any more: M is final.
 *
 * Only writers of the log count, unlike pg_current_snapshot()'s xip list, which holds every
 * transaction with an xid: a long transaction that never wrote a captured table does not hold the apply
 * back. One that did holds it back (at the last final M before its first captured write) until it ends;
 * rows applied before it stay applied, nothing after it is applied out of order.
 *
 * Observations not yet final are kept and re-checked at each batch (a holder that disappeared has
 * ended: virtual transaction ids are not reused), so the horizon advances as soon as their writers end.
 */
import type { Client } from 'pg';
import type { CaptureNames } from './names';

export interface LogObservation {
  /** The last id handed out (M). */
  lastId: bigint;
  /** Virtual transaction ids of the transactions holding a write lock on the log, read after M. */
  holders: string[];
}

/** M, then the log's writers: two statements, in this order. */
export async function observeLog(capture: Client, names: CaptureNames): Promise<LogObservation> {
  const seq = await capture.query<{ last: string }>(
    `SELECT (CASE WHEN is_called THEN last_value ELSE last_value - 1 END)::text AS last FROM ${names.logSequence}`,
  );
  const locks = await capture.query<{ holders: string[] }>(
    `SELECT coalesce(array_agg(DISTINCT virtualtransaction), '{}') AS holders
       FROM pg_locks
      WHERE locktype = 'relation' AND relation = to_regclass($1) AND mode = 'RowExclusiveLock'
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [names.log],
  );
  return { lastId: BigInt(seq.rows[0].last), holders: locks.rows[0].holders };
}

/** Observations bounded to this many: beyond it the two oldest merge (sound: final only when both are). */
const MAX_PENDING = 64;

/** The horizon across batches of one applier (pure: fed with observations). */
export class SafeHorizon {
  private pending: { lastId: bigint; holders: Set<string> }[] = [];
  private final = 0n;

  /** Folds in an observation; returns the highest id known final (0 before any). */
  observe(o: LogObservation): bigint {
    const now = new Set(o.holders);
    for (const p of this.pending) for (const h of p.holders) if (!now.has(h)) p.holders.delete(h);
    // An M not above the newest one known adds nothing: the intersection above refined it already.
    if (o.lastId > (this.pending.at(-1)?.lastId ?? this.final)) this.pending.push({ lastId: o.lastId, holders: now });
    // The newest observation whose writers have all ended is final, and makes every earlier one irrelevant.
    for (let i = this.pending.length - 1; i >= 0; i--) {
      if (this.pending[i].holders.size) continue;
      this.final = this.pending[i].lastId;
      this.pending = this.pending.slice(i + 1);
      break;
    }
    if (this.pending.length > MAX_PENDING) {
      const [a, b] = this.pending.splice(0, 2);
      this.pending.unshift({ lastId: b.lastId, holders: new Set([...a.holders, ...b.holders]) });
    }
    return this.final;
  }

  /** Whether an observed id is waiting for its writers to end. */
  get waiting(): boolean {
    return this.pending.length > 0;
  }
}
