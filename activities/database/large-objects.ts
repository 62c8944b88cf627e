/**
 * Large objects live outside any table: no trigger sees them and logical decoding does not carry them.
 * A method that cannot follow them copies them inside the write-freeze window, where they cannot change
 * (their size is in the plan's estimate). Idempotent: an object already on the target is replaced.
 */
import type { Client } from 'pg';

/** Objects per round trip when listing, and per transaction on the target (one commit, one WAL flush, per page). */
const PAGE = 100;

export async function copyLargeObjects(source: Client, target: Client): Promise<{ objects: number; bytes: number }> {
  await target.query('SET default_transaction_read_only = off');
  let last = 0;
  let objects = 0;
  let bytes = 0;
  for (;;) {
    const page = await source.query<{ oid: number }>(
      'SELECT oid::int8 AS oid FROM pg_largeobject_metadata WHERE oid::int8 > $1 ORDER BY oid LIMIT $2',
      [last, PAGE],
    );
    await target.query('BEGIN');
    try {
      for (const { oid } of page.rows) {
        const data = (await source.query<{ data: Buffer }>('SELECT lo_get($1::oid) AS data', [oid])).rows[0].data;
        await target.query('SELECT lo_unlink(oid) FROM pg_largeobject_metadata WHERE oid = $1::oid', [oid]);
        await target.query('SELECT lo_from_bytea($1::oid, $2::bytea)', [oid, data]);
        objects += 1;
        bytes += data.length;
      }
      await target.query('COMMIT');
    } catch (err) {
      await target.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
    if (page.rows.length) last = Number(page.rows[page.rows.length - 1].oid);
    if (page.rows.length < PAGE) return { objects, bytes };
  }
}
