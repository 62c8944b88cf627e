/**
 * The source's roles, ownership and privileges on the target, done by the target's master user (RDS:
 * CREATEROLE, member of rds_superuser, no superuser): missing roles created (the application's LOGIN,
 * the others NOLOGIN) and marked as the migration's, the master made a member of each role that must
 * own something (ALTER ... OWNER TO needs it), then the replay (grant-sql.ts) in one transaction.
 * Its undo gives the objects back to the master (so the target reset drops them) and drops the
 * roles this migration created.
 */
import type { Client } from 'pg';
import { escapeLiteral } from 'pg';
import { objectAclStatements, ownerStatement, replayPlan, roleMapper } from './grant-sql';
import { qi } from './pg';
import { readPrivilegeCatalog, type CatalogObject } from './privileges';

/** PostgreSQL's own roles (pg_database_owner, pg_read_all_data...) exist everywhere and are never created nor joined. */
export const isPredefinedRole = (role: string) => role.startsWith('pg_');

/** The mark on a role the migration created: how its undo tells them from roles that were there before. */
export const createdByMark = (migrationId: string) => `pg-cutover: created by migration ${migrationId}`;

/** Statements per round trip: a database with many large objects has one ALTER per object. */
const BATCH = 200;

/**
 * Creates the roles missing on the target (returned); `loginRole` (the application's) may log in, even
 * if it existed as NOLOGIN.
 */
export async function ensureRoles(client: Client, roles: string[], loginRole: string | undefined, migrationId: string): Promise<string[]> {
  const wanted = [...new Set([...roles, ...(loginRole ? [loginRole] : [])])].filter((r) => !isPredefinedRole(r));
  const found = await client.query<{ rolname: string; rolcanlogin: boolean }>(
    'SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY($1::text[])',
    [wanted],
  );
  const existing = new Map(found.rows.map((r) => [r.rolname, r.rolcanlogin]));
  const created: string[] = [];
  for (const role of wanted.filter((r) => !existing.has(r))) {
    try {
      await client.query(`CREATE ROLE ${qi(role)} ${role === loginRole ? 'LOGIN' : 'NOLOGIN'}`);
    } catch (err) {
      // Another migration on this server created it meanwhile: it is theirs, used as found.
      if ((err as { code?: string }).code === '42710') continue;
      throw err;
    }
    await client.query(`COMMENT ON ROLE ${qi(role)} IS ${escapeLiteral(createdByMark(migrationId))}`);
    created.push(role);
  }
  if (loginRole && existing.get(loginRole) === false) await client.query(`ALTER ROLE ${qi(loginRole)} LOGIN`);
  return created;
}

/** ALTER ... OWNER TO, ALTER DEFAULT PRIVILEGES FOR ROLE and DROP OWNED need the master in the role. */
export async function joinRoles(client: Client, roles: string[]): Promise<void> {
  for (const role of roles.filter((r) => !isPredefinedRole(r))) {
    const member = await client.query<{ m: boolean }>(`SELECT pg_has_role(current_user, $1, 'MEMBER') AS m`, [role]);
    if (member.rows[0].m) continue;
    await client.query(`GRANT ${qi(role)} TO CURRENT_USER`);
  }
}

async function runBatched(client: Client, statements: string[]): Promise<void> {
  for (let i = 0; i < statements.length; i += BATCH) await client.query(statements.slice(i, i + BATCH).join(';\n'));
}

/**
 * The CREATE privilege ALTER ... OWNER TO requires of the new owner (on the object's schema; on the
 * database for a schema's owner), where the role lacks it: granted for the changes and revoked after,
 * unless the replayed privileges grant it again.
 */
async function missingCreate(
  client: Client,
  objects: CatalogObject[],
  map: (r: string) => string,
): Promise<{ grant: string[]; revoke: string[] }> {
  const pairs = new Map<string, { on: string; role: string; check: string; args: string[] }>();
  for (const o of objects) {
    if (o.followsTable || isPredefinedRole(map(o.owner))) continue;
    const role = map(o.owner);
    if (o.kind === 'schema') {
      pairs.set(`db\u0000${role}`, {
        on: 'DATABASE',
        role,
        check: `has_database_privilege($1, current_database(), 'CREATE')`,
        args: [role],
      });
    } else if (o.schema !== null) {
      pairs.set(`${o.schema}\u0000${role}`, {
        on: `SCHEMA ${qi(o.schema)}`,
        role,
        check: `has_schema_privilege($1, (SELECT oid FROM pg_namespace WHERE nspname = $2), 'CREATE')`,
        args: [role, o.schema],
      });
    }
  }
  const grant: string[] = [];
  const revoke: string[] = [];
  const database = (await client.query<{ d: string }>('SELECT current_database() AS d')).rows[0].d;
  for (const p of pairs.values()) {
    const ok = (await client.query<{ ok: boolean }>(`SELECT ${p.check} AS ok`, p.args)).rows[0].ok;
    if (ok) continue;
    const on = p.on === 'DATABASE' ? `DATABASE ${qi(database)}` : p.on;
    grant.push(`GRANT CREATE ON ${on} TO ${qi(p.role)}`);
    revoke.push(`REVOKE CREATE ON ${on} FROM ${qi(p.role)}`);
  }
  return { grant, revoke };
}

