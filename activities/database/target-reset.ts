/**
 * Puts the target back to what preflight found: the compensation of the copy, and the first move of a
 * retried copy (idempotency). Preflight refuses non-empty targets, so "what it found" is an empty
 * database with some schemas and extensions, and what appeared since was created either by this
 * migration (its restores, pgcopydb, DMS: all as the target role, --no-owner) or by someone else.
 *
 * Objects owned by another role are someone else's, created after preflight: they are kept, never
 * dropped silently. Those that depend on the migration's objects (a view on a copied table, a table
 * in a schema the migration created) cannot outlive them and go with them; both lists are reported.
 * An object someone created as the target role itself cannot be told apart and is dropped.
 */
import type { Client } from 'pg';
import { listUserSchemas, NOT_EXTENSION_MEMBER, USER_SCHEMA } from './inventory';
import { qi, qname } from './pg';

export interface TargetBaseline {
  schemas: string[];
  extensions: string[];
  largeObjects: number;
}

export interface ResetResult {
  droppedSchemas: string[];
  droppedObjects: number;
  droppedExtensions: string[];
  /** Objects of other roles created after preflight, left in place (e.g. "table public.notes (owner alice)"). */
  keptForeign?: string[];
  /** Objects of other roles that depended on the migration's objects and were dropped with them. */
  droppedForeign?: string[];
}

const FOREIGN = (owner: string) => `${owner} <> (SELECT oid FROM pg_roles WHERE rolname = current_user)`;

/** Objects owned by other roles than the one connected (the migration's), outside the baseline. */
async function foreignObjects(client: Client, baseline: TargetBaseline): Promise<string[]> {
  const res = await client.query(
    `SELECT 'schema ' || quote_ident(n.nspname) || ' (owner ' || pg_get_userbyid(n.nspowner) || ')' AS o
       FROM pg_namespace n WHERE ${USER_SCHEMA} AND NOT n.nspname = ANY($1) AND ${FOREIGN('n.nspowner')}
     UNION ALL
     SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' ELSE 'table' END
            || ' ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' (owner ' || pg_get_userbyid(c.relowner) || ')'
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND ${USER_SCHEMA} AND ${FOREIGN('c.relowner')} AND ${NOT_EXTENSION_MEMBER('pg_class', 'c.oid')}
        -- a sequence that belongs to a column goes with its table
        AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
     UNION ALL
     SELECT 'type ' || quote_ident(n.nspname) || '.' || quote_ident(t.typname) || ' (owner ' || pg_get_userbyid(t.typowner) || ')'
       FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE t.typtype IN ('e', 'd', 'r') AND ${USER_SCHEMA} AND ${FOREIGN('t.typowner')} AND ${NOT_EXTENSION_MEMBER('pg_type', 't.oid')}
     UNION ALL
     SELECT 'function ' || quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ') (owner ' || pg_get_userbyid(p.proowner) || ')'
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE ${USER_SCHEMA} AND ${FOREIGN('p.proowner')} AND ${NOT_EXTENSION_MEMBER('pg_proc', 'p.oid')}
     UNION ALL
     SELECT 'extension ' || quote_ident(x.extname) || ' (owner ' || pg_get_userbyid(x.extowner) || ')'
       FROM pg_extension x WHERE NOT x.extname = ANY($2) AND ${FOREIGN('x.extowner')}
     ORDER BY 1`,
    [baseline.schemas, baseline.extensions],
  );
  return res.rows.map((r) => r.o as string);
}

export async function resetTargetToBaseline(client: Client, baseline: TargetBaseline): Promise<ResetResult> {
  await client.query('SET default_transaction_read_only = off');
  await client.query('BEGIN');
  try {
    const foreignBefore = await foreignObjects(client, baseline);
    // The CDC methods' cutover marker lives in its own schema, created by the migration.
    await client.query('DROP SCHEMA IF EXISTS _pgmig CASCADE');
    const keep = new Set(baseline.schemas);
    const others = new Set(
      (await client.query(`SELECT nspname FROM pg_namespace WHERE ${FOREIGN('nspowner')}`)).rows.map((r) => r.nspname as string),
    );
    const droppedSchemas = (await listUserSchemas(client)).filter((s) => !keep.has(s) && !others.has(s));
    for (const schema of droppedSchemas) await client.query(`DROP SCHEMA IF EXISTS ${qi(schema)} CASCADE`);

    const extensions = (await client.query(`SELECT extname FROM pg_extension WHERE NOT (${FOREIGN('extowner')})`)).rows.map(
      (r) => r.extname as string,
    );
    const droppedExtensions = extensions.filter((e) => !baseline.extensions.includes(e));
    for (const ext of droppedExtensions) await client.query(`DROP EXTENSION IF EXISTS ${qi(ext)} CASCADE`);

    // What the migration's role owns in the schemas that existed before was restored by us.
    const objects = await client.query(
      `SELECT 'TABLE' AS kind, n.nspname AS schema, c.relname AS name, NULL AS args FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'f') AND n.nspname = ANY($1) AND NOT c.relispartition AND NOT (${FOREIGN('c.relowner')})
       UNION ALL
       SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'SEQUENCE' END, n.nspname, c.relname, NULL
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('v', 'm', 'S') AND n.nspname = ANY($1) AND NOT (${FOREIGN('c.relowner')})
       UNION ALL
       SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, n.nspname, t.typname, NULL
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype IN ('e', 'd', 'r') AND n.nspname = ANY($1) AND NOT (${FOREIGN('t.typowner')})
       UNION ALL
       SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END, n.nspname, p.proname,
              pg_get_function_identity_arguments(p.oid)
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = ANY($1) AND NOT (${FOREIGN('p.proowner')})`,
      [baseline.schemas],
    );
    for (const o of objects.rows) {
      const name = qname(o.schema, o.name) + (o.args !== null ? `(${o.args})` : '');
      await client.query(`DROP ${o.kind} IF EXISTS ${name} CASCADE`);
    }
    if (baseline.largeObjects === 0) {
      await client.query(`SELECT lo_unlink(oid) FROM pg_largeobject_metadata WHERE NOT (${FOREIGN('lomowner')})`);
    }
    const keptForeign = await foreignObjects(client, baseline);
    const droppedForeign = foreignBefore.filter((o) => !keptForeign.includes(o));
    await client.query('COMMIT');
    return {
      droppedSchemas,
      droppedObjects: objects.rowCount ?? 0,
      droppedExtensions,
      ...(keptForeign.length ? { keptForeign } : {}),
      ...(droppedForeign.length ? { droppedForeign } : {}),
    };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
