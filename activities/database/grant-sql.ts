/**
 * The statements that give the target the source's ownership and privileges, built from the source's
 * catalog (privileges.ts) with each role mapped. Pure (unit tested). Every statement is idempotent
 * (ALTER ... OWNER TO, GRANT, REVOKE, ALTER DEFAULT PRIVILEGES), so a retried replay runs them again.
 *
 * The target's objects come from a dump restored with --no-owner --no-acl: owned by the master user,
 * ACLs NULL (the owner's defaults). After ALTER ... OWNER TO the mapped owner they hold that owner's
 * defaults, so what the source added to its defaults is GRANTed and what it took away is REVOKEd
 * (e.g. EXECUTE on a function revoked from PUBLIC).
 */
import { escapeIdentifier as qi } from 'pg';
import { mapRole } from '../../contract/roles';
import type { AclEntry, CatalogObject, DefaultPrivilege, PrivilegeCatalog, PrivilegeKind } from './privileges';

/** Source role -> target role. */
export type RoleMapper = (sourceRole: string) => string;

export function roleMapper(map: Record<string, string>): RoleMapper {
  return (role) => mapRole(map, role);
}

/** The keyword of ALTER <keyword> name OWNER TO. */
const OWNER_KEYWORD: Record<PrivilegeKind, string> = {
  schema: 'SCHEMA',
  table: 'TABLE',
  view: 'VIEW',
  'materialized view': 'MATERIALIZED VIEW',
  sequence: 'SEQUENCE',
  'foreign table': 'FOREIGN TABLE',
  function: 'ROUTINE',
  procedure: 'ROUTINE',
  aggregate: 'AGGREGATE',
  type: 'TYPE',
  domain: 'DOMAIN',
  'large object': 'LARGE OBJECT',
};

/** The keyword of GRANT ... ON <keyword> name (every relation but a sequence is a TABLE to GRANT). */
const GRANT_KEYWORD: Record<PrivilegeKind, string> = {
  ...OWNER_KEYWORD,
  view: 'TABLE',
  'materialized view': 'TABLE',
  'foreign table': 'TABLE',
  aggregate: 'FUNCTION',
  function: 'ROUTINE',
  procedure: 'ROUTINE',
};

const grantee = (name: string, map: RoleMapper) => (name === 'PUBLIC' ? 'PUBLIC' : qi(map(name)));
const same = (a: AclEntry, b: AclEntry) => a.grantee === b.grantee && a.privilege === b.privilege;

/** What `acl` adds to `defaults` (a grant option counts) and what it lacks of them. */
export function aclDifference(acl: AclEntry[], defaults: AclEntry[]): { grants: AclEntry[]; revokes: AclEntry[] } {
  return {
    grants: acl.filter((e) => !defaults.some((d) => same(d, e) && (d.grantable || !e.grantable))),
    revokes: defaults.filter((d) => !acl.some((e) => same(d, e))),
  };
}

/** Entries grouped by grantee and grant option, privileges sorted: one statement per group. */
function grouped(entries: AclEntry[]): { grantee: string; grantable: boolean; privileges: string[] }[] {
  const groups = new Map<string, { grantee: string; grantable: boolean; privileges: string[] }>();
  for (const e of entries) {
    const key = `${e.grantee}\u0000${e.grantable}`;
    const g = groups.get(key) ?? { grantee: e.grantee, grantable: e.grantable, privileges: [] };
    if (!g.privileges.includes(e.privilege)) g.privileges.push(e.privilege);
    groups.set(key, g);
  }
  return [...groups.values()].map((g) => ({ ...g, privileges: g.privileges.sort() }));
}

/** GRANT / REVOKE statements turning `defaults` into `acl` on `on` ("TABLE x", "LARGE OBJECT 123"...). */
export function aclStatements(on: string, acl: AclEntry[], defaults: AclEntry[], map: RoleMapper, columns = ''): string[] {
  const { grants, revokes } = aclDifference(acl, defaults);
  const privileges = (list: string[]) => list.map((p) => `${p}${columns}`).join(', ');
  return [
    ...grouped(grants).map(
      (g) => `GRANT ${privileges(g.privileges)} ON ${on} TO ${grantee(g.grantee, map)}${g.grantable ? ' WITH GRANT OPTION' : ''}`,
    ),
    ...grouped(revokes).map((g) => `REVOKE ${privileges(g.privileges)} ON ${on} FROM ${grantee(g.grantee, map)}`),
  ];
}

