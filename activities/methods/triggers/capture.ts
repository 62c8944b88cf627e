/**
 * Change capture on the capture side (the source for `forward`, the target for `reverse`), for servers
 * that offer no logical replication (Heroku Postgres): statement-level AFTER triggers with transition
 * tables append each statement's rows to a log table, one INSERT ... SELECT per statement.
 *
 * - Trigger functions SECURITY DEFINER and owned by the installing role, so roles that write the
 *   tables (app_worker) need no privilege on the log; every grant on the capture schema is revoked.
 *   One per table and operation, with its statement (built here from the table's key columns) written
 *   in, so PL/pgSQL keeps its plan.
 * - Rows are aggregated CHUNK_ROWS at a time into one log row, so a huge statement never reaches
 *   json's 1 GB limit (which would fail the application's statement).
 * - json, not jsonb: json keeps the text of json columns as written (jsonb would normalise it) and is
 *   cheaper to build; the applier never needs jsonb's operators on the log.
 * - INSERT logs the new rows; DELETE the old keys (whole old rows for whole-row tables); TRUNCATE a
 *   row without data. Transition tables do not pair old and new rows, so UPDATE logs the keys that
 *   disappeared (old keys not among the new keys: key changes and swaps) and the new rows, each chunk
 *   of both in one log row: the applier deletes the keys and upserts the rows, in either order, because
 *   the two sets never share a key. Whole-row tables log all old rows with the new rows.
 */
import { ApplicationFailure } from '@temporalio/common';
import { escapeLiteral, type Client } from 'pg';
import { qi, qname } from '../../database/pg';
import { MARKER_SCHEMA } from '../cdc/marker';
import { captureKeys, type CaptureTable, type KeylessPolicy, type TableRef } from './keys';
import { describeHolder, inLockWindow, type LockHolder, type LockWindowOptions } from './locks';
import { captureNames, type CaptureDirection, type CaptureNames } from './names';

/** Rows per log row: a 1M-row statement logs 200 log rows. */
export const CHUNK_ROWS = 5000;

const OLD = 'pgmig_old';
const NEW = 'pgmig_new';

/** The statements each of a table's four triggers runs (pure: built once, at install). */
export function captureStatements(log: string, table: CaptureTable) {
  const rel = escapeLiteral(table.rel);
  const keys = table.keyColumns.map(qi).join(', ');
  const wholeRow = table.key === 'whole-row';
  const chunks = (from: string) => `SELECT to_json(r) AS r, (row_number() OVER () - 1) / ${CHUNK_ROWS} AS c FROM ${from} r`;
  const logChunks = (op: 'I' | 'D', column: 'new_rows' | 'old_keys', from: string) =>
    `INSERT INTO ${log} (rel, op, n_rows, ${column}) SELECT ${rel}, '${op}', count(*), json_agg(r) FROM (${chunks(from)}) s GROUP BY c ORDER BY c`;
  const gone = wholeRow ? OLD : `(SELECT ${keys} FROM ${OLD} EXCEPT SELECT ${keys} FROM ${NEW})`;
  return {
    insert: logChunks('I', 'new_rows', NEW),
    delete: logChunks('D', 'old_keys', wholeRow ? OLD : `(SELECT ${keys} FROM ${OLD})`),
    update:
      `WITH new_chunks AS (${chunks(NEW)}), gone_chunks AS (${chunks(gone)}) ` +
      `INSERT INTO ${log} (rel, op, n_rows, old_keys, new_rows) SELECT ${rel}, 'U', n.n, g.rows, n.rows ` +
      `FROM (SELECT c, count(*) AS n, json_agg(r) AS rows FROM new_chunks GROUP BY c) n ` +
      `LEFT JOIN (SELECT c, json_agg(r) AS rows FROM gone_chunks GROUP BY c) g USING (c) ORDER BY c`,
    truncate: `INSERT INTO ${log} (rel, op, n_rows) VALUES (${rel}, 'T', 0)`,
  };
}

