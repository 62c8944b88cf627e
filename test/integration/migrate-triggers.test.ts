/**
 * The `triggers` method from a Heroku-like source (its role owns the database and tables, nothing more:
 * no REPLICATION, so no slot and no publication) while the application writes: the stand-in application
 * (inserts, updates, deletes in one transaction every 10 ms), a second writer doing
 * primary-key changes and TRUNCATEs, and a transaction that stays open across the initial copy and
 * commits late. Every acknowledged write arrives exactly once, the tables are equal row for row, and
 * the source is left exactly as found: no trigger, function or schema of the migration, no lock.
 */
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureNames } from '../../activities/methods/triggers/names';
import { approveUpdate, statusQuery, type MigrationResult, type MigrationStatus } from '../../signals';
import { AppWriter, type WriterStats } from '../../stack/app-writer';
import { expectEveryAckedWriteOnce, historyText, openSandbox, query, recordHistory, untilStatus, type Sandbox } from '../helpers/harness';
import { migrationResult } from '../../signals/outcome';

let sandbox: Sandbox;
let result: MigrationResult;
let status: MigrationStatus;
let writes: WriterStats;
let churn: { ops: number; keyChanges: number; truncates: number; stoppedBy: string };
let lateCommit: { committedAt: number; rows: number };
let history: string;

/** Both sides' rows of `table`, in key order, as one md5 and a count. */
const fingerprint = async (url: string, table: string) =>
  (
    await query<{ n: number; md5: string }>(
      url,
      `SELECT count(*)::int AS n, md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS md5 FROM ${table} t`,
    )
  )[0];

/**
 * A second session churns two tables until the source refuses writes: inserts, updates, primary-key
 * changes, deletes, and a TRUNCATE now and then. (As the owner: a role the source role can neither see
 * nor end the sessions of would keep writing through the freeze, which preflight refuses.)
 */
async function churnUntilFrozen(url: string): Promise<typeof churn> {
  const connect = async () => {
    const client = new Client({ connectionString: url });
    client.on('error', () => undefined); // the freeze terminates the session: the next query fails, and we reconnect
    await client.connect();
    return client;
  };
  let c = await connect();
  const done = { ops: 0, keyChanges: 0, truncates: 0, stoppedBy: '' };
  try {
    for (let i = 1; ; i++) {
      try {
        await c.query('BEGIN');
        await c.query('INSERT INTO public.churn (id, v) VALUES ($1, $2)', [i, `row ${i}`]);
        await c.query('UPDATE public.churn SET v = v || $2 WHERE id = $1', [i - 1, ' updated']);
        if (i % 3 === 0) {
          // A key change: the row moves to a new primary key.
          await c.query('UPDATE public.churn SET id = -id WHERE id = $1', [i - 2]);
          done.keyChanges++;
        }
        if (i % 5 === 0) await c.query('DELETE FROM public.churn WHERE id = $1', [i - 4]);
        await c.query('INSERT INTO public.scratch (id, v) VALUES ($1, $2)', [i, `scratch ${i}`]);
        if (i % 40 === 0) {
          await c.query('TRUNCATE public.scratch');
          done.truncates++;
        }
        await c.query('COMMIT');
        done.ops++;
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        if ((err as { code?: string }).code === '25006') {
          done.stoppedBy = (err as Error).message; // read-only: the source is frozen
          return done;
        }
        // Terminated by the freeze (as the application's sessions are): reconnect, as an application would.
        await c.end().catch(() => undefined);
        c = await connect();
      }
      await new Promise((r) => setTimeout(r, 15));
    }
  } finally {
    await c.end().catch(() => undefined);
  }
}

beforeAll(async () => {
  sandbox = await openSandbox('triggers', { heroku: true });
  await query(sandbox.sourceUrl, 'CREATE TABLE public.churn (id int PRIMARY KEY, v text NOT NULL)');
  await query(sandbox.sourceUrl, 'CREATE TABLE public.scratch (id int PRIMARY KEY, v text)');
  await query(sandbox.sourceUrl, 'CREATE TABLE public.late (id int PRIMARY KEY, v text)');
  // Large objects, which no trigger sees: copied inside the window.
  for (const text of ['first', 'second', 'x'.repeat(300_000)])
    await query(sandbox.sourceUrl, `SELECT lo_from_bytea(0, convert_to($1, 'UTF8'))`, [text]);
  const [role] = await query<{ rolreplication: boolean; rolsuper: boolean }>(
    sandbox.sourceUrl,
    'SELECT rolreplication, rolsuper FROM pg_roles WHERE rolname = current_user',
  );
  expect(role).toEqual({ rolreplication: false, rolsuper: false });

  const app = new AppWriter(() => sandbox.configuredUrl(), 10, true);
  app.start();
  const churning = churnUntilFrozen(sandbox.sourceUrl);
  await new Promise((r) => setTimeout(r, 300));
  const handle = await sandbox.start(sandbox.triggersInput());
  await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });

  // A transaction begun once the capture is in place, open across the initial copy, committed late.
  await untilStatus(handle, (s) => s.steps.some((st) => st.name === 'start-replication' && st.state === 'completed'), 'capture');
  const late = new Client({ connectionString: sandbox.sourceUrl });
  await late.connect();
  await late.query('BEGIN');
  await late.query(`INSERT INTO public.late SELECT g, 'late ' || g FROM generate_series(1, 500) g`);
  await late.query(`UPDATE public.churn SET v = 'touched by the late transaction' WHERE id BETWEEN 1 AND 3`);
  await untilStatus(handle, (s) => s.steps.some((st) => st.name === 'initial-copy' && st.state === 'completed'), 'the initial copy');
  await new Promise((r) => setTimeout(r, 500)); // other transactions commit and are applied meanwhile
  await late.query('COMMIT');
  lateCommit = { committedAt: Date.now(), rows: 500 };
  await late.end();

  await untilStatus(handle, (s) => s.pendingGate?.gate === 'cutover', 'the cutover gate');
  await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'cutover' }] });
  result = await migrationResult(handle);
  await new Promise((r) => setTimeout(r, 500));
  writes = await app.stop();
  churn = await churning;
  status = await handle.query(statusQuery);
  history = await historyText(handle);
  await recordHistory(handle, 'triggers-completed');
});

