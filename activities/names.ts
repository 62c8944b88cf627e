/**
 * Names derived from a migration's id: its work directory on the worker host and the
 * application_name of its database sessions (how retries, freezes and undos recognise them).
 *
 * Every name that has a length limit goes through `fitName`: a name that fits is kept exactly as
 * it always was; one that would be cut gets a short hash of the full id instead of its tail, so
 * two migrations never share a name.
 */
import os from 'node:os';
import path from 'node:path';
import { fitName } from '../contract/names';

export { fitName, shortHash, type FitOptions } from '../contract/names';

/**
 * This worker's scratch directory: WORKER_SCRATCH_DIR (one per worker process when several share a host),
 * else PGMIG_WORK_DIR, else `<tmp>/pgmig`. Files here are read only by steps that run on this worker (see
 * workflows/host-group.ts), never by another host.
 */
export function scratchRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.WORKER_SCRATCH_DIR || env.PGMIG_WORK_DIR || path.join(os.tmpdir(), 'pgmig');
}

/**
 * What every worker reads and writes alike: PGMIG_WORK_DIR (else `<tmp>/pgmig`), to be put on storage all
 * worker hosts mount at the same path when there are several. Holds only what a step on any worker must
 * find: a rehearsal's staging config sink (an env-file sink, written when the rehearsal starts and
 * swapped by its migration wherever that runs).
 */
export function sharedRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.PGMIG_WORK_DIR || path.join(os.tmpdir(), 'pgmig');
}

export function workDir(migrationId: string): string {
  return path.join(scratchRoot(), migrationId);
}

/** application_name of this migration's sessions: how retries and freezes recognise them. */
export function ownSessionsPrefix(migrationId: string): string {
  // application_name is at most 63 bytes: the prefix that identifies the migration stays within 50, role suffixes follow.
  return fitName(`pgmig-${migrationId}`, 50, { id: migrationId, separator: '-' });
}

export function appName(migrationId: string, role: 'dump' | 'restore' | 'verify' | 'admin' | 'copy'): string {
  return `${ownSessionsPrefix(migrationId)}-${role}`;
}
