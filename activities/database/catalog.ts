/**
 * The catalog that matters to an application, read from a database and compared between two: tables
 * and columns (UNLOGGED, row level security), indexes, constraints (and whether they are validated),
 * triggers, rules, policies, functions and procedures, views, materialized views (and whether they are
 * populated), sequences (definition and OWNED BY, not their values), extensions, enums, domains,
 * composite and range types, partitions, comments and, behind an option, ownership and grants after a
 * role mapping.
 *
 * Out of the comparison: pg_catalog, information_schema, pg_toast*, temporary schemas, the migration's
 * own schemas, pgcopydb's schema, objects that belong to an extension, and the triggers the migration
 * installs itself (their functions live in its own schemas).
 *
 * Objects are described by what PostgreSQL prints for them (pg_get_indexdef, pg_get_constraintdef, ...)
 * with search_path set to pg_catalog on both sides, so names print the same way wherever they are and
 * no OID of one database appears in a description (large objects keep their OIDs in a copy: theirs is
 * their name).
 */
import type { Client } from 'pg';
import { isOwnSchemaSql } from '../methods/cdc/marker';

/** One object: `kind` and `name` identify it on both sides; `props` are compared one by one. */
export interface CatalogObject {
  kind: string;
  name: string;
  /**
   * Strings must be equal. Booleans are states the target must keep when the source has them
   * (validated, populated, valid): false on the target where the source says true is a difference,
   * the other way round is not (the target may have validated a NOT VALID constraint, as the migration does).
   */
  props: Record<string, string | boolean | null>;
}

export interface Ownership {
  /** As objects are named in messages, e.g. `table public.events`. */
  object: string;
  owner: string;
}

export interface Grant {
  /** e.g. `table public.events`; for default privileges what they apply to, e.g. `tables in schema "Sales"`. */
  object: string;
  privilege: string;
  /** null: PUBLIC. */
  grantee: string | null;
  grantable: boolean;
  /** Default privileges: the role whose new objects get them. */
  forRole?: string;
}

export interface Catalog {
  objects: CatalogObject[];
  /** Read only with the privileges option. */
  privileges?: { owners: Ownership[]; grants: Grant[] };
}

export interface CatalogOptions {
  /** Compare owners and grants too (off until the migration carries them). */
  privileges: boolean;
  /** Source role -> the target role that stands for it; roles not named keep their name. */
  roleMap?: Record<string, string>;
}

/**
 * Until the migration replays owners and grants (every copy runs with --no-owner --no-acl), comparing
 * them would fail every migration: off by default.
 */
export const CATALOG_DEFAULTS: CatalogOptions = { privileges: false };

/** A user's schema (`n` aliases pg_namespace). */
const userSchema = (n: string) =>
  `${n}.nspname NOT IN ('pg_catalog', 'information_schema', 'pgcopydb') AND ${n}.nspname NOT LIKE 'pg\\_toast%' ` +
  `AND ${n}.nspname NOT LIKE 'pg\\_temp\\_%' AND NOT ${isOwnSchemaSql(`${n}.nspname`)}`;

/** Not part of an extension (`catalog` is the catalog table the object's OID `oid` is in). */
const notInExtension = (catalog: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '${catalog}'::regclass AND e.objid = ${oid} AND e.deptype = 'e')`;

const RELATION_KIND = `CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' ELSE 'table' END`;
const FUNCTION_KIND = `CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' WHEN 'w' THEN 'window function' ELSE 'function' END`;
const FUNCTION_NAME = `format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))`;
const TYPE_KIND = `CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain' WHEN 'c' THEN 'composite type' ELSE 'range type' END`;

/** Tables, views, materialized views, sequences (with their definition) and foreign tables. */
const RELATIONS = `FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_sequence s ON s.seqrelid = c.oid
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND ${userSchema('n')} AND ${notInExtension('pg_class', 'c.oid')}`;
const FUNCTIONS = `FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE ${userSchema('n')} AND ${notInExtension('pg_proc', 'p.oid')}`;
/** Enums, domains, composite types (not tables' row types) and ranges; array and multirange types come with them. */
const TYPES = `FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
  WHERE t.typtype IN ('e', 'd', 'c', 'r') AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
    AND ${userSchema('n')} AND ${notInExtension('pg_type', 't.oid')}`;

