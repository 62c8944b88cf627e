/** Catalogs of ownership and privileges compared across source and target (role mapping applied). */
import type { Client } from 'pg';
import { expect } from 'vitest';
import type { AclEntry, PrivilegeCatalog } from '../../activities/database/privileges';
import { WHOLE_DATABASE } from '../fixtures/whole-database';

/** Each object's owner and privileges as "kind name: owner" / "kind name: grantee PRIV[*]", source roles mapped. */
export function describeCatalog(catalog: PrivilegeCatalog, mapRole: (r: string) => string): string[] {
  const entry = (e: AclEntry) => `${e.grantee === 'PUBLIC' ? 'PUBLIC' : mapRole(e.grantee)} ${e.privilege}${e.grantable ? '*' : ''}`;
  return [
    ...catalog.objects.flatMap((o) => [
      `${o.kind} ${o.name}: owner ${mapRole(o.owner)}`,
      ...o.acl.map((e) => `${o.kind} ${o.name}: ${entry(e)}`),
    ]),
    ...catalog.columns.flatMap((c) => c.acl.map((e) => `column ${c.table}.${c.column}: ${entry(e)}`)),
    ...catalog.defaultPrivileges.flatMap((d) =>
      d.acl.map((e) => `default ${mapRole(d.role)} ${d.schema ?? '*'} ${d.objectType}: ${entry(e)}`),
    ),
  ].sort();
}

/**
 * As the application's role on the target, in a transaction rolled back at the end: writes and reads
 * each kind of object of the whole-database fixture (identity and generated columns, the enum, the
 * materialized view, the view, partitions, the keyless table, sequences, large objects, a function).
 */
export async function useEveryObject(c: Client): Promise<void> {
  await c.query('BEGIN');
  try {
    const [order] = (
      await c.query(`INSERT INTO ${WHOLE_DATABASE.orders} ("CustomerName", amount) VALUES ('roles test', 5) RETURNING id, gross`)
    ).rows;
    expect(Number(order.gross)).toBe(6);
    await c.query(`UPDATE ${WHOLE_DATABASE.orders} SET status = 'paid' WHERE id = $1`, [order.id]);
    expect((await c.query(`SELECT count(*)::int AS n FROM ${WHOLE_DATABASE.matview}`)).rows[0].n).toBe(3);
    expect((await c.query(`SELECT count(*)::int AS n FROM ${WHOLE_DATABASE.view}`)).rows[0].n).toBeGreaterThan(0);
    await c.query(`INSERT INTO ${WHOLE_DATABASE.events} VALUES (999999, '2026-02-01', '{}')`);
    await c.query(`INSERT INTO ${WHOLE_DATABASE.notes} (body) VALUES ('from the target')`);
    expect(Number((await c.query(`SELECT nextval('"Sales".invoice_no') AS v`)).rows[0].v)).toBeGreaterThan(1234);
    const docs = (await c.query(`SELECT title, content::text AS oid FROM ${WHOLE_DATABASE.documents} ORDER BY id`)).rows;
    expect(docs).toHaveLength(WHOLE_DATABASE.largeObjects);
    for (const d of docs) {
      const head = (await c.query(`SELECT convert_from(lo_get($1::oid, 0, 5), 'UTF8') AS h`, [d.oid])).rows[0].h;
      expect(head).toHaveLength(5); // its content is compared with the source's elsewhere
    }
    const lo = (await c.query(`SELECT lo_from_bytea(0, 'new') AS oid`)).rows[0].oid;
    await c.query(`INSERT INTO ${WHOLE_DATABASE.documents} (title, content) VALUES ('new', $1)`, [lo]);
    expect((await c.query(`SELECT "Sales".order_count() AS n`)).rows[0].n).toBeDefined();
  } finally {
    await c.query('ROLLBACK');
  }
}
