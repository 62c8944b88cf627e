/**
 * What one pgcopydb run is called and where it keeps its files: the vocabulary every other module
 * of the method shares.
 *
 * The slot (source cluster) and the replication origin (target cluster) are cluster-wide, so both
 * are derived from the migration id (`pgcopydbNames`); the sentinel is always `pgcopydb.sentinel`
 * in the source database (0.10 cannot rename it): one source database carries one pgcopydb
 * migration at a time.
 */
import path from 'node:path';
import { describeUrl } from '../../database/pg';
import { ownSessionsPrefix, shortHash } from '../../names';
import type { TargetBaseline } from '../../database/target-reset';

export interface PgcopydbRun {
  migrationId: string;
  sourceUrl: string;
  targetUrl: string;
  /** Owned by this method: pgcopydb's own --dir is `<workDir>/pgcopydb`, CDC files included. */
  workDir: string;
  tableJobs: number;
  indexJobs: number;
  /**
   * What the target held before the migration (preflight's baseline), restored when a run has to
   * start over. Without it, the first attempt records the target as it found it in the work dir.
   */
  baseline?: TargetBaseline;
}

export interface PgcopydbNames {
  /** Logical replication slot on the source cluster. */
  slotName: string;
  /** Replication origin on the target cluster. */
  origin: string;
  /** application_name of every pgcopydb session (prefix match finds the leftovers of a killed run). */
  applicationName: string;
  /** Schema and table pgcopydb 0.10 creates in the source database (fixed names). */
  sentinel: 'pgcopydb.sentinel';
}

/** Slot and origin names are [a-z0-9_], at most 63 bytes; the hash keeps sanitized ids apart. */
export function pgcopydbNames(migrationId: string): PgcopydbNames {
  const hash = shortHash(migrationId, 8);
  const clean = migrationId
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 40);
  const name = `pgmig_${clean ? `${clean}_` : ''}${hash}`;
  return {
    slotName: name,
    origin: name,
    applicationName: `${ownSessionsPrefix(migrationId)}-pgcopydb`,
    sentinel: 'pgcopydb.sentinel',
  };
}

/** Our own sessions: a name that the prefix of pgcopydb's (terminated on retries) does not match. */
export function adminAppName(run: PgcopydbRun, role: 'admin' | 'status' | 'cli' | 'slot'): string {
  return `${ownSessionsPrefix(run.migrationId)}-pgc-${role}`;
}

/** How messages name a database: never with its credentials. */
export function label(kind: 'source' | 'target', url: string): string {
  return `${kind} (${describeUrl(url)})`;
}

// ---------------------------------------------------------------------------------------------
// The work dir

/** The --dir of the `pgcopydb follow`: its state and the CDC files a resume starts from. */
export function pgcopydbDir(run: PgcopydbRun): string {
  return path.join(run.workDir, 'pgcopydb');
}

/** The prefetched changes: one JSON file per WAL segment, and the SQL the transform made of it. */
export function cdcDir(run: PgcopydbRun): string {
  return path.join(pgcopydbDir(run), 'cdc');
}

/** The --dir of the `pgcopydb clone` (its own: two pgcopydb processes cannot share a work dir). */
export function cloneDir(run: PgcopydbRun): string {
  return path.join(run.workDir, 'clone');
}

/** pgcopydb's output of every attempt of this run (redacted). */
export function logFile(run: PgcopydbRun): string {
  return path.join(run.workDir, 'pgcopydb.log');
}

/** The clone's --filters (pgcopydb's own schema, the sentinel, is never copied). */
export function filtersFile(run: PgcopydbRun): string {
  return path.join(run.workDir, 'filters.ini');
}

/** The target as the first attempt found it, when the caller passed no baseline. */
export function baselineFile(run: PgcopydbRun): string {
  return path.join(run.workDir, 'target-baseline.json');
}

/**
 * Written when a follow failed: its next attempt starts over instead of resuming again. Inside the
 * follow's --dir, so a start-over (which removes that dir) clears it too.
 */
export function followFailedMarker(run: PgcopydbRun): string {
  return path.join(pgcopydbDir(run), 'pgmig-follow-failed');
}
