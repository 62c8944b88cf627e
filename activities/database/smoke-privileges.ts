/**
 * The smoke test's view of privileges: what the application's role may do to each object, on the
 * source (asked for the role by name) and on the target (asked as the role itself, connected with
 * the URL the config sink holds), the objects of the source it lost named one by one, and each kind
 * of object it may use touched once: tables read and written (rolled back), sequences advanced,
 * large objects read.
 */
import type { Client } from 'pg';
import { NOT_EXTENSION_MEMBER, USER_SCHEMA } from './inventory';

export interface HeldPrivilege {
  kind: 'schema' | 'table' | 'sequence' | 'function' | 'type' | 'large object';
  /** Quoted, schema-qualified name (large objects: the oid). */
  name: string;
  privilege: string;
  /**
   * pg_class.relkind for tables: what can be written and what only read; `m-unpopulated` for a
   * materialized view never refreshed (no query can read it, here or on the source: the catalog
   * verification is what notices one the source has populated).
   */
  relkind?: string;
}

const QNAME = (schema: string, name: string) => `quote_ident(${schema}) || '.' || quote_ident(${name})`;

/** Effective privileges of role `$1` (inherited ones and PUBLIC's included) on the user's objects. */
const HELD_SQL = `
  SELECT 'schema' AS kind, quote_ident(n.nspname) AS name, p AS privilege, NULL AS relkind
    FROM pg_namespace n CROSS JOIN unnest(ARRAY['USAGE', 'CREATE']) p
   WHERE ${USER_SCHEMA} AND has_schema_privilege($1, n.oid, p)
  UNION ALL
  SELECT 'table', ${QNAME('n.nspname', 'c.relname')}, p, CASE WHEN c.relkind = 'm' AND NOT c.relispopulated THEN 'm-unpopulated' ELSE c.relkind::text END
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND ${USER_SCHEMA} AND ${NOT_EXTENSION_MEMBER('pg_class', 'c.oid')} AND has_table_privilege($1, c.oid, p)
  UNION ALL
  SELECT 'sequence', ${QNAME('n.nspname', 'c.relname')}, p, NULL
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN unnest(ARRAY['USAGE', 'SELECT', 'UPDATE']) p
   WHERE c.relkind = 'S' AND ${USER_SCHEMA} AND ${NOT_EXTENSION_MEMBER('pg_class', 'c.oid')} AND has_sequence_privilege($1, c.oid, p)
  UNION ALL
  SELECT 'function', ${QNAME('n.nspname', 'p.proname')} || '(' || pg_get_function_identity_arguments(p.oid) || ')', 'EXECUTE', NULL
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE ${USER_SCHEMA} AND ${NOT_EXTENSION_MEMBER('pg_proc', 'p.oid')} AND has_function_privilege($1, p.oid, 'EXECUTE')
  UNION ALL
  SELECT 'type', ${QNAME('n.nspname', 't.typname')}, 'USAGE', NULL
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
   WHERE t.typtype IN ('e', 'd', 'r') AND ${USER_SCHEMA} AND ${NOT_EXTENSION_MEMBER('pg_type', 't.oid')} AND has_type_privilege($1, t.oid, 'USAGE')
  UNION ALL
  -- No has_largeobject_privilege before PostgreSQL 17: the ACL (or the owner's defaults) read directly.
  SELECT 'large object', l.oid::text, p, NULL
    FROM pg_largeobject_metadata l CROSS JOIN unnest(ARRAY['SELECT', 'UPDATE']) p
   WHERE EXISTS (SELECT 1 FROM aclexplode(coalesce(l.lomacl, acldefault('L', l.lomowner))) a
                  WHERE a.privilege_type = p AND (a.grantee = 0 OR pg_has_role($1, a.grantee, 'USAGE')))
   ORDER BY 1, 2, 3`;

/** What `role` may do (on the target: pass the connected role, `current_user`). */
export async function heldPrivileges(client: Client, role: string): Promise<HeldPrivilege[]> {
  const res = await client.query(HELD_SQL, [role]);
  return res.rows.map((r) => ({ kind: r.kind, name: r.name, privilege: r.privilege, ...(r.relkind ? { relkind: r.relkind } : {}) }));
}

