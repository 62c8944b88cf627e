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
  /** The copy and the follow are one long activity running beside the workflow until the drain's end position. */
  followsBeside: boolean;
  /** Its drain can outlast a local activity (pgcopydb 0.10 applies up to its end position in 10-20 s). */
  slowDrain: boolean;
}

export const METHOD_TRAITS: Record<MigrationMethod, MethodTraits> = {
  'dump-restore': { shape: 'freeze-copy', schemaSteps: false, followsBeside: false, slowDrain: false },
  logical: { shape: 'replication', schemaSteps: true, followsBeside: false, slowDrain: false },
  pgcopydb: { shape: 'replication', schemaSteps: false, followsBeside: true, slowDrain: true },
  dms: { shape: 'replication', schemaSteps: true, followsBeside: false, slowDrain: false },
};