/** A dollar-quote tag that does not occur in `body` (a table name could hold any text). */
function dollarTag(body: string): string {
  let n = 0;
  while (body.includes(`$pgmig${n}$`)) n++;
  return `$pgmig${n}$`;
}

/**
 * The four trigger functions of `table` (its statements written in, so their plans are kept), owned by
 * the installing role and executable by it alone, and CREATE OR REPLACE TRIGGER for its four triggers.
 * Settings that change how to_json renders values are pinned, so every writer's session logs the same text.
 */
export function triggerDdl(names: CaptureNames, table: CaptureTable): string[] {
  const s = captureStatements(names.log, table);
  const t = names.triggers;
  const fn = (op: 'i' | 'u' | 'd' | 't', sql: string) => {
    const body = `BEGIN ${sql}; RETURN NULL; END`;
    const tag = dollarTag(body);
    const name = names.functionFor(table.rel, op);
    return [
      `CREATE OR REPLACE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
         SET search_path = pg_catalog, pg_temp SET extra_float_digits = 1 SET bytea_output = 'hex' SET IntervalStyle = 'postgres'
       AS ${tag}${body}${tag}`,
      // Nobody but the owner may attach it: it writes the log as the owner.
      `REVOKE ALL ON FUNCTION ${name}() FROM PUBLIC`,
    ];
  };
  const run = (op: 'i' | 'u' | 'd' | 't') => `FOR EACH STATEMENT EXECUTE FUNCTION ${names.functionFor(table.rel, op)}()`;
  return [
    ...fn('i', s.insert),
    ...fn('u', s.update),
    ...fn('d', s.delete),
    ...fn('t', s.truncate),
    `CREATE OR REPLACE TRIGGER ${qi(t.insert)} AFTER INSERT ON ${table.rel} REFERENCING NEW TABLE AS ${NEW} ${run('i')}`,
    `CREATE OR REPLACE TRIGGER ${qi(t.update)} AFTER UPDATE ON ${table.rel} REFERENCING OLD TABLE AS ${OLD} NEW TABLE AS ${NEW} ${run('u')}`,
    `CREATE OR REPLACE TRIGGER ${qi(t.delete)} AFTER DELETE ON ${table.rel} REFERENCING OLD TABLE AS ${OLD} ${run('d')}`,
    `CREATE OR REPLACE TRIGGER ${qi(t.truncate)} AFTER TRUNCATE ON ${table.rel} ${run('t')}`,
  ];
}

