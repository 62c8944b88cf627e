/**
 * The interface every replication method implements (`logical`, `pgcopydb`, `dms`; the freeze-copy
 * method `dump-restore` has a single copy step instead). The replication activities the workflow calls
 * (startReplication, waitForReplication, drainReplication, stopSubscription, dropReplicationLeftovers,
 * stopReplication) are the same for every method: they find the method by `args.method` and call it.
 * Adding a method is one folder here plus one entry in `contract/methods.ts`.
 */
import type { InitialCopy } from '../../contract/input';
import type { TableInventory } from '../../contract/plan';
import type { CdcArgs } from '../context';
import type { TargetBaseline } from '../database/target-reset';

/** Progress of replication as the workflow sees it, whatever the method. */
export interface ReplicationState {
  tablesTotal: number;
  tablesReady: number;
  /** logical, pgcopydb: WAL bytes not yet confirmed by the subscriber. */
  lagBytes: number | null;
  /** dms: CloudWatch CDC latency (the larger of source and target), seconds; triggers: age of the oldest change not yet applied. */
  lagSeconds?: number | null;
  /** triggers: captured row changes not yet applied on the target. */
  lagChanges?: number | null;
  /** triggers: the initial copy while it runs (bytes and rows so far, rate, ETA). */
  copy?: CopyProgress;
  caughtUp: boolean;
  /** Present while replication reports errors: what is known of them, for `status.replication`. */
  errors?: ReplicationErrors;
  /** The lag when the step's wait began (the unit of its progress): the workflow passes it back in the next call. */
  lagAtStart?: number;
}

/** Replication errors as a method knows them (the text where it can read it, else where to look). */
export interface ReplicationErrors {
  /** One line each, redacted, row values masked; at most a few. */
  messages: string[];
  /** logical (PostgreSQL 15+): pg_stat_subscription_stats of the subscription. */
  applyErrorCount?: number | null;
  syncErrorCount?: number | null;
  /** logical: whether the subscription's apply worker runs, and its table synchronization workers. */
  workers?: { apply: boolean; tableSync: number };
  /** Since when errors occur without progress (ISO); the step fails once `failAfterMs` passed since then. */
  since?: string;
  failAfterMs?: number;
}

/** How long replication may report errors without progress before the step fails (replication.errorTimeout). */
export const DEFAULT_ERROR_TIMEOUT_MS = 60_000;

/** Progress of a copy for status and heartbeats: what is done of the total, the rate, the time left. */
export interface CopyProgress {
  tablesDone: number;
  tablesTotal: number;
  bytesDone: number;
  /** The source's tables' size at preflight (an estimate: pg_total_relation_size counts indexes too). */
  bytesTotal: number;
  rows: number;
  percent: number;
  bytesPerSecond: number;
  etaSeconds: number | null;
}

/** What a copy has done so far, counted by its engine (the triggers method's COPY, pgcopydb's clone). */
export interface CopyCount {
  tablesDone: number;
  tablesTotal: number;
  rows: number;
  /** Bytes copied so far. */
  bytes: number;
  /** The source tables' size on disk (pg_table_size): an estimate of `bytes` at the end. */
  bytesTotal: number;
}

/** Percent, rate and time left of a copy, for heartbeats and `status.replication.copy`. */
export function copyProgress(p: CopyCount, elapsedMs: number): CopyProgress {
  const bytesPerSecond = elapsedMs > 0 ? Math.round((p.bytes / elapsedMs) * 1000) : 0;
  const fraction = p.tablesDone === p.tablesTotal ? 1 : p.bytesTotal > 0 ? Math.min(0.99, p.bytes / p.bytesTotal) : 0;
  return {
    tablesDone: p.tablesDone,
    tablesTotal: p.tablesTotal,
    bytesDone: p.bytes,
    bytesTotal: p.bytesTotal,
    rows: p.rows,
    percent: Math.round(fraction * 1000) / 10,
    bytesPerSecond,
    etaSeconds: fraction >= 1 ? 0 : bytesPerSecond > 0 ? Math.round(Math.max(0, p.bytesTotal - p.bytes) / bytesPerSecond) : null,
  };
}

export interface WatchArgs extends CdcArgs {
  maxLagBytes: number;
  maxLagSeconds?: number;
  maxLagChanges?: number;
  /** Return after this long even when not caught up, so the workflow can refresh `status`. */
  reportAfterMs: number;
  /** Fail (non-retryable, with the error text) after errors without progress for this long; default 60 s. */
  errorTimeoutMs?: number;
  /** `errors.since` of the previous report: the bound runs on across calls and workers. */
  errorsSince?: string;
  /** The workflow step this wait belongs to, for its progress (`status.progress`); absent in older histories. */
  progressStep?: 'initial-copy' | 'catch-up';
  /** `lagAtStart` of the step's first report: its progress is the part of that lag gone. */
  lagAtStart?: number;
}

export interface StartArgs extends CdcArgs {
  tables: TableInventory[];
  /** replication.tablesWithoutPrimaryKey (absent in histories recorded before the triggers method: refuse). */
  tablesWithoutPrimaryKey?: 'refuse' | 'replica-identity-full';
  /** `pgcopydb`: the tables were copied from the exported snapshot of the migration's slot; stream from it without a copy. */
  initialCopy?: InitialCopy;
}

export interface ReplicationMethod {
  /** Starts copying and streaming changes (the schema is already on the target). Idempotent. */
  start?(args: StartArgs): Promise<{ replication: string[]; tables: number }>;
  /** Copies schema and data and follows changes in one long call, until the drain's marker (triggers). */
  cloneAndFollow?(
    args: CdcArgs & { jobs: number; baseline: TargetBaseline; tables?: TableInventory[] },
  ): Promise<{ mode: string; elapsedMs: number; attempts: number }>;
  /** Polls the copy and the lag (heartbeating) until caught up or `reportAfterMs` passed. */
  watch(args: WatchArgs, beat?: (state: ReplicationState) => void): Promise<ReplicationState>;
  /** Told the source's final position at the drain, before it waits for the marker (methods that stop at a position). */
  atFinalLsn?(args: CdcArgs, lsn: string): Promise<void>;
  /** Inside the write-freeze window: what must stop before the target takes writes. Fast. */
  stopInWindow(args: CdcArgs): Promise<string[]>;
  /**
   * After go-live: what the method created of its own; the slot, publication and markers every method
   * may leave go after it. The compensation is stopInWindow + dropOwn + those, from any point. Idempotent.
   */
  dropOwn(args: CdcArgs): Promise<string[]>;
}

/** Waits between polls of a watch loop. */
export const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
