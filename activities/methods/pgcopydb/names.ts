/**
 * What one pgcopydb copy is called and where it keeps its files: the vocabulary the method's modules
 * share. The slot and the publication are the `logical` method's (`replicationNames`): from the
 * subscription on, a pgcopydb migration is a logical one.
 */
import path from 'node:path';
import { describeUrl } from '../../database/pg';
import { ownSessionsPrefix } from '../../names';

export interface PgcopydbRun {
  migrationId: string;
  sourceUrl: string;
  targetUrl: string;
  /** Owned by this method on this worker: the clone's --dir, its filters and its log. */
  workDir: string;
  /** pgcopydb's --table-jobs and --index-jobs. */
  tableJobs: number;
  /** pgcopydb's --split-tables-larger-than, in bytes (0: never): tables above it are copied by several jobs in parts. */
  splitTablesLargerThan: number;
}

/** application_name of every pgcopydb session (a retry terminates a previous attempt's by prefix). */
export function pgcopydbAppName(migrationId: string): string {
  return `${ownSessionsPrefix(migrationId)}-pgcopydb`;
}

/** The session that creates the slot and holds its exported snapshot while the copy imports it. */
export function snapshotAppName(migrationId: string): string {
  return `${ownSessionsPrefix(migrationId)}-pgc-slot`;
}

/** How messages name a database: never with its credentials. */
export function label(kind: 'source' | 'target', url: string): string {
  return `${kind} (${describeUrl(url)})`;
}

/** The clone's --dir: pgcopydb's schema dump, its table list (schema.json) and what is done (run/). */
export function cloneDir(run: PgcopydbRun): string {
  return path.join(run.workDir, 'clone');
}

/** pgcopydb's output of every attempt of this run (redacted). */
export function logFile(run: PgcopydbRun): string {
  return path.join(run.workDir, 'pgcopydb.log');
}

/** The clone's --filters: the migration's own marker schema is made on both sides, never copied. */
export function filtersFile(run: PgcopydbRun): string {
  return path.join(run.workDir, 'filters.ini');
}
