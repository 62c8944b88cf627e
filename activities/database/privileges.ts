/**
 * Who owns and who may use what, read from one database's catalog: every object's owner and its
 * effective privileges (an ACL left NULL reads as the owner's defaults), column privileges, default
 * privileges and the database's own privileges. Reads pg_catalog only (aclexplode, acldefault): a
 * Heroku credential, which is no superuser and cannot read pg_authid, sees all of it.
 */
import type { Client } from 'pg';
import type { DatabaseInventory, RoleInventory } from '../../contract/plan';
import { NOT_EXTENSION_MEMBER, USER_SCHEMA } from './inventory';

/** A kind of object with its own ALTER ... OWNER TO and GRANT ... ON syntax. */
export type PrivilegeKind =
  | 'schema'
  | 'table'
  | 'view'
  | 'materialized view'
  | 'sequence'
  | 'foreign table'
  | 'function'
  | 'procedure'
  | 'aggregate'
  | 'type'
  | 'domain'
  | 'large object';

/** One entry of an exploded ACL; `PUBLIC` is the grantee of grants to everyone. */
export interface AclEntry {
  grantee: string;
  privilege: string;
  grantable: boolean;
}

export interface CatalogObject {
  kind: PrivilegeKind;
  /** Quoted, schema-qualified name as SQL takes it (functions with their argument types, large objects by oid). */
  name: string;
  owner: string;
  /** The schema it lives in (unquoted); null for schemas and large objects. */
  schema: string | null;
  /** Owned through a column (serial and identity sequences): its owner follows the table's and cannot be set apart. */
  followsTable: boolean;
  /** The effective privileges (the explicit ACL, or the owner's defaults when it is NULL). */
  acl: AclEntry[];
  /** What the owner's defaults give (acldefault): a GRANT replays what the source adds, a REVOKE what it took away. */
  defaults: AclEntry[];
}

export interface ColumnPrivilege {
  /** Quoted schema-qualified table name. */
  table: string;
  column: string;
  acl: AclEntry[];
}

/** ALTER DEFAULT PRIVILEGES of one role, in one schema or (schema null) everywhere. */
export interface DefaultPrivilege {
  role: string;
  schema: string | null;
  objectType: 'TABLES' | 'SEQUENCES' | 'FUNCTIONS' | 'TYPES' | 'SCHEMAS';
  acl: AclEntry[];
  /** Everywhere-entries replace the built-in defaults (what is missing was revoked); per-schema entries only add. */
  defaults: AclEntry[];
}

export interface PrivilegeCatalog {
  /**
   * The database itself (CONNECT, CREATE, TEMPORARY). Its owner is, on Heroku, the application role,
   * with the rights that come with owning it; on the target the master user keeps owning it.
   */
  database: { owner: string; acl: AclEntry[]; defaults: AclEntry[] };
  objects: CatalogObject[];
  columns: ColumnPrivilege[];
  defaultPrivileges: DefaultPrivilege[];
}

const ACL_JSON = (
  acl: string,
) => `(SELECT coalesce(json_agg(json_build_object('grantee', CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
    'privilege', a.privilege_type, 'grantable', a.is_grantable) ORDER BY a.grantee, a.privilege_type), '[]') FROM aclexplode(${acl}) a)`;

const QNAME = (schema: string, name: string) => `quote_ident(${schema}) || '.' || quote_ident(${name})`;

/** Every object with an owner and an ACL, in the user's schemas; `defkind` is acldefault's letter for it. */
const OBJECTS_SQL = `
  WITH o AS (
    SELECT 'schema' AS kind, quote_ident(n.nspname) AS name, n.nspowner AS owner, n.nspacl AS acl, 'n' AS defkind, false AS follows, NULL::name AS schema
      FROM pg_namespace n WHERE ${USER_SCHEMA} AND ${NOT_EXTENSION_MEMBER('pg_namespace', 'n.oid')}
    UNION ALL
    SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' ELSE 'table' END,
           ${QNAME('n.nspname', 'c.relname')}, c.relowner, c.relacl, CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END,
           c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                         AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')),
           n.nspname
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND ${USER_SCHEMA} AND ${NOT_EXTENSION_MEMBER('pg_class', 'c.oid')}
    UNION ALL
    SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
           ${QNAME('n.nspname', 'p.proname')} || '(' || pg_get_function_identity_arguments(p.oid) || ')', p.proowner, p.proacl, 'f', false, n.nspname
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE ${USER_SCHEMA} AND ${NOT_EXTENSION_MEMBER('pg_proc', 'p.oid')}
    UNION ALL
    SELECT CASE t.typtype WHEN 'd' THEN 'domain' ELSE 'type' END, ${QNAME('n.nspname', 't.typname')}, t.typowner, t.typacl, 'T', false, n.nspname
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c'))
       AND ${USER_SCHEMA} AND ${NOT_EXTENSION_MEMBER('pg_type', 't.oid')}
    UNION ALL
    SELECT 'large object', l.oid::text, l.lomowner, l.lomacl, 'L', false, NULL FROM pg_largeobject_metadata l
  )
  SELECT kind, name, pg_get_userbyid(owner) AS owner, follows, schema,
         ${ACL_JSON('coalesce(acl, acldefault(defkind::"char", owner))')} AS acl,
         ${ACL_JSON('acldefault(defkind::"char", owner)')} AS defaults
    FROM o ORDER BY kind, name`;

const COLUMNS_SQL = `
  SELECT ${QNAME('n.nspname', 'c.relname')} AS tbl, quote_ident(a.attname) AS col, ${ACL_JSON('a.attacl')} AS acl
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND ${USER_SCHEMA}
   ORDER BY 1, 2`;

