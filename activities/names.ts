/**
 * Names derived from a migration's id: its work directory on the worker host and the
 * application_name of its database sessions (how retries, freezes and undos recognise them).
 */
import os from 'node:os';
import path from 'node:path';

export function workDir(migrationId: string): string {
  return path.join(process.env.PGMIG_WORK_DIR ?? path.join(os.tmpdir(), 'pgmig'), migrationId);
}

/** application_name of this migration's sessions: how retries and freezes recognise them. */
export function ownSessionsPrefix(migrationId: string): string {
  // application_name is at most 63 bytes; keep the prefix that identifies the migration.
  return `pgmig-${migrationId}`.slice(0, 50);
}

export function appName(migrationId: string, role: 'dump' | 'restore' | 'verify' | 'admin'): string {
  return `${ownSessionsPrefix(migrationId)}-${role}`;
}