/** Every object as (kind, name, props): one round trip. */
const OBJECTS_SQL = `
  SELECT 'schema' AS kind, quote_ident(n.nspname) AS name,
         jsonb_strip_nulls(jsonb_build_object('comment', obj_description(n.oid, 'pg_namespace'))) AS props
    FROM pg_namespace n WHERE ${userSchema('n')} AND ${notInExtension('pg_namespace', 'n.oid')}
  UNION ALL
  SELECT 'extension', quote_ident(x.extname), '{}'::jsonb FROM pg_extension x
  UNION ALL
  SELECT ${RELATION_KIND}, format('%I.%I', n.nspname, c.relname), jsonb_strip_nulls(jsonb_build_object(
           'comment', obj_description(c.oid, 'pg_class'),
           'persistence', CASE c.relpersistence WHEN 'u' THEN 'unlogged' ELSE 'permanent' END,
           'row level security', CASE WHEN c.relkind IN ('r', 'p') THEN
             CASE WHEN NOT c.relrowsecurity THEN 'off' WHEN c.relforcerowsecurity THEN 'forced' ELSE 'on' END END,
           'column order', (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
                             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind <> 'S'),
           'partition key', CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
           'partition of', (SELECT format('%I.%I', pn.nspname, pc.relname) FROM pg_inherits i
                              JOIN pg_class pc ON pc.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                             WHERE i.inhrelid = c.oid AND c.relispartition),
           'partition bound', CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END,
           'definition', CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
           'populated', CASE WHEN c.relkind = 'm' THEN c.relispopulated END,
           'type', format_type(s.seqtypid, NULL),
           'increment', s.seqincrement::text,
           'minimum', s.seqmin::text,
           'maximum', s.seqmax::text,
           'cycle', s.seqcycle::text,
           'owned by', (SELECT format('%I.%I.%I', tn.nspname, tc.relname, a.attname) FROM pg_depend d
                          JOIN pg_class tc ON tc.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = tc.relnamespace
                          JOIN pg_attribute a ON a.attrelid = tc.oid AND a.attnum = d.refobjsubid
                         WHERE c.relkind = 'S' AND d.classid = 'pg_class'::regclass AND d.objid = c.oid
                           AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i') LIMIT 1)))
    ${RELATIONS}
  UNION ALL
  SELECT 'column', format('%I.%I.%I', n.nspname, c.relname, a.attname), jsonb_strip_nulls(jsonb_build_object(
           'type', format_type(a.atttypid, a.atttypmod),
           'not null', a.attnotnull::text,
           'default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, ad.adrelid) END,
           'generated', CASE WHEN a.attgenerated <> '' THEN pg_get_expr(ad.adbin, ad.adrelid) END,
           'identity', CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END,
           'collation', CASE WHEN a.attcollation <> ty.typcollation THEN a.attcollation::regcollation::text END,
           'comment', col_description(c.oid, a.attnum)))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_type ty ON ty.oid = a.atttypid LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped
     AND ${userSchema('n')} AND ${notInExtension('pg_class', 'c.oid')}
  UNION ALL
  SELECT 'index', format('%I.%I', n.nspname, i.relname), jsonb_strip_nulls(jsonb_build_object(
           'definition', pg_get_indexdef(x.indexrelid), 'valid', x.indisvalid, 'comment', obj_description(i.oid, 'pg_class')))
    FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace
   WHERE ${userSchema('n')} AND ${notInExtension('pg_class', 'x.indrelid')}
  UNION ALL
  -- The definition without NOT VALID: whether it is validated is compared on its own.
  SELECT 'constraint', CASE WHEN co.conrelid <> 0 THEN format('%I on %I.%I', co.conname, n.nspname, r.relname)
                            ELSE format('%I on domain %I.%I', co.conname, n.nspname, ty.typname) END,
         jsonb_strip_nulls(jsonb_build_object(
           'definition', regexp_replace(pg_get_constraintdef(co.oid), ' NOT VALID$', ''),
           'validated', co.convalidated, 'comment', obj_description(co.oid, 'pg_constraint')))
    FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace
    LEFT JOIN pg_class r ON r.oid = co.conrelid LEFT JOIN pg_type ty ON ty.oid = co.contypid
   WHERE (co.conrelid <> 0 OR co.contypid <> 0) AND ${userSchema('n')}
     AND ${notInExtension('pg_class', 'co.conrelid')} AND ${notInExtension('pg_type', 'co.contypid')}
  UNION ALL
  SELECT 'trigger', format('%I on %I.%I', tg.tgname, n.nspname, c.relname), jsonb_strip_nulls(jsonb_build_object(
           'definition', pg_get_triggerdef(tg.oid),
           'enabled', CASE tg.tgenabled WHEN 'O' THEN 'yes' WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica only' ELSE 'always' END,
           'comment', obj_description(tg.oid, 'pg_trigger')))
    FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_proc p ON p.oid = tg.tgfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace
   WHERE NOT tg.tgisinternal AND NOT ${isOwnSchemaSql('pn.nspname')} AND ${userSchema('n')} AND ${notInExtension('pg_class', 'c.oid')}
  UNION ALL
  SELECT 'rule', format('%I on %I.%I', ru.rulename, n.nspname, c.relname), jsonb_strip_nulls(jsonb_build_object(
           'definition', pg_get_ruledef(ru.oid), 'comment', obj_description(ru.oid, 'pg_rewrite')))
    FROM pg_rewrite ru JOIN pg_class c ON c.oid = ru.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE ru.rulename <> '_RETURN' AND ${userSchema('n')} AND ${notInExtension('pg_class', 'c.oid')}
  UNION ALL
  SELECT 'policy', format('%I on %I.%I', po.policyname, po.schemaname, po.tablename), jsonb_strip_nulls(jsonb_build_object(
           'definition', concat_ws(' ', po.permissive, 'FOR', po.cmd, 'TO', array_to_string(po.roles, ', '),
                                   'USING (' || po.qual || ')', 'WITH CHECK (' || po.with_check || ')')))
    FROM pg_policies po JOIN pg_namespace n ON n.nspname = po.schemaname WHERE ${userSchema('n')}
  UNION ALL
  SELECT ${FUNCTION_KIND}, ${FUNCTION_NAME}, jsonb_strip_nulls(jsonb_build_object(
           'definition', CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END,
           'aggregate', (SELECT concat_ws(', ', 'returns ' || pg_get_function_result(p.oid), 'state ' || ag.aggtransfn::text,
                                          'state type ' || format_type(ag.aggtranstype, NULL), 'final ' || nullif(ag.aggfinalfn::text, '-'),
                                          'initial ' || ag.agginitval)
                           FROM pg_aggregate ag WHERE ag.aggfnoid = p.oid),
           'comment', obj_description(p.oid, 'pg_proc')))
    ${FUNCTIONS}
  UNION ALL
  SELECT ${TYPE_KIND}, format('%I.%I', n.nspname, t.typname), jsonb_strip_nulls(jsonb_build_object(
           'labels', (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid),
           'base type', CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
           'not null', CASE WHEN t.typtype = 'd' THEN t.typnotnull::text END,
           'default', t.typdefault,
           'attributes', (SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.attnum)
                            FROM pg_attribute a WHERE t.typtype = 'c' AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped),
           'subtype', (SELECT format_type(rg.rngsubtype, NULL) FROM pg_range rg WHERE rg.rngtypid = t.oid),
           'comment', obj_description(t.oid, 'pg_type')))
    ${TYPES}
  ORDER BY 1, 2`;