/** The log, its sequence, the registry and the function; every grant but the owner's revoked. One transaction. */
async function createCaptureObjects(client: Client, names: CaptureNames): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${qi(names.schema)}`);
    // CACHE 1: ids are handed out in the order statements end, which the apply's horizon relies on.
    await client.query(`CREATE SEQUENCE IF NOT EXISTS ${names.logSequence} AS bigint CACHE 1`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${names.log} (
         id bigint PRIMARY KEY DEFAULT nextval(${escapeLiteral(names.logSequence)}::regclass),
         xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
         captured_at timestamptz NOT NULL DEFAULT clock_timestamp(),
         rel text NOT NULL,
         op "char" NOT NULL,
         n_rows int NOT NULL,
         old_keys json,
         new_rows json)`,
    );
    await client.query(`ALTER SEQUENCE ${names.logSequence} OWNED BY ${names.log}.id`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${names.registry} (rel text PRIMARY KEY, key text NOT NULL, key_columns text[] NOT NULL)`,
    );
    // Default privileges may have granted writers access to the new objects: nobody but the owner may
    // touch the log, and nobody but the owner may attach the function (it runs its argument as the owner).
    const grantees = await client.query<{ grantee: string }>(
      `SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END AS grantee
         FROM (SELECT (aclexplode(coalesce(nspacl, acldefault('n', nspowner)))).* FROM pg_namespace WHERE nspname = $1
               UNION ALL SELECT (aclexplode(coalesce(relacl, acldefault('r', relowner)))).* FROM pg_class WHERE relnamespace = $1::regnamespace
               UNION ALL SELECT (aclexplode(coalesce(proacl, acldefault('f', proowner)))).* FROM pg_proc WHERE pronamespace = $1::regnamespace) a
        WHERE a.grantee <> a.grantor`,
      [names.schema],
    );
    if (grantees.rowCount) {
      const from = grantees.rows.map((g) => g.grantee).join(', ');
      const schema = qi(names.schema);
      await client.query(`REVOKE ALL ON SCHEMA ${schema} FROM ${from}`);
      await client.query(`REVOKE ALL ON ALL TABLES IN SCHEMA ${schema} FROM ${from}`);
      await client.query(`REVOKE ALL ON ALL SEQUENCES IN SCHEMA ${schema} FROM ${from}`);
      await client.query(`REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ${schema} FROM ${from}`);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

export interface InstallCaptureOptions extends LockWindowOptions {
  migrationId: string;
  direction: CaptureDirection;
  /** The tables to capture (partition trees are captured whole); add `markerTableRef(migrationId)` for the cutover marker. */
  tables: TableRef[];
  policy: KeylessPolicy;
}

export interface InstallCaptureResult {
  schema: string;
  /** Tables that got their triggers now, and those that had them already (an earlier, interrupted install). */
  installed: string[];
  alreadyInstalled: string[];
}

const blockedMessage = (blocked: { table: string; holders: LockHolder[] }[], what: string) =>
  blocked
    .map(
      ({ table, holders }) =>
        `${table}: ${holders.length ? holders.map(describeHolder).join('; ') : 'no conflicting lock visible any more'}`,
    )
    .join(' | ') + ` (${what})`;

/**
 * Installs the capture: idempotent (an interrupted install is completed; tables that have every
 * trigger are not locked again). Each table gets its triggers in its own short transaction under a
 * SHARE ROW EXCLUSIVE lock taken with a lock_timeout: the lock waits for the table's in-flight writers,
 * so once the triggers commit no uncaptured change is in progress. Tables refused by `captureKeys`, or
 * still locked after every try, fail the install (non-retryable) naming each of them, after the
 * others were installed; a blocked table keeps nothing.
 */
export async function installCapture(client: Client, opts: InstallCaptureOptions): Promise<InstallCaptureResult> {
  const names = captureNames(opts.migrationId, opts.direction);
  await client.query('SET default_transaction_read_only = off');
  const keys = await captureKeys(client, opts.tables, opts.policy);
  if (keys.refused.length) {
    throw ApplicationFailure.nonRetryable(
      `cannot capture the changes of ${keys.refused.length} table(s): ${keys.refused.join('; ')}`,
      'CaptureRefused',
    );
  }
  await createCaptureObjects(client, names);
  const existing = await client.query<{ schema: string; name: string; n: number }>(
    `SELECT n.nspname AS schema, c.relname AS name, count(*)::int AS n
       FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE t.tgname = ANY($1) AND t.tgfoid IN (SELECT oid FROM pg_proc WHERE pronamespace = to_regnamespace($2)) GROUP BY 1, 2`,
    [Object.values(names.triggers), qi(names.schema)],
  );
  const complete = new Set(existing.rows.filter((r) => r.n === 4).map((r) => qname(r.schema, r.name)));
  const result: InstallCaptureResult = { schema: names.schema, installed: [], alreadyInstalled: [] };
  const blocked: { table: string; holders: LockHolder[] }[] = [];
  for (const table of keys.tables) {
    if (complete.has(table.rel)) {
      result.alreadyInstalled.push(`${table.schema}.${table.name}`);
      continue;
    }
    const holders = await inLockWindow(client, table.rel, 'SHARE ROW EXCLUSIVE', opts, async () => {
      await client.query(
        `INSERT INTO ${names.registry} (rel, key, key_columns) VALUES ($1, $2, $3)
           ON CONFLICT (rel) DO UPDATE SET key = EXCLUDED.key, key_columns = EXCLUDED.key_columns`,
        [table.rel, table.key, table.keyColumns],
      );
      for (const ddl of triggerDdl(names, table)) await client.query(ddl);
    });
    if (holders) blocked.push({ table: `${table.schema}.${table.name}`, holders });
    else result.installed.push(`${table.schema}.${table.name}`);
  }
  if (blocked.length) {
    throw ApplicationFailure.nonRetryable(
      `could not lock ${blocked.length} table(s) to install the change capture, each held by a long transaction: ${blockedMessage(
        blocked,
        'the other tables are captured; end those transactions and retry',
      )}`,
      'CaptureLockTimeout',
    );
  }
  return result;
}

/**
 * Removes everything of the migration's capture in `direction` from this database: its triggers on
 * every table (found in pg_trigger by name and by function, so no table list is needed), the function,
 * the log and the schema, and the apply state if it lives here (run it on both sides to remove a
 * direction entirely). Idempotent. Drops are RESTRICT: nothing outside the migration's own objects can go
 * with them. Each table's triggers go in a short transaction under a lock_timeout; a table that stays
 * locked fails the removal (retryable: an undo keeps trying) naming who holds it. No lock is held after.
 */
export async function removeCapture(
  client: Client,
  migrationId: string,
  direction: CaptureDirection,
  opts: LockWindowOptions = {},
): Promise<string[]> {
  const names = captureNames(migrationId, direction);
  await client.query('SET default_transaction_read_only = off');
  const dropped: string[] = [];
  const triggers = await client.query<{ schema: string; name: string; triggers: string[] }>(
    `SELECT n.nspname AS schema, c.relname AS name, array_agg(t.tgname::text ORDER BY t.tgname) AS triggers
       FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE t.tgname = ANY($1) OR t.tgfoid IN (SELECT oid FROM pg_proc WHERE pronamespace = to_regnamespace($2))
      GROUP BY 1, 2 ORDER BY 1, 2`,
    [Object.values(names.triggers), qi(names.schema)],
  );
  const blocked: { table: string; holders: LockHolder[] }[] = [];
  for (const t of triggers.rows) {
    const rel = qname(t.schema, t.name);
    const holders = await inLockWindow(client, rel, 'ACCESS EXCLUSIVE', opts, async () => {
      for (const trigger of t.triggers) await client.query(`DROP TRIGGER IF EXISTS ${qi(trigger)} ON ${rel}`);
    });
    if (holders) blocked.push({ table: `${t.schema}.${t.name}`, holders });
    else dropped.push(...t.triggers.map((trigger) => `trigger ${trigger} on ${t.schema}.${t.name}`));
  }
  if (blocked.length) {
    throw ApplicationFailure.retryable(
      `could not lock ${blocked.length} table(s) to remove the change capture's triggers: ${blockedMessage(blocked, 'retried')}`,
      'CaptureLockTimeout',
    );
  }
  const present = await client.query<{ schema: boolean; state: boolean }>(
    `SELECT to_regnamespace($1) IS NOT NULL AS schema, to_regclass($2) IS NOT NULL AS state`,
    [qi(names.schema), names.applyState],
  );
  if (present.rows[0].schema) {
    const functions = await client.query<{ fn: string }>(
      `SELECT p.oid::regprocedure::text AS fn FROM pg_proc p WHERE p.pronamespace = to_regnamespace($1)`,
      [qi(names.schema)],
    );
    for (const { fn } of functions.rows) await client.query(`DROP FUNCTION IF EXISTS ${fn}`);
    await client.query(`DROP TABLE IF EXISTS ${names.log}, ${names.registry}`);
    await client.query(`DROP SCHEMA ${qi(names.schema)}`);
    dropped.push(`schema ${names.schema} (change log, registry, ${functions.rowCount} trigger functions)`);
  }
  if (present.rows[0].state) {
    await client.query(`DROP TABLE ${names.applyState}`);
    dropped.push(`apply state ${MARKER_SCHEMA}.${names.applyStateTable}`);
    // The marker schema goes with its last table (the markers may have been dropped before).
    const empty = await client.query(`SELECT 1 FROM pg_class WHERE relnamespace = to_regnamespace($1)`, [qi(MARKER_SCHEMA)]);
    if (!empty.rowCount) await client.query(`DROP SCHEMA IF EXISTS ${qi(MARKER_SCHEMA)}`);
  }
  return dropped;
}