afterAll(async () => {
  await sandbox?.close();
});

describe('triggers migration from a source without logical replication', () => {
  it('completes through both gates with a short window, verified at the freeze point', () => {
    expect(result.outcome).toBe('completed');
    expect(result.method).toBe('triggers');
    expect(result.verification).toBe('passed');
    expect(result.catalogDifferences).toEqual([]); // the schema verification finds nothing
    expect(status.steps.map((s) => s.name)).toEqual([
      'preflight',
      'copy-schema',
      'start-replication',
      'initial-copy',
      'indexes',
      'replay-roles',
      'catch-up',
      'refresh-materialized-views',
      'freeze-source',
      'copy-in-window',
      'drain',
      'apply-exit',
      'reconcile-sequences',
      'stop-replication',
      'freeze-target',
      'swap-config',
      'smoke-test',
      'go-live',
      'drop-replication',
      'release-config',
    ]);
    console.log(status.steps.map((s) => `${s.name} ${s.durationMs}ms`).join(', '));
    console.log(
      `triggers cutover: write-freeze window ${result.freezeWindow.durationMs} ms, longest application write gap ${writes.longestGapMs} ms`,
    );
    // The copy's progress, as the status query shows it (percent, rate, time left), and the lag in changes and seconds.
    expect(status.replication?.copy).toMatchObject({ percent: 100, etaSeconds: 0 });
    expect(status.replication?.copy?.bytesDone).toBeGreaterThan(1_000_000);
    expect(status.replication?.copy?.bytesPerSecond).toBeGreaterThan(0);
    expect(status.replication?.lagChanges).toEqual(expect.any(Number));
    expect(churn.stoppedBy).toMatch(/read-only/);
    expect(churn.keyChanges).toBeGreaterThan(3);
    expect(churn.truncates).toBeGreaterThan(0);
  });

  it('has every acknowledged write on the target exactly once', async () => {
    await expectEveryAckedWriteOnce(sandbox.targetUrl, writes);
  });

  it('carried key changes, deletes, truncates and the late transaction: the tables are equal row for row', async () => {
    expect(lateCommit.committedAt).toBeLessThan(result.freezeWindow.frozenAt!);
    // (The application's own tables took writes on the target since go-live: its writes are checked above.)
    for (const table of ['public.churn', 'public.scratch', 'public.late']) {
      expect(await fingerprint(sandbox.targetUrl, table), table).toEqual(await fingerprint(sandbox.sourceUrl, table));
    }
    const [late] = await query<{ n: number }>(sandbox.targetUrl, 'SELECT count(*)::int AS n FROM public.late');
    expect(late.n).toBe(lateCommit.rows);
    const [touched] = await query<{ n: number }>(
      sandbox.targetUrl,
      `SELECT count(*)::int AS n FROM public.churn WHERE v = 'touched by the late transaction'`,
    );
    const [touchedOnSource] = await query<{ n: number }>(
      sandbox.sourceUrl,
      `SELECT count(*)::int AS n FROM public.churn WHERE v = 'touched by the late transaction'`,
    );
    expect(touched.n).toBe(touchedOnSource.n);
  });

  it('copied the large objects, which no trigger sees, inside the window', async () => {
    const objects = (url: string) =>
      query(url, `SELECT oid::int8 AS oid, md5(lo_get(oid)) AS md5 FROM pg_largeobject_metadata ORDER BY oid`);
    const onSource = await objects(sandbox.sourceAdminUrl);
    expect(onSource).toHaveLength(3);
    expect(await objects(sandbox.targetAdminUrl)).toEqual(onSource);
  });

  it('reconciles sequences so new inserts on the target do not collide', async () => {
    const [customer] = await query<{ id: string }>(
      sandbox.targetUrl,
      `INSERT INTO shop.customers (email, name) VALUES ('after@example.com', 'After') RETURNING id`,
    );
    const [max] = await query<{ m: string }>(sandbox.sourceUrl, 'SELECT max(id) AS m FROM shop.customers');
    expect(BigInt(customer.id)).toBeGreaterThan(BigInt(max.m));
  });

  it('leaves nothing of the capture on the source and holds no lock; nothing of it reached the target', async () => {
    const names = captureNames(sandbox.input().migrationId!, 'forward');
    for (const url of [sandbox.sourceAdminUrl, sandbox.targetAdminUrl]) {
      expect(await query(url, `SELECT tgname FROM pg_trigger WHERE tgname LIKE '\\_pgmig%'`)).toEqual([]);
      expect(await query(url, `SELECT nspname FROM pg_namespace WHERE nspname LIKE '\\_pgmig%'`)).toEqual([]);
      expect(await query(url, `SELECT proname FROM pg_proc WHERE pronamespace = to_regnamespace($1)`, [names.schema])).toEqual([]);
    }
    const locks = await query(
      sandbox.sourceAdminUrl,
      `SELECT l.relation::regclass::text AS rel, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND a.application_name LIKE 'pgmig-%'`,
    );
    expect(locks).toEqual([]);
  });

  it('keeps connection strings out of the history', () => {
    expect(history).not.toContain(new URL(sandbox.sourceUrl).password);
    expect(history).not.toContain(new URL(sandbox.targetUrl).password);
  });
});
