/**
 * The interface every replication method implements (`logical`, `pgcopydb`, `dms`; the freeze-copy
 * method `dump-restore` has a single copy step instead). The replication activities the workflow calls
 * (startReplication, waitForReplication, drainReplication, stopSubscription, dropReplicationLeftovers,
 * stopReplication) are the same for every method: they find the method by `args.method` and call it.
 * Adding a method is one folder here plus one entry in `contract/methods.ts`.
 */
import type { TableInventory } from '../../contract/plan';
import type { CdcArgs } from '../context';
import type { TargetBaseline } from '../database/target-reset';

/** Progress of replication as the workflow sees it, whatever the method. */
export interface ReplicationState {
  tablesTotal: number;
  tablesReady: number;
  /** logical, pgcopydb: WAL bytes not yet confirmed by the subscriber. */
  lagBytes: number | null;
  /** dms: CloudWatch CDC latency (the larger of source and target), seconds. */
  lagSeconds?: number | null;
  caughtUp: boolean;
}

export interface WatchArgs extends CdcArgs {
  maxLagBytes: number;
  maxLagSeconds?: number;
  /** Return after this long even when not caught up, so the workflow can refresh `status`. */
  reportAfterMs: number;
}

export interface ReplicationMethod {
  /** Starts copying and streaming changes (the schema is already on the target). Idempotent. */
  start?(args: CdcArgs & { tables: TableInventory[] }): Promise<{ replication: string[]; tables: number }>;
  /** Copies schema and data and follows changes in one long call, until the drain's end position. */
  cloneAndFollow?(
    args: CdcArgs & { jobs: number; baseline: TargetBaseline },
  ): Promise<{ mode: string; elapsedMs: number; attempts: number }>;
  /** Polls the copy and the lag (heartbeating) until caught up or `reportAfterMs` passed. */
  watch(args: WatchArgs): Promise<ReplicationState>;
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
