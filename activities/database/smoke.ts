/**
 * Smoke tests against the target with the application's own URL, while the target is still
 * read-only for the application: each check opens an explicit READ WRITE transaction.
 */
import type { Client } from 'pg';
import type { TableInventory } from '../../contract/plan';
import { listSequences } from './inventory';
import { qi, qname } from './pg';
import { missingPrivileges, touchObjects, type HeldPrivilege } from './smoke-privileges';

/** The application's privileges on the source and, as the connected role, on the target: checked and used object by object. */
export interface PrivilegeExpectation {
  onSource: HeldPrivilege[];
  onTarget: HeldPrivilege[];
}

export interface SmokeCheck {
  name: string;
  ok: boolean;
  detail: string;
  ms: number;
}

async function timed(name: string, fn: () => Promise<string>): Promise<SmokeCheck> {
  const started = Date.now();
  try {
    return { name, ok: true, detail: await fn(), ms: Date.now() - started };
  } catch (err) {
    return { name, ok: false, detail: (err as Error).message, ms: Date.now() - started };
  }
}

async function inRolledBackWrite<T>(client: Client, fn: () => Promise<T>): Promise<T> {
  await client.query('BEGIN READ WRITE');
  try {
    return await fn();
  } finally {
    await client.query('ROLLBACK');
  }
}

export async function runSmokeChecks(
  client: Client,
  tables: TableInventory[],
  extraSql: string[],
  privileges?: PrivilegeExpectation,
): Promise<SmokeCheck[]> {
  // With the role's privileges known, the representative checks use only what it may use (as on the source).
  const may = (kind: HeldPrivilege['kind'], name: string, privilege: string) =>
    !privileges || privileges.onTarget.some((p) => p.kind === kind && p.name === name && p.privilege === privilege);
  const largest = [...tables]
    .filter((t) => !t.partitioned && may('table', qname(t.schema, t.name), 'SELECT') && may('table', qname(t.schema, t.name), 'UPDATE'))
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, 5);
  const checks: SmokeCheck[] = [];
  checks.push(
    await timed('read', async () => {
      for (const t of largest) await client.query(`SELECT * FROM ${qname(t.schema, t.name)} LIMIT 10`);
      return `read ${largest.length} of the largest tables`;
    }),
  );
  checks.push(
    await timed('write', async () => {
      await client.query('BEGIN READ WRITE');
      await client.query('CREATE TEMP TABLE pgmig_smoke (id serial PRIMARY KEY, at timestamptz DEFAULT now()) ON COMMIT DROP');
      const res = await client.query('INSERT INTO pgmig_smoke DEFAULT VALUES RETURNING id');
      await client.query('COMMIT');
      return `committed a write (id ${res.rows[0].id})`;
    }),
  );
  checks.push(
    await timed('transaction', async () => {
      // The representative transaction: take the next id of every serial/identity column (an insert
      // after cutover must not collide) and update a row of each checked table, then roll back.
      return inRolledBackWrite(client, async () => {
        let sequences = 0;
        for (const seq of await listSequences(client)) {
          if (!seq.ownedBy || !may('sequence', qname(seq.schema, seq.name), 'USAGE')) continue;
          if (!may('table', qname(seq.ownedBy.schema, seq.ownedBy.table), 'SELECT')) continue;
          const next = (await client.query('SELECT nextval($1::regclass)::text AS v', [qname(seq.schema, seq.name)])).rows[0].v;
          const clash = await client.query(
            `SELECT 1 FROM ${qname(seq.ownedBy.schema, seq.ownedBy.table)} WHERE ${qi(seq.ownedBy.column)} = $1 LIMIT 1`,
            [next],
          );
          if (clash.rowCount)
            throw new Error(`next value ${next} of ${seq.schema}.${seq.name} already exists in ${seq.ownedBy.table}.${seq.ownedBy.column}`);
          sequences += 1;
        }
        let updated = 0;
        for (const t of largest) {
          // Rewriting one row to itself takes the same locks and fires the same triggers and FK checks as a real update.
          const cols = await client.query(
            `SELECT a.attname FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
               AND a.attgenerated = '' AND a.attidentity <> 'a' ORDER BY a.attnum LIMIT 1`,
            [qname(t.schema, t.name)],
          );
          if (!cols.rowCount) continue;
          const c = qi(cols.rows[0].attname);
          const res = await client.query(
            `UPDATE ${qname(t.schema, t.name)} SET ${c} = ${c} WHERE ctid = (SELECT ctid FROM ${qname(t.schema, t.name)} LIMIT 1)`,
          );
          updated += res.rowCount ?? 0;
        }
        return `next ids of ${sequences} sequences are free; updated a row in ${updated} tables; rolled back`;
      });
    }),
  );
  if (privileges) {
    checks.push(
      await timed('privileges', async () => {
        const missing = missingPrivileges(privileges.onSource, privileges.onTarget);
        if (missing.length)
          throw new Error(
            `held on the source, missing on the target: ${missing.slice(0, 20).join('; ')}${missing.length > 20 ? `; and ${missing.length - 20} more` : ''}`,
          );
        return `${privileges.onSource.length} privileges of the source held on the target`;
      }),
    );
    checks.push(
      await timed('objects', async () => {
        const { touched, failures } = await touchObjects(client, privileges.onTarget);
        if (failures.length) throw new Error(failures.slice(0, 10).join('; '));
        return `used ${touched} objects (tables read and written, sequences advanced, large objects read); rolled back`;
      }),
    );
  }
  for (const [i, sql] of extraSql.entries()) {
    checks.push(
      await timed(`sql-${i + 1}`, () => inRolledBackWrite(client, async () => `${(await client.query(sql)).rowCount ?? 0} rows`)),
    );
  }
  return checks;
}
