/**
 * What the workflow needs to know about each migration method, and nothing else: the runbook asks
 * these traits instead of branching on a method's name. The activities behind each method live in
 * `activities/methods/<method>/`.
 */
import type { MigrationMethod } from './input';

export interface MethodTraits {
  /**
   * `freeze-copy`: writes are frozen for the whole copy (the window grows with the database).
   * `replication`: copy and follow changes while the application writes, then a short window that drains them.
   */
  shape: 'freeze-copy' | 'replication';
  /** The workflow copies the schema around the initial copy (pre-data + keys before, indexes after); pgcopydb does it inside its clone. */
  schemaSteps: boolean;
  /**
   * What runs beside the workflow until the drain's end: the copy and the follow in one long activity
   * (`runPgcopydb`: pgcopydb's clone and follow; `copyAndApply`: the triggers method's snapshot copy, then
   * its apply of the captured changes), and the step the drain waits on for it to end. Absent: the method's
   * replication runs by itself (a subscription, a DMS task).
   */
  follower?: { activity: 'runPgcopydb' | 'copyAndApply'; exitStep: string };
  /** Its drain can outlast a local activity (pgcopydb 0.10 applies up to its end position in 10-20 s). */
  slowDrain: boolean;
  /**
   * How the hold carries the target's writes back to the source for a lossless rollback: a subscription
   * on the source (a role that may subscribe, source.replicationUrl), or the method's own capture on the
   * target applied to the source beside the workflow (triggers: Heroku cannot subscribe).
   */
  reverse: 'subscription' | 'capture';
  /** Large objects, which it cannot follow, are copied inside the write-freeze window (their size is in the estimate). */
  largeObjectsInWindow?: boolean;
  /** Tables without a key get REPLICA IDENTITY FULL on the source for the migration (logical decoding needs it; triggers match rows themselves). */
  replicaIdentity: boolean;
}

export const METHOD_TRAITS: Record<MigrationMethod, MethodTraits> = {
  'dump-restore': { shape: 'freeze-copy', schemaSteps: false, slowDrain: false, replicaIdentity: false, reverse: 'subscription' },
  logical: { shape: 'replication', schemaSteps: true, slowDrain: false, replicaIdentity: true, reverse: 'subscription' },
  pgcopydb: {
    shape: 'replication',
    schemaSteps: false,
    follower: { activity: 'runPgcopydb', exitStep: 'pgcopydb-exit' },
    slowDrain: true,
    replicaIdentity: true,
    reverse: 'subscription',
  },
  dms: { shape: 'replication', schemaSteps: true, slowDrain: false, replicaIdentity: true, reverse: 'subscription' },
  triggers: {
    shape: 'replication',
    schemaSteps: true,
    follower: { activity: 'copyAndApply', exitStep: 'apply-exit' },
    slowDrain: false,
    replicaIdentity: false,
    reverse: 'capture',
    largeObjectsInWindow: true,
  },
};