/**
 * Owners and ACL entries, one row per entry (an object without entries still gives its owner). No ACL
 * is the built-in default (acldefault): compared as such, so an explicit default equals none. The
 * owner's own privileges are left out: they follow the owner, compared once. Default privileges carry
 * their role in for_role; their database-wide rows leave out what PostgreSQL grants anyway (EXECUTE on
 * functions and USAGE on types to PUBLIC).
 */
const PRIVILEGES_SQL = `
  WITH acls(object, owner, acl) AS (
    SELECT 'schema ' || quote_ident(n.nspname), n.nspowner, coalesce(n.nspacl, acldefault('n', n.nspowner))
      FROM pg_namespace n WHERE ${userSchema('n')} AND ${notInExtension('pg_namespace', 'n.oid')}
    UNION ALL
    SELECT ${RELATION_KIND} || ' ' || format('%I.%I', n.nspname, c.relname), c.relowner,
           coalesce(c.relacl, acldefault((CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END)::"char", c.relowner))
      ${RELATIONS}
    UNION ALL
    SELECT ${FUNCTION_KIND} || ' ' || ${FUNCTION_NAME}, p.proowner, coalesce(p.proacl, acldefault('f', p.proowner)) ${FUNCTIONS}
    UNION ALL
    SELECT ${TYPE_KIND} || ' ' || format('%I.%I', n.nspname, t.typname), t.typowner, coalesce(t.typacl, acldefault('T', t.typowner)) ${TYPES}
    UNION ALL
    SELECT 'large object ' || l.oid, l.lomowner, coalesce(l.lomacl, acldefault('L', l.lomowner)) FROM pg_largeobject_metadata l
  )
  SELECT a.object, pg_get_userbyid(a.owner) AS owner, NULL AS for_role, g.privilege_type AS privilege,
         CASE WHEN g.grantee = 0 THEN NULL ELSE pg_get_userbyid(g.grantee) END AS grantee, g.is_grantable AS grantable
    FROM acls a LEFT JOIN LATERAL aclexplode(a.acl) g ON g.grantee <> a.owner
  UNION ALL
  SELECT CASE d.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences' WHEN 'f' THEN 'functions' WHEN 'T' THEN 'types' ELSE 'schemas' END
           || CASE WHEN d.defaclnamespace = 0 THEN '' ELSE ' in schema ' || quote_ident(n.nspname) END,
         NULL, pg_get_userbyid(d.defaclrole), g.privilege_type,
         CASE WHEN g.grantee = 0 THEN NULL ELSE pg_get_userbyid(g.grantee) END, g.is_grantable
    FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace CROSS JOIN LATERAL aclexplode(d.defaclacl) g
   WHERE g.grantee <> d.defaclrole AND (d.defaclnamespace = 0 OR ${userSchema('n')})
     AND NOT (d.defaclnamespace = 0 AND g.grantee = 0 AND (d.defaclobjtype, g.privilege_type) IN (('f', 'EXECUTE'), ('T', 'USAGE')))`;

