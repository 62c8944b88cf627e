/**
 * Puts the target back to what preflight found: the compensation of the copy, and the first move of a
 * retried copy (idempotency). Preflight refuses non-empty targets, so "what it found" is an empty
 * database with some schemas and extensions, and everything else in it was created by this migration.
 */
import type { Client } from 'pg';
import { listUserSchemas } from './inventory';
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
}

export async function resetTargetToBaseline(client: Client, baseline: TargetBaseline): Promise<ResetResult> {
  await client.query('SET default_transaction_read_only = off');
  await client.query('BEGIN');
  try {
    // The CDC methods' cutover marker lives in its own schema, created by the migration.
    await client.query('DROP SCHEMA IF EXISTS _pgmig CASCADE');
    const keep = new Set(baseline.schemas);
    const droppedSchemas = (await listUserSchemas(client)).filter((s) => !keep.has(s));
    for (const schema of droppedSchemas) await client.query(`DROP SCHEMA IF EXISTS ${qi(schema)} CASCADE`);

    const extensions = (await client.query('SELECT extname FROM pg_extension')).rows.map((r) => r.extname as string);
    const droppedExtensions = extensions.filter((e) => !baseline.extensions.includes(e));
    for (const ext of droppedExtensions) await client.query(`DROP EXTENSION IF EXISTS ${qi(ext)} CASCADE`);

    // Everything left in the schemas that existed before was restored by us.
    const objects = await client.query(
      `SELECT 'TABLE' AS kind, n.nspname AS schema, c.relname AS name, NULL AS args FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'f') AND n.nspname = ANY($1) AND NOT c.relispartition
       UNION ALL
       SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'SEQUENCE' END, n.nspname, c.relname, NULL
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('v', 'm', 'S') AND n.nspname = ANY($1)
       UNION ALL
       SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, n.nspname, t.typname, NULL
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype IN ('e', 'd', 'r') AND n.nspname = ANY($1)
       UNION ALL
       SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END, n.nspname, p.proname,
              pg_get_function_identity_arguments(p.oid)
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = ANY($1)`,
      [baseline.schemas],
    );
    for (const o of objects.rows) {
      const name = qname(o.schema, o.name) + (o.args !== null ? `(${o.args})` : '');
      await client.query(`DROP ${o.kind} IF EXISTS ${name} CASCADE`);
    }
    if (baseline.largeObjects === 0) {
      await client.query('SELECT lo_unlink(oid) FROM pg_largeobject_metadata');
    }
    await client.query('COMMIT');
    return { droppedSchemas, droppedObjects: objects.rowCount ?? 0, droppedExtensions };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