const DEFAULT_OBJECT_TYPES: Record<string, { type: DefaultPrivilege['objectType']; defkind: string }> = {
  r: { type: 'TABLES', defkind: 'r' },
  S: { type: 'SEQUENCES', defkind: 's' },
  f: { type: 'FUNCTIONS', defkind: 'f' },
  T: { type: 'TYPES', defkind: 'T' },
  n: { type: 'SCHEMAS', defkind: 'n' },
};

const DEFAULTS_SQL = `
  SELECT pg_get_userbyid(d.defaclrole) AS role, CASE WHEN d.defaclnamespace = 0 THEN NULL ELSE n.nspname END AS schema,
         d.defaclobjtype AS objtype, ${ACL_JSON('d.defaclacl')} AS acl,
         CASE WHEN d.defaclnamespace = 0 THEN ${ACL_JSON(`acldefault(CASE d.defaclobjtype WHEN 'S' THEN 's' ELSE d.defaclobjtype END, d.defaclrole)`)}
              ELSE '[]'::json END AS defaults
    FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
   ORDER BY 1, 2 NULLS FIRST, 3`;

const DATABASE_SQL = `
  SELECT pg_get_userbyid(d.datdba) AS owner, ${ACL_JSON("coalesce(d.datacl, acldefault('d', d.datdba))")} AS acl,
         ${ACL_JSON("acldefault('d', d.datdba)")} AS defaults
    FROM pg_database d WHERE d.datname = current_database()`;

/** A role dropped since a grant shows as "unknown (OID=n)": nothing to replay for it. */
const knownGrantee = (e: AclEntry) => !e.grantee.startsWith('unknown (OID=');

export async function readPrivilegeCatalog(client: Client): Promise<PrivilegeCatalog> {
  // One connection, one query at a time.
  const objects = await client.query(OBJECTS_SQL);
  const columns = await client.query(COLUMNS_SQL);
  const defaults = await client.query(DEFAULTS_SQL);
  const database = (await client.query(DATABASE_SQL)).rows[0];
  return {
    database: { owner: database.owner, acl: (database.acl as AclEntry[]).filter(knownGrantee), defaults: database.defaults },
    objects: objects.rows.map((r) => ({
      kind: r.kind,
      name: r.name,
      owner: r.owner,
      schema: r.schema,
      followsTable: r.follows,
      acl: (r.acl as AclEntry[]).filter(knownGrantee),
      defaults: r.defaults,
    })),
    columns: columns.rows.map((r) => ({ table: r.tbl, column: r.col, acl: (r.acl as AclEntry[]).filter(knownGrantee) })),
    defaultPrivileges: defaults.rows.map((r) => ({
      role: r.role,
      schema: r.schema,
      objectType: DEFAULT_OBJECT_TYPES[r.objtype].type,
      acl: (r.acl as AclEntry[]).filter(knownGrantee),
      defaults: r.defaults,
    })),
  };
}

/** Object kinds as the plan counts them. */
export const kindGroup = (kind: PrivilegeKind): keyof RoleInventory['owns'] => {
  switch (kind) {
    case 'schema':
      return 'schemas';
    case 'sequence':
      return 'sequences';
    case 'function':
    case 'procedure':
    case 'aggregate':
      return 'functions';
    case 'type':
    case 'domain':
      return 'types';
    case 'large object':
      return 'largeObjects';
    default:
      return 'tables';
  }
};

const emptyCounts = (): RoleInventory['owns'] => ({ schemas: 0, tables: 0, sequences: 0, functions: 0, types: 0, largeObjects: 0 });

/**
 * The roles that own or are granted anything in the database (the owner's own privileges are not
 * counted as grants), with how many objects of each kind; `application` marks the application's role.
 */
export function summarizeRoles(catalog: PrivilegeCatalog, applicationRole: string): RoleInventory[] {
  const roles = new Map<string, RoleInventory>();
  const role = (name: string) => {
    let r = roles.get(name);
    if (!r) {
      r = {
        name,
        application: name === applicationRole,
        owns: emptyCounts(),
        granted: emptyCounts(),
        columnGrants: 0,
        defaultPrivileges: 0,
      };
      roles.set(name, r);
    }
    return r;
  };
  for (const o of catalog.objects) {
    role(o.owner).owns[kindGroup(o.kind)] += 1;
    const grantees = new Set(o.acl.filter((e) => e.grantee !== 'PUBLIC' && e.grantee !== o.owner).map((e) => e.grantee));
    for (const g of grantees) role(g).granted[kindGroup(o.kind)] += 1;
  }
  for (const c of catalog.columns)
    for (const g of new Set(c.acl.map((e) => e.grantee).filter((g) => g !== 'PUBLIC'))) role(g).columnGrants += 1;
  for (const d of catalog.defaultPrivileges) {
    role(d.role).defaultPrivileges += 1;
    for (const g of new Set(d.acl.map((e) => e.grantee).filter((g) => g !== 'PUBLIC' && g !== d.role))) role(g).defaultPrivileges += 1;
  }
  for (const e of catalog.database.acl) if (e.grantee !== 'PUBLIC') role(e.grantee);
  return [...roles.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** The inventory with its roles (preflight): `applicationRole` is marked as the application's. */
export async function withRoles(client: Client, inventory: DatabaseInventory, applicationRole: string): Promise<DatabaseInventory> {
  return { ...inventory, roles: summarizeRoles(await readPrivilegeCatalog(client), applicationRole) };
}