interface PrivilegeRow {
  object: string;
  owner: string | null;
  for_role: string | null;
  privilege: string | null;
  grantee: string | null;
  grantable: boolean | null;
}

/** Reads the catalog in one query (two with the privileges option). */
export async function readCatalog(client: Client, options: Pick<CatalogOptions, 'privileges'>): Promise<Catalog> {
  // Names print qualified unless their schema is on the search path: the same path on both sides. The
  // session's own path is put back afterwards (the verification's sessions go on reading tables).
  const previous = (await client.query<{ path: string }>(`SELECT current_setting('search_path') AS path`)).rows[0].path;
  await client.query(`SELECT set_config('search_path', 'pg_catalog', false)`);
  try {
    const objects = (await client.query<CatalogObject>(OBJECTS_SQL)).rows;
    if (!options.privileges) return { objects };
    const rows = (await client.query<PrivilegeRow>(PRIVILEGES_SQL)).rows;
    const owners = rows.flatMap((r) => (r.owner !== null ? [{ object: r.object, owner: r.owner }] : []));
    const grants = rows.flatMap((r) =>
      r.privilege !== null
        ? [
            {
              object: r.object,
              privilege: r.privilege,
              grantee: r.grantee,
              grantable: !!r.grantable,
              ...(r.for_role ? { forRole: r.for_role } : {}),
            },
          ]
        : [],
    );
    return { objects, privileges: { owners: uniqueOwners(owners), grants } };
  } finally {
    await client.query(`SELECT set_config('search_path', $1, false)`, [previous]);
  }
}

/** One row per ACL entry repeats the owner: once per object. */
function uniqueOwners(owners: Ownership[]): Ownership[] {
  return [...new Map(owners.map((o) => [o.object, o])).values()];
}

/**
 * Kinds whose extra objects on the target are not differences: an extension the target's template
 * brings (RDS installs some) changes nothing the application relies on, and its objects are left out anyway.
 */
const EXTRA_ON_TARGET_ALLOWED = new Set(['extension']);

/** What a state kept on the source and lost on the target is called. */
const LOST_STATE: Record<string, string> = {
  validated: 'NOT VALID on target',
  populated: 'not populated on target',
  valid: 'invalid on target',
};

