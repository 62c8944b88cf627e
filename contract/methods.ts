/**
 * What the workflow needs to know about each migration method, and nothing else: the runbook asks
 * these traits instead of branching on a method's name. The activities behind each method live in
 * `activities/methods/<method>/`.
 */
import type { MigrationInput, MigrationMethod } from './input';

export interface MethodTraits {
  /**
   * `freeze-copy`: writes are frozen for the whole copy (the window grows with the database).
   * `replication`: copy and follow changes while the application writes, then a short window that drains them.
   */
  shape: 'freeze-copy' | 'replication';
  /** The workflow copies the schema around the initial copy (pre-data + keys before, indexes after); pgcopydb does it inside its clone. */
  schemaSteps: boolean;
  /**
   * The initial copy is pgcopydb's parallel copy (schema, data, indexes) of the snapshot a new replication
   * slot exported (`copySnapshot`), then the subscription streams from that slot without a copy of its own.
   */
  snapshotCopy?: boolean;
  /**
   * What runs beside the workflow until the drain's end: the copy and the follow in one long activity
   * (`copyAndApply`: the triggers method's snapshot copy, then its apply of the captured changes;
   * `runPgcopydb`: pgcopydb 0.10's clone and follow, in histories recorded before the snapshot copy), and
   * the step the drain waits on for it to end. Absent: the method's replication runs by itself (a
   * subscription, a DMS task).
   */
  follower?: { activity: 'runPgcopydb' | 'copyAndApply'; exitStep: string };
  /** Its drain can outlast a local activity (pgcopydb 0.10's follow applied up to its end position in 10-20 s). */
  slowDrain: boolean;
  /**
   * How the hold carries the target's writes back to the source for a lossless rollback: a subscription
   * on the source (a role that may subscribe, source.replicationUrl), or the method's own capture on the
   * target applied to the source beside the workflow (triggers: Heroku cannot subscribe).
   */
  reverse: 'subscription' | 'capture';
  /** Large objects, which it cannot follow, are copied inside the write-freeze window (their size is in the estimate). */
  largeObjectsInWindow?: boolean;
  /**
   * Its change capture sees UNLOGGED tables (triggers fire on them as on any table). Logical decoding, and so
   * a publication or a DMS task, never does: those methods copy UNLOGGED tables inside the write-freeze window.
   */
  followsUnlogged?: boolean;
  /** Tables without a key get REPLICA IDENTITY FULL on the source for the migration (logical decoding needs it; triggers match rows themselves). */
  replicaIdentity: boolean;
  /** The method's traits in histories recorded before `patch` changed them: a running migration keeps its commands. */
  before?: { patch: string; traits: MethodTraits };
}

/** The workflow copies the schema around a replication that carries every logged table's changes. */
const SCHEMA_THEN_SUBSCRIPTION: MethodTraits = {
  shape: 'replication',
  schemaSteps: true,
  slowDrain: false,
  replicaIdentity: true,
  reverse: 'subscription',
  largeObjectsInWindow: true,
};

export const METHOD_TRAITS: Record<MigrationMethod, MethodTraits> = {
  'dump-restore': { shape: 'freeze-copy', schemaSteps: false, slowDrain: false, replicaIdentity: false, reverse: 'subscription' },
  logical: SCHEMA_THEN_SUBSCRIPTION,
  /** From pgcopydb's copy of a slot's snapshot on, exactly a logical migration (sub-second window). */
  pgcopydb: {
    shape: 'replication',
    schemaSteps: false,
    snapshotCopy: true,
    slowDrain: false,
    replicaIdentity: true,
    reverse: 'subscription',
    largeObjectsInWindow: true,
    before: {
      // Until then: pgcopydb 0.10's clone --follow beside the workflow, ended by its sentinel's endpos.
      patch: 'pgcopydb-snapshot-copy-then-subscription',
      traits: {
        shape: 'replication',
        schemaSteps: false,
        follower: { activity: 'runPgcopydb', exitStep: 'pgcopydb-exit' },
        slowDrain: true,
        replicaIdentity: true,
        reverse: 'subscription',
      },
    },
  },
  /** The same path as logical: AWS DMS moves the rows instead of a subscription. */
  dms: SCHEMA_THEN_SUBSCRIPTION,
  triggers: {
    shape: 'replication',
    schemaSteps: true,
    follower: { activity: 'copyAndApply', exitStep: 'apply-exit' },
    slowDrain: false,
    replicaIdentity: false,
    reverse: 'capture',
    largeObjectsInWindow: true,
    followsUnlogged: true,
  },
};

/**
 * The traits a migration runs with: its method's, with the initial copy by pgcopydb when the input asks
 * for it (`replication.initialCopy`), or those of before a change when the history was recorded before
 * it (`patched` is the workflow's; it is asked only for methods that changed).
 */
export function methodTraits(
  method: MigrationMethod,
  input: Pick<MigrationInput, 'replication'>,
  patched: (id: string) => boolean,
): MethodTraits {
  const traits = METHOD_TRAITS[method];
  if (traits.before && !patched(traits.before.patch)) return traits.before.traits;
  if (traits.shape === 'replication' && !traits.snapshotCopy && input.replication.initialCopy === 'pgcopydb') {
    return { ...traits, schemaSteps: false, snapshotCopy: true };
  }
  return traits;
}