/** ALTER ... OWNER TO the mapped owner; none for sequences that follow their table's owner. */
export function ownerStatement(o: CatalogObject, map: RoleMapper): string | undefined {
  if (o.followsTable) return undefined;
  return `ALTER ${OWNER_KEYWORD[o.kind]} ${o.name} OWNER TO ${qi(map(o.owner))}`;
}

export function objectAclStatements(o: CatalogObject, map: RoleMapper): string[] {
  // The owner's own entries are rewritten by PostgreSQL on ALTER OWNER: compared under the mapped name they match the defaults.
  return aclStatements(`${GRANT_KEYWORD[o.kind]} ${o.name}`, o.acl, o.defaults, map);
}

export function defaultPrivilegeStatements(d: DefaultPrivilege, map: RoleMapper): string[] {
  const scope = `ALTER DEFAULT PRIVILEGES FOR ROLE ${qi(map(d.role))}${d.schema === null ? '' : ` IN SCHEMA ${qi(d.schema)}`}`;
  return aclStatements(d.objectType, d.acl, d.defaults, map).map((s) =>
    s.replace(/^(GRANT|REVOKE) (.*) ON (\w+) (TO|FROM) /, `${scope} $1 $2 ON $3 $4 `),
  );
}

/**
 * The target database stays the master's. The source database's owner (on Heroku, the application
 * role) had every privilege on it and, through pg_database_owner, on the schemas that role owns (PostgreSQL
 * 15's `public`): its mapped role gets them granted, so it can still connect, create and migrate.
 */
export function databaseStatements(catalog: PrivilegeCatalog, map: RoleMapper, database: string): string[] {
  const { owner, acl, defaults } = catalog.database;
  const others = (entries: AclEntry[]) => entries.filter((e) => e.grantee !== owner);
  return [
    ...aclStatements(`DATABASE ${qi(database)}`, others(acl), others(defaults), map),
    `GRANT ALL ON DATABASE ${qi(database)} TO ${qi(map(owner))}`,
    ...catalog.objects
      .filter((o) => o.kind === 'schema' && o.owner === 'pg_database_owner')
      .map((o) => `GRANT ALL ON SCHEMA ${o.name} TO ${qi(map(owner))}`),
  ];
}

/**
 * The grants databaseStatements adds that the source has no entry for (its database owner held them by
 * owning the database), as the catalog comparison names them: not differences.
 */
export function standsForDatabaseOwnership(catalog: PrivilegeCatalog, map: RoleMapper): (difference: string) => boolean {
  const role = map(catalog.database.owner);
  const schemas = catalog.objects.filter((o) => o.kind === 'schema' && o.owner === 'pg_database_owner').map((o) => o.name);
  return (difference) =>
    difference.startsWith('grant ') &&
    schemas.some((schema) => [role, qi(role)].some((r) => difference.endsWith(` on schema ${schema} to ${r}: exists only on target`)));
}

/** The replay, in order: owners first (a GRANT by the owner is then recorded as the owner's), then privileges. */
export interface ReplayPlan {
  owners: string[];
  privileges: string[];
  /** Target roles that must own something: the master must be a member of each, and each needs CREATE where it owns. */
  owningRoles: string[];
  /** Every target role the statements name (created when missing). */
  roles: string[];
}

export function replayPlan(catalog: PrivilegeCatalog, map: RoleMapper, database: string): ReplayPlan {
  const owners = catalog.objects.map((o) => ownerStatement(o, map)).filter((s): s is string => s !== undefined);
  const privileges = [
    ...databaseStatements(catalog, map, database),
    ...catalog.objects.flatMap((o) => objectAclStatements(o, map)),
    ...catalog.columns.flatMap((c) => aclStatements(`TABLE ${c.table}`, c.acl, [], map, ` (${c.column})`)),
    ...catalog.defaultPrivileges.flatMap((d) => defaultPrivilegeStatements(d, map)),
  ];
  const owningRoles = [...new Set([...catalog.objects.map((o) => o.owner), ...catalog.defaultPrivileges.map((d) => d.role)].map(map))];
  const named = [
    ...catalog.objects.flatMap((o) => [o.owner, ...o.acl.map((e) => e.grantee)]),
    ...catalog.columns.flatMap((c) => c.acl.map((e) => e.grantee)),
    ...catalog.defaultPrivileges.flatMap((d) => [d.role, ...d.acl.map((e) => e.grantee)]),
    ...catalog.database.acl.map((e) => e.grantee),
  ];
  const roles = [...new Set(named.filter((r) => r !== 'PUBLIC').map(map))].sort();
  return { owners, privileges, owningRoles: owningRoles.sort(), roles };
}
