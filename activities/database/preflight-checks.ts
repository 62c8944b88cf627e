/**
 * Preflight checks beside the inventories, for what the migration will touch later, so that a problem
 * is found before anything changes rather than inside the write freeze: the application roles the
 * freeze makes read-only, and the config sink (`ConfigSinkDriver.check`).
 */
import type { Client } from 'pg';
import type { PreflightChecks } from '../../contract/plan';
import { qi } from './pg';

type AppRoleChecks = Pick<PreflightChecks, 'missingAppRoles' | 'unalterableAppRoles'>;

/**
 * Which of `roles` do not exist on this server, and which the connected role may not give a
 * per-database default (what the freeze does: ALTER ROLE .. IN DATABASE .. SET
 * default_transaction_read_only). The latter is tried in a transaction that is always rolled back, so
 * PostgreSQL itself says whether it would work (superuser, CREATEROLE / ADMIN OPTION, or the role
 * itself, depending on the version) and nothing is changed.
 */
export async function checkAppRoles(client: Client, roles: string[]): Promise<AppRoleChecks> {
  if (!roles.length) return {};
  const found = await client.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])', [roles]);
  const existing = new Set(found.rows.map((r) => r.rolname));
  const missingAppRoles = roles.filter((r) => !existing.has(r));
  const unalterableAppRoles: { role: string; reason: string }[] = [];
  const present = roles.filter((r) => existing.has(r));
  if (present.length) {
    const db = (await client.query<{ db: string }>('SELECT current_database() AS db')).rows[0].db;
    await client.query('BEGIN');
    try {
      await client.query("SET LOCAL lock_timeout = '2s'");
      await client.query("SET LOCAL statement_timeout = '5s'");
      for (const role of present) {
        await client.query('SAVEPOINT pgmig_role_check');
        try {
          await client.query(`ALTER ROLE ${qi(role)} IN DATABASE ${qi(db)} SET default_transaction_read_only = on`);
        } catch (err) {
          // A lock or statement timeout says nothing about the privilege: the freeze will tell.
          const code = (err as { code?: string }).code;
          if (code !== '55P03' && code !== '57014') unalterableAppRoles.push({ role, reason: (err as Error).message });
        }
        await client.query('ROLLBACK TO SAVEPOINT pgmig_role_check');
      }
    } finally {
      await client.query('ROLLBACK');
    }
  }
  return {
    ...(missingAppRoles.length ? { missingAppRoles } : {}),
    ...(unalterableAppRoles.length ? { unalterableAppRoles } : {}),
  };
}