const key = (p: HeldPrivilege) => `${p.kind} ${p.name}: ${p.privilege}`;

/** The privileges held on the source and not on the target, each as "table "Sales"."Orders": INSERT". */
export function missingPrivileges(onSource: HeldPrivilege[], onTarget: HeldPrivilege[]): string[] {
  const held = new Set(onTarget.map(key));
  return onSource.filter((p) => !held.has(key(p))).map(key);
}

/** How many objects of each kind are touched at most: enough to find a privilege missing by kind, bounded for large schemas. */
const TOUCH_AT_MOST = 50;

/**
 * Uses each object the role may use, inside one transaction that is rolled back: SELECT a row of
 * what it may read, INSERT a row of defaults where it may insert (a constraint refusing the row still
 * proves the privilege; only "permission denied" fails), rewrite one row where it may update, nextval
 * of its sequences, the first bytes of its large objects. Returns what failed, naming the object.
 */
export async function touchObjects(client: Client, held: HeldPrivilege[]): Promise<{ touched: number; failures: string[] }> {
  const by = (kind: HeldPrivilege['kind'], privilege: string, relkinds?: string[]) =>
    held
      .filter((p) => p.kind === kind && p.privilege === privilege && (!relkinds || relkinds.includes(p.relkind ?? '')))
      .slice(0, TOUCH_AT_MOST)
      .map((p) => p.name);
  const mayRead = new Set(by('table', 'SELECT'));
  const sql = (text: string) => () => client.query(text);
  const attempts: { what: string; run: () => Promise<unknown>; permissionOnly?: boolean }[] = [
    ...by('table', 'SELECT', ['r', 'p', 'v', 'm']).map((t) => ({ what: `SELECT from ${t}`, run: sql(`SELECT * FROM ${t} LIMIT 1`) })),
    ...by('table', 'INSERT', ['r', 'p']).map((t) => ({
      what: `INSERT into ${t}`,
      run: sql(`INSERT INTO ${t} DEFAULT VALUES`),
      permissionOnly: true,
    })),
    ...by('table', 'UPDATE', ['r', 'p'])
      .filter((t) => mayRead.has(t))
      .map((t) => ({ what: `UPDATE of ${t}`, run: () => rewriteOneRow(client, t), permissionOnly: true })),
    ...[...new Set([...by('sequence', 'USAGE'), ...by('sequence', 'UPDATE')])].map((s) => ({
      what: `nextval of ${s}`,
      run: sql(`SELECT nextval(${literalRegclass(s)})`),
    })),
    ...by('large object', 'SELECT').map((oid) => ({
      what: `lo_get of large object ${oid}`,
      run: sql(`SELECT lo_get(${Number(oid)}, 0, 16)`),
    })),
  ];
  const failures: string[] = [];
  await client.query('BEGIN READ WRITE');
  try {
    for (const a of attempts) {
      await client.query('SAVEPOINT pgmig_touch');
      try {
        await a.run();
      } catch (err) {
        const e = err as { code?: string; message?: string };
        if (!a.permissionOnly || e.code === '42501') failures.push(`${a.what}: ${e.message}`);
      }
      await client.query('ROLLBACK TO SAVEPOINT pgmig_touch');
    }
  } finally {
    await client.query('ROLLBACK');
  }
  return { touched: attempts.length, failures };
}

/** One row rewritten to itself: the same locks, triggers and checks as a real update, through its first plain column. */
async function rewriteOneRow(client: Client, table: string): Promise<void> {
  const col = await client.query<{ c: string }>(
    `SELECT quote_ident(attname) AS c FROM pg_attribute WHERE attrelid = ${literalRegclass(table)} AND attnum > 0 AND NOT attisdropped
        AND attgenerated = '' AND attidentity <> 'a' ORDER BY attnum LIMIT 1`,
  );
  if (!col.rowCount) return;
  const c = col.rows[0].c;
  await client.query(`UPDATE ${table} SET ${c} = ${c} WHERE ctid = (SELECT ctid FROM ${table} LIMIT 1)`);
}

const literalRegclass = (name: string) => `'${name.replace(/'/g, "''")}'::regclass`;