export interface ReplayResult {
  created: string[];
  statements: number;
  /** Every target role the replay named: the undo's list. */
  roles: string[];
  largeObjectsNotYetThere: number;
}

/**
 * The whole replay onto the target: roles, membership, then owners and privileges in one transaction
 * (a failure leaves nothing half-done; a retry runs it all again). `map`: source role -> target role.
 */
export async function replayRoles(
  source: Client,
  target: Client,
  opts: { map: Record<string, string>; applicationRole?: string; migrationId: string },
): Promise<ReplayResult> {
  const read = await readPrivilegeCatalog(source);
  // Large objects a CDC method copies only inside the window are not there yet: their copy carries their owner.
  const present = new Set((await target.query<{ o: string }>('SELECT oid::text AS o FROM pg_largeobject_metadata')).rows.map((r) => r.o));
  const catalog = { ...read, objects: read.objects.filter((o) => o.kind !== 'large object' || present.has(o.name)) };
  const map = roleMapper(opts.map);
  const database = (await target.query<{ d: string }>('SELECT current_database() AS d')).rows[0].d;
  const plan = replayPlan(catalog, map, database);
  const loginRole = opts.applicationRole;
  const created = await ensureRoles(target, plan.roles, loginRole, opts.migrationId);
  await joinRoles(target, plan.owningRoles);
  const isSchema = (o: CatalogObject) => o.kind === 'schema';
  const owners = (objects: CatalogObject[]) => objects.map((o) => ownerStatement(o, map)).filter((x): x is string => x !== undefined);
  await target.query('BEGIN');
  try {
    // Schemas first: the CREATE their contents' new owners need is then checked against the schemas' new owners.
    for (const objects of [catalog.objects.filter(isSchema), catalog.objects.filter((o) => !isSchema(o))]) {
      const { grant, revoke } = await missingCreate(target, objects, map);
      await runBatched(target, [...grant, ...owners(objects), ...revoke]);
    }
    await runBatched(target, plan.privileges);
    await target.query('COMMIT');
  } catch (err) {
    await target.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  return {
    created,
    statements: plan.owners.length + plan.privileges.length,
    roles: plan.roles,
    largeObjectsNotYetThere: read.objects.length - catalog.objects.length,
  };
}

/**
 * Owners and privileges of the large objects, replayed on their own: a CDC method copies them only inside
 * the write-freeze window, after the replay (which skipped those not there yet). The roles exist by then
 * (the replay created every role the source's objects name); the master joins the owners it needs.
 */
export async function replayLargeObjectPrivileges(source: Client, target: Client, opts: { map: Record<string, string> }): Promise<number> {
  const objects = (await readPrivilegeCatalog(source)).objects.filter((o) => o.kind === 'large object');
  if (!objects.length) return 0;
  const map = roleMapper(opts.map);
  await joinRoles(target, [...new Set(objects.map((o) => map(o.owner)))]);
  const owners = objects.map((o) => ownerStatement(o, map)).filter((s): s is string => s !== undefined);
  await runBatched(target, [...owners, ...objects.flatMap((o) => objectAclStatements(o, map))]);
  return objects.length;
}

export interface RolesUndone {
  /** Objects given back to the master user (the target reset then drops them). */
  reassigned: number;
  dropped: string[];
  /** Roles this migration created that hold privileges in other databases of the server: kept. */
  kept: string[];
}

/**
 * The undo: every object of the migration's target roles back to the master user (so the target
 * reset, which keeps other roles' objects, drops them), then the roles this migration created dropped
 * (DROP OWNED BY first: their privileges and default privileges in this database). Idempotent.
 */
export async function undoRoles(target: Client, opts: { roles: string[]; migrationId: string }): Promise<RolesUndone> {
  const roles = opts.roles.filter((r) => !isPredefinedRole(r));
  const catalog = await readPrivilegeCatalog(target);
  const me = (await target.query<{ u: string }>('SELECT current_user AS u')).rows[0].u;
  const theirs = catalog.objects.filter((o) => roles.includes(o.owner) && o.owner !== me && !o.followsTable);
  const toMaster = roleMapper(Object.fromEntries(roles.map((r) => [r, me])));
  await runBatched(
    target,
    theirs.map((o) => ownerStatement(o, toMaster)!),
  );
  const mine = await target.query<{ rolname: string }>(
    `SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[]) AND shobj_description(oid, 'pg_authid') = $2`,
    [roles, createdByMark(opts.migrationId)],
  );
  const dropped: string[] = [];
  const kept: string[] = [];
  for (const { rolname } of mine.rows) {
    await joinRoles(target, [rolname]);
    await target.query(`DROP OWNED BY ${qi(rolname)}`);
    try {
      await target.query(`DROP ROLE ${qi(rolname)}`);
      dropped.push(rolname);
    } catch (err) {
      // 2BP01: it holds privileges or objects in another database of this server (another migration uses it).
      if ((err as { code?: string }).code !== '2BP01') throw err;
      kept.push(rolname);
    }
  }
  return { reassigned: theirs.length, dropped, kept };
}
