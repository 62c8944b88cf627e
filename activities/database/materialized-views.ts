/**
 * Materialized views after a schema-only copy: pg_dump --schema-only has no MATERIALIZED VIEW DATA, so
 * they exist on the target unpopulated and every query on them fails. Those populated on the source are
 * refreshed on the target once its data is in, each after the views and materialized views it reads.
 */
import type { Client } from 'pg';
import { isOwnSchemaSql } from '../methods/cdc/marker';
import { qname } from './pg';

export interface ViewNode {
  oid: number;
  schema: string;
  name: string;
  kind: 'm' | 'v';
  populated: boolean;
  /** Views and materialized views this one reads (by oid). */
  reads: number[];
}

/**
 * The populated materialized views in an order where each comes after every materialized view it reads,
 * directly or through plain views. Pure. A cycle cannot exist in PostgreSQL; one would be cut, not looped.
 */
export function refreshOrder(nodes: ViewNode[]): { schema: string; name: string }[] {
  const byOid = new Map(nodes.map((n) => [n.oid, n]));
  const seen = new Set<number>();
  const order: { schema: string; name: string }[] = [];
  const visit = (node: ViewNode) => {
    if (seen.has(node.oid)) return;
    seen.add(node.oid);
    for (const oid of node.reads) {
      const read = byOid.get(oid);
      if (read) visit(read);
    }
    if (node.kind === 'm' && node.populated) order.push({ schema: node.schema, name: node.name });
  };
  for (const node of [...nodes].sort((a, b) => a.schema.localeCompare(b.schema) || a.name.localeCompare(b.name))) visit(node);
  return order;
}

/** The user's views and materialized views with what each reads (its rewrite rule's dependencies). */
export async function viewGraph(client: Client): Promise<ViewNode[]> {
  const res = await client.query<{ oid: number; schema: string; name: string; kind: 'm' | 'v'; populated: boolean; reads: number[] }>(
    `WITH rels AS (
       SELECT c.oid, n.nspname, c.relname, c.relkind, c.relispopulated FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('m', 'v') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND NOT ${isOwnSchemaSql('n.nspname')}
     )
     SELECT r.oid::int8 AS oid, r.nspname AS schema, r.relname AS name, r.relkind AS kind, r.relispopulated AS populated,
            coalesce((SELECT array_agg(DISTINCT d.refobjid::int8) FROM pg_rewrite w
                        JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid AND d.refclassid = 'pg_class'::regclass
                       WHERE w.ev_class = r.oid AND d.refobjid <> r.oid AND d.refobjid IN (SELECT oid FROM rels)), '{}') AS reads
       FROM rels r`,
  );
  return res.rows.map((r) => ({ ...r, oid: Number(r.oid), reads: r.reads.map(Number) }));
}

/**
 * REFRESH on `target` of every materialized view populated on `source`, in dependency order. Idempotent.
 * Returns the names refreshed, as `schema.name`.
 */
export async function refreshMaterializedViews(source: Client, target: Client): Promise<string[]> {
  const order = refreshOrder(await viewGraph(source));
  if (!order.length) return [];
  await target.query('SET default_transaction_read_only = off');
  // A role's statement timeout must not cut the refresh of a large view.
  await target.query('SET statement_timeout = 0');
  for (const m of order) await target.query(`REFRESH MATERIALIZED VIEW ${qname(m.schema, m.name)}`);
  return order.map((m) => `${m.schema}.${m.name}`);
}