/** Role names as SQL writes them. */
function role(name: string | null): string {
  if (name === null) return 'PUBLIC';
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

/** Two values that differ, shown around their first difference when long (function bodies, view definitions). */
function excerpts(a: string, b: string, width = 80): [string, string] {
  if (a.length <= width && b.length <= width) return [a, b];
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  const from = Math.max(0, i - 20);
  const cut = (s: string) => `${from > 0 ? '…' : ''}${s.slice(from, from + width)}${s.length > from + width ? '…' : ''}`;
  return [cut(a), cut(b)];
}

function show(value: string | boolean | null | undefined): string {
  return value === null || value === undefined ? '(none)' : String(value);
}

function diffObject(s: CatalogObject, t: CatalogObject): string[] {
  const label = `${s.kind} ${s.name}`;
  const problems: string[] = [];
  for (const prop of new Set([...Object.keys(s.props), ...Object.keys(t.props)])) {
    const a = s.props[prop];
    const b = t.props[prop];
    if (typeof a === 'boolean' || typeof b === 'boolean') {
      if (a === true && b !== true) problems.push(`${label}: ${LOST_STATE[prop] ?? `not ${prop} on target`}`);
    } else if ((a ?? null) !== (b ?? null)) {
      // On one line: definitions span several.
      const oneLine = (v: string) => v.replace(/\s+/g, ' ').trim();
      const [x, y] = typeof a === 'string' && typeof b === 'string' ? excerpts(oneLine(a), oneLine(b)) : [show(a), show(b)];
      problems.push(`${label}: ${prop} ${prop.endsWith('s') ? 'differ' : 'differs'} (source: ${x}; target: ${y})`);
    }
  }
  return problems;
}

const grantText = (g: Grant) =>
  g.forRole === undefined
    ? `grant ${g.privilege} on ${g.object} to ${role(g.grantee)}${g.grantable ? ' WITH GRANT OPTION' : ''}`
    : `default privilege ${g.privilege} on ${g.object} for role ${role(g.forRole)} to ${role(g.grantee)}${g.grantable ? ' WITH GRANT OPTION' : ''}`;

function diffPrivileges(
  source: NonNullable<Catalog['privileges']>,
  target: NonNullable<Catalog['privileges']>,
  mapRole: (role: string) => string,
): string[] {
  const problems: string[] = [];
  const targetOwners = new Map(target.owners.map((o) => [o.object, o.owner]));
  const sourceObjects = new Set(source.owners.map((o) => o.object));
  for (const { object, owner } of source.owners) {
    const expected = mapRole(owner);
    const actual = targetOwners.get(object);
    if (actual !== undefined && actual !== expected) {
      problems.push(
        `${object}: owner differs (source: ${role(owner)}${expected !== owner ? ` as ${role(expected)}` : ''}; target: ${role(actual)})`,
      );
    }
  }
  // Grants on objects missing on either side are not repeated: the object itself is reported.
  const onBoth = (g: Grant) => g.forRole !== undefined || (sourceObjects.has(g.object) && targetOwners.has(g.object));
  const mapped = source.grants.filter(onBoth).map((g) => ({
    ...g,
    grantee: g.grantee === null ? null : mapRole(g.grantee),
    ...(g.forRole !== undefined ? { forRole: mapRole(g.forRole) } : {}),
  }));
  const expected = new Set(mapped.map(grantText));
  const actual = new Set(target.grants.filter(onBoth).map(grantText));
  for (const g of expected) if (!actual.has(g)) problems.push(`${g}: missing on target`);
  for (const g of actual) if (!expected.has(g)) problems.push(`${g}: exists only on target`);
  return problems;
}

/**
 * What differs between two catalogs, object by object, in the source's order (then what exists only on
 * the target). Owners and grants are compared when both catalogs hold them, the source's roles mapped
 * by `mapRole` (PUBLIC stays PUBLIC).
 */
export function diffCatalogs(source: Catalog, target: Catalog, mapRole: (role: string) => string = (r) => r): string[] {
  const key = (o: CatalogObject) => `${o.kind} ${o.name}`;
  const targetObjects = new Map(target.objects.map((o) => [key(o), o]));
  const sourceKeys = new Set(source.objects.map(key));
  const problems: string[] = [];
  for (const s of source.objects) {
    const t = targetObjects.get(key(s));
    if (t === undefined) problems.push(`${key(s)}: missing on target`);
    else problems.push(...diffObject(s, t));
  }
  for (const t of target.objects) {
    if (!sourceKeys.has(key(t)) && !EXTRA_ON_TARGET_ALLOWED.has(t.kind)) problems.push(`${key(t)}: exists only on target`);
  }
  if (source.privileges && target.privileges) problems.push(...diffPrivileges(source.privileges, target.privileges, mapRole));
  return problems;
}

/** Both catalogs read at once (one session each) and compared. */
export async function compareCatalogs(source: Client, target: Client, options: CatalogOptions): Promise<string[]> {
  const [s, t] = await Promise.all([readCatalog(source, options), readCatalog(target, options)]);
  const roles = options.roleMap ?? {};
  return diffCatalogs(s, t, (r) => roles[r] ?? r);
}
