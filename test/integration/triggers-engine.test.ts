/**
 * The triggers method's engine on the stack's two PostgreSQL clusters, without Temporal: capture with
 * statement triggers on the source, the snapshot copy, and the apply to the target. Each test has its
 * own pair of databases with the same DDL on both sides and compares every table row by row.
 */
import { randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, qi, qname } from '../../activities/database/pg';
import { drainToMarker, ensureMarker, replicationNames } from '../../activities/methods/cdc/marker';
import { applyBatch, ApplyContext, applyUntil, prepareApplySession } from '../../activities/methods/triggers/apply';
import { disableUserTriggers, enableUserTriggers } from '../../activities/methods/triggers/apply-mode';
import { loadTargetTable } from '../../activities/methods/triggers/apply-sql';
import { CHUNK_ROWS, installCapture, removeCapture } from '../../activities/methods/triggers/capture';
import type { TableRef } from '../../activities/methods/triggers/keys';
import { captureLag } from '../../activities/methods/triggers/log';
import { captureNames, markerTableRef } from '../../activities/methods/triggers/names';
import { snapshotCopy, type SnapshotCopyOptions } from '../../activities/methods/triggers/snapshot-copy';
import { readApplyState } from '../../activities/methods/triggers/state';
import { createSourceDatabase, createTargetDatabase, databaseUrl, dropDatabase, loadStackEnv, type StackEnv } from '../../stack';

let env: StackEnv;
const databases: { source: string; target: string }[] = [];
const sessions: Client[] = [];
const roles: string[] = [];
/** The application writers' stop flag: set by each test, and by the teardown if a test failed before. */
const writing = { stop: false };

interface Pair {
  migrationId: string;
  /** The source as `app` (owner), as `app_worker`, as the superuser; the target as `rds_master` and as the superuser. */
  source: string;
  sourceWorker: string;
  sourceAdmin: string;
  target: string;
  targetAdmin: string;
  targetDb: string;
}

/** Fresh databases on both clusters; the migration id has capitals and dots (its names are hashed). */
async function pair(name: string): Promise<Pair> {
  const id = `${name}_${randomBytes(3).toString('hex')}`;
  const db = { source: `trg_src_${id}`, target: `trg_tgt_${id}` };
  databases.push(db);
  return {
    migrationId: `Triggers-Engine.${id}`,
    source: await createSourceDatabase(env, db.source),
    sourceWorker: databaseUrl(env.SOURCE_WORKER_DATABASE_URL, db.source),
    sourceAdmin: databaseUrl(env.SOURCE_ADMIN_URL, db.source),
    target: await createTargetDatabase(env, db.target),
    targetAdmin: databaseUrl(env.TARGET_ADMIN_URL, db.target),
    targetDb: db.target,
  };
}

/** The initial copy of `tables` from the pair's source to its target (or `targetUrl`). */
function copy(p: Pair, tables: TableRef[], jobs: number, extra: Partial<SnapshotCopyOptions> = {}, targetUrl = p.target) {
  return snapshotCopy({
    migrationId: p.migrationId,
    direction: 'forward',
    sourceUrl: p.source,
    targetUrl,
    applicationName: 'triggers-engine-copy',
    tables,
    jobs,
    ...extra,
  });
}

/** A session with the migration's settings (the same rendering of values on both sides). */
async function open(url: string, label = 'test'): Promise<Client> {
  const client = await connect(url, { label, applicationName: `triggers-engine-${label}` });
  sessions.push(client);
  return client;
}

async function sql<T = Record<string, unknown>>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const client = await open(url);
  try {
    return (await client.query(text, params)).rows as T[];
  } finally {
    await client.end();
  }
}

/** Row count and md5 of the ordered rows of each table (duplicates count: a doubled row changes both). */
async function fingerprint(url: string, tables: TableRef[]): Promise<Record<string, string>> {
  const client = await open(url);
  try {
    const out: Record<string, string> = {};
    for (const t of tables) {
      const r = await client.query<{ n: string; h: string }>(
        `SELECT count(*) AS n, md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) AS h FROM ${qname(t.schema, t.name)} x`,
      );
      out[`${t.schema}.${t.name}`] = `${r.rows[0].n} rows, md5 ${r.rows[0].h}`;
    }
    return out;
  } finally {
    await client.end();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const markerApplied = (target: Client, migrationId: string) => async () =>
  ((await target.query(`SELECT 1 FROM ${replicationNames(migrationId).marker} WHERE id = 1`)).rowCount ?? 0) > 0;

beforeAll(() => {
  env = loadStackEnv();
});

afterAll(async () => {
  writing.stop = true;
  await Promise.all(sessions.map((c) => c.end().catch(() => undefined)));
  for (const db of databases) {
    await dropDatabase(env.SOURCE_ADMIN_URL, db.source);
    await dropDatabase(env.TARGET_ADMIN_URL, db.target);
  }
  for (const role of roles) await sql(env.TARGET_ADMIN_URL, `DROP ROLE IF EXISTS ${qi(role)}`);
});

// Names with quotes, a newline, a space and non-ASCII characters.
const ODD_SCHEMA = 'Odd "Schema"\nü';
const ODD = { schema: ODD_SCHEMA, name: 'Ta"ble\n名 x' };
const AMOUNT = qi('amount "€"');
const TABLES: TableRef[] = [
  ODD,
  ...['accounts', 'swaps', 'parents', 'children', 'events', 'events_2024', 'events_2025', 'codes', 'bag', 'cache'].map((name) => ({
    schema: 'public',
    name,
  })),
];
const DDL = `
  CREATE SCHEMA ${qi(ODD_SCHEMA)};
  CREATE TABLE ${qname(ODD.schema, ODD.name)} (
    ${qi('Id')} bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ${AMOUNT} numeric(20,6), raw bytea, doc jsonb, tags text[],
    at timestamptz, f float8, ${qi('note\n"x"')} text, doubled numeric GENERATED ALWAYS AS (${AMOUNT} * 2) STORED);
  CREATE TABLE public.accounts (id int PRIMARY KEY, balance numeric NOT NULL DEFAULT 0, owner text);
  CREATE TABLE public.swaps (k int PRIMARY KEY DEFERRABLE INITIALLY IMMEDIATE, v text);
  CREATE TABLE public.parents (id int PRIMARY KEY, name text);
  CREATE TABLE public.children (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES public.parents (id), v text);
  CREATE TABLE public.events (id bigint NOT NULL, day date NOT NULL, payload text, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
  CREATE TABLE public.events_2024 PARTITION OF public.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
  CREATE TABLE public.events_2025 PARTITION OF public.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
  CREATE TABLE public.codes (code text NOT NULL, label text);
  CREATE UNIQUE INDEX codes_code ON public.codes (code);
  CREATE TABLE public.bag (a int, b text);
  CREATE UNLOGGED TABLE public.cache (k text PRIMARY KEY, v text);`;
const SEED = `
  INSERT INTO public.accounts (id, balance, owner) SELECT i, i * 1.5, 'owner ' || i FROM generate_series(1, 25000) i;
  INSERT INTO public.swaps SELECT i, 'v' || i FROM generate_series(1, 20) i;
  INSERT INTO public.parents SELECT i, 'p' || i FROM generate_series(1, 50) i;
  INSERT INTO public.children SELECT i, 1 + i % 50, 'c' || i FROM generate_series(1, 200) i;
  INSERT INTO public.events SELECT i, '2024-01-01'::date + i % 700, 'e' || i FROM generate_series(1, 2000) i;
  INSERT INTO public.codes SELECT 'code' || i, 'label ' || i FROM generate_series(1, 100) i;
  INSERT INTO public.bag SELECT i % 10, 'b' || i % 3 FROM generate_series(1, 60) i;
  INSERT INTO public.cache SELECT 'k' || i, 'v' FROM generate_series(1, 50) i;
  INSERT INTO ${qname(ODD.schema, ODD.name)} (${AMOUNT}, raw, doc, tags, at, f, ${qi('note\n"x"')})
    SELECT i / 7.0, decode(md5(i::text), 'hex'), jsonb_build_object('i', i, 's', E'a\\nb"c'), ARRAY['x"y', NULL, 'z,w'],
           '2024-02-29 12:34:56.789012+05:30'::timestamptz + i * interval '1 hour', CASE i % 3 WHEN 0 THEN 'NaN' WHEN 1 THEN 'Infinity' ELSE '0.1' END::float8,
           E'it''s\\n"quoted" ü 名'
      FROM generate_series(1, 300) i;`;

const TEXTS = ["it's", 'quote " and \\ backslash', 'new\nline', 'tab\there', 'ünï 名 🚀', '', 'NULL'];
const FLOATS = ['NaN', 'Infinity', '-Infinity', '0.1', '-0', '1e308', '3.141592653589793'];

/** A small deterministic generator per writer. */
function randomizer(seed: number) {
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  return { int: (n: number) => Math.floor(next() * n), of: <T>(xs: T[]) => xs[Math.floor(next() * xs.length)] };
}

type Rand = ReturnType<typeof randomizer>;

/** The application's writes: every kind of change on every table; conflicts between writers just fail and roll back. */
const OPS: ((c: Client, r: Rand) => Promise<unknown>)[] = [
  (c, r) =>
    c.query(
      `INSERT INTO ${qname(ODD.schema, ODD.name)} (${AMOUNT}, raw, doc, tags, at, f, ${qi('note\n"x"')}) VALUES ($1, $2, $3, $4, $5, $6::float8, $7)`,
      [
        r.of(['12345678901234.123456', '-0.000001', 'NaN', '0']),
        randomBytes(r.int(40)),
        JSON.stringify({ k: r.of(TEXTS), n: 1.5, a: [1, null, 'x'] }),
        [r.of(TEXTS), null, r.of(TEXTS)],
        r.of(['2024-02-29T12:34:56.789012+05:30', 'infinity', '1999-12-31 23:59:59.999999-08']),
        r.of(FLOATS),
        r.of(TEXTS),
      ],
    ),
  (c, r) =>
    c.query(`UPDATE ${qname(ODD.schema, ODD.name)} SET f = $2::float8, doc = doc || '{"u": true}' WHERE ${qi('Id')} % 40 = $1`, [
      r.int(40),
      r.of(FLOATS),
    ]),
  (c, r) => c.query(`DELETE FROM ${qname(ODD.schema, ODD.name)} WHERE ${qi('Id')} = $1`, [1 + r.int(400)]),
  (c, r) => c.query(`UPDATE public.accounts SET balance = balance + 1, owner = $2 WHERE id = $1`, [1 + r.int(30000), r.of(TEXTS)]),
  // A key change: the row moves to another id.
  (c, r) => c.query(`UPDATE public.accounts SET id = id + 100000 WHERE id = $1`, [1 + r.int(30000)]),
  (c, r) =>
    c.query(`INSERT INTO public.accounts (id, owner) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner`, [
      25000 + r.int(5000),
      r.of(TEXTS),
    ]),
  (c, r) => c.query(`DELETE FROM public.accounts WHERE id = $1`, [1 + r.int(30000)]),
  // A key swap in one statement (the key is deferrable, as a swap needs).
  (c, r) => {
    const [a, b] = [1 + r.int(20), 1 + r.int(20)];
    return c.query(`UPDATE public.swaps SET k = CASE k WHEN $1::int THEN $2::int ELSE $1::int END, v = v || '.' WHERE k IN ($1, $2)`, [
      a,
      b,
    ]);
  },
  (c, r) => c.query(`INSERT INTO public.children (id, parent_id, v) VALUES ($1, $2, 'n')`, [1000 + r.int(100000), 1 + r.int(50)]),
  (c, r) => c.query(`DELETE FROM public.children WHERE id % 97 = $1`, [r.int(97)]),
  // Through the partitioned table (one row moving between partitions), and straight into a partition.
  (c, r) =>
    c.query(`UPDATE public.events SET day = day + 366, payload = $2 WHERE id = $1 AND day < '2024-12-01'`, [1 + r.int(2000), r.of(TEXTS)]),
  (c, r) => c.query(`INSERT INTO public.events VALUES ($1, '2025-03-01'::date + $2, 'new')`, [10000 + r.int(100000), r.int(200)]),
  (c, r) => c.query(`UPDATE public.events_2024 SET payload = payload || '+' WHERE id % 50 = $1`, [r.int(50)]),
  (c, r) => c.query(`DELETE FROM public.events_2025 WHERE id % 200 = $1`, [r.int(200)]),
  (c, r) =>
    c.query(`INSERT INTO public.codes VALUES ($1, $2) ON CONFLICT (code) DO UPDATE SET label = EXCLUDED.label`, [
      `code${r.int(150)}`,
      r.of(TEXTS),
    ]),
  (c, r) => c.query(`UPDATE public.codes SET code = code || 'x' WHERE code = $1`, [`code${r.int(150)}`]),
  (c, r) => c.query(`DELETE FROM public.codes WHERE code = $1`, [`code${r.int(150)}`]),
  // Whole-row table: duplicates in, one of two equal rows out, updates of equal rows.
  (c, r) => {
    const a = r.int(10);
    return c.query(`INSERT INTO public.bag VALUES ($1, 'dup'), ($1, 'dup')`, [a]);
  },
  (c, r) => c.query(`DELETE FROM public.bag WHERE ctid = (SELECT ctid FROM public.bag WHERE a = $1 LIMIT 1)`, [r.int(10)]),
  (c, r) => c.query(`UPDATE public.bag SET b = b || '!' WHERE a = $1`, [r.int(10)]),
  (c, r) =>
    c.query(`INSERT INTO public.cache VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v`, [`k${r.int(80)}`, r.of(TEXTS)]),
  (c, r) => c.query(`DELETE FROM public.cache WHERE k = $1`, [`k${r.int(80)}`]),
  // A transaction with a rolled-back savepoint, and one rolled back entirely: none of their undone changes may arrive.
  async (c, r) => {
    await c.query('BEGIN');
    await c.query(`INSERT INTO public.bag VALUES ($1, 'kept')`, [r.int(10)]);
    await c.query('SAVEPOINT s');
    await c.query(`DELETE FROM public.bag WHERE a = $1`, [r.int(10)]);
    await c.query(`UPDATE public.accounts SET owner = 'undone' WHERE id = $1`, [1 + r.int(25000)]);
    await c.query('ROLLBACK TO SAVEPOINT s');
    await c.query(`UPDATE public.cache SET v = 'in tx' WHERE k = $1`, [`k${r.int(80)}`]);
    await c.query('COMMIT');
  },
  async (c, r) => {
    await c.query('BEGIN');
    await c.query(`DELETE FROM public.codes WHERE code = $1`, [`code${r.int(150)}`]);
    await c.query(`INSERT INTO public.bag VALUES (99, 'rolled back')`);
    await c.query('ROLLBACK');
  },
];

/** Writers until `until.stop`; as app and app_worker (which has no privilege on the capture schema). */
function startWriters(urls: string[], until: { stop: boolean }): Promise<{ ok: number; failed: number }[]> {
  return Promise.all(
    urls.map(async (url, i) => {
      const c = await open(url, `writer${i}`);
      const r = randomizer(17 + i);
      const stats = { ok: 0, failed: 0 };
      while (!until.stop) {
        try {
          await r.of(OPS)(c, r);
          stats.ok++;
        } catch {
          stats.failed++;
          await c.query('ROLLBACK').catch(() => undefined);
        }
      }
      await c.end();
      return stats;
    }),
  );
}

/** TRUNCATE ... CASCADE over the foreign-key pair (one trigger per table), then rows again. */
async function truncateAndRefill(c: Client, base: number): Promise<void> {
  await c.query('BEGIN');
  await c.query('TRUNCATE public.parents CASCADE');
  await c.query(`INSERT INTO public.parents SELECT i, 'again' FROM generate_series(1, 50) i`);
  await c.query(`INSERT INTO public.children SELECT ${base} + i, 1 + i % 50, 'again' FROM generate_series(1, 100) i`);
  await c.query('COMMIT');
  await c.query('BEGIN');
  await c.query('TRUNCATE public.codes');
  await c.query(`INSERT INTO public.codes SELECT 'code' || i, 'refilled' FROM generate_series(1, 120) i`);
  await c.query('COMMIT');
}

describe('triggers engine', () => {
  it('copies and applies concurrent writes of every kind exactly: target equals source row by row', async () => {
    const p = await pair('exact');
    await sql(p.source, DDL + SEED);
    // On the target, a user trigger the apply must not fire in replica mode.
    await sql(
      p.target,
      `${DDL}
       CREATE TABLE public.fired (at timestamptz DEFAULT now());
       CREATE FUNCTION public.note_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.fired DEFAULT VALUES; RETURN NULL; END $$;
       CREATE TRIGGER note_write AFTER INSERT OR UPDATE ON public.accounts FOR EACH ROW EXECUTE FUNCTION public.note_write();`,
    );
    const source = await open(p.source, 'capture');
    const target = await open(p.target, 'apply');
    await ensureMarker(source, p.migrationId);
    await ensureMarker(target, p.migrationId);
    const tables = [...TABLES, markerTableRef(p.migrationId)];
    const names = captureNames(p.migrationId, 'forward');

    const installed = await installCapture(source, {
      migrationId: p.migrationId,
      direction: 'forward',
      tables,
      policy: 'replica-identity-full',
    });
    expect(installed.installed).toEqual(
      expect.arrayContaining(['public.events', 'public.events_2024', 'public.bag', `${ODD.schema}.${ODD.name}`]),
    );
    const [privileges] = await sql<{ schema: boolean; log: boolean }>(
      p.sourceAdmin,
      `SELECT has_schema_privilege('app_worker', $1, 'USAGE') AS schema, has_table_privilege('app_worker', $2, 'INSERT') AS log`,
      [names.schema, names.log],
    );
    expect(privileges).toEqual({ schema: false, log: false });

    const writers = startWriters([p.source, p.source, p.sourceWorker], writing);
    const app = await open(p.source, 'app');
    await sleep(400);
    // A bulk UPDATE of every account: chunked log rows, the application's statement unharmed.
    const bulk = await app.query('UPDATE public.accounts SET balance = balance * 2');
    expect(bulk.rowCount).toBeGreaterThanOrEqual(20_000);
    const [chunks] = await sql<{ n: number }>(
      p.source,
      `SELECT count(*)::int AS n FROM ${names.log} WHERE op = 'U' AND rel = $1 AND n_rows = ${CHUNK_ROWS}`,
      [qname('public', 'accounts')],
    );
    expect(chunks.n).toBeGreaterThanOrEqual(4);
    await truncateAndRefill(app, 200_000);

    const copyProgress: number[] = [];
    const copied = await copy(p, tables, 2, { onProgress: (pr) => copyProgress.push(pr.tablesDone), progressEveryMs: 0 });
    expect(copied.tablesDone).toBe(copied.tablesTotal);
    expect(copied.rows).toBeGreaterThan(25_000);
    expect(copyProgress.at(-1)).toBe(copied.tablesTotal);
    expect((await readApplyState(target, p.migrationId, 'forward'))?.copySnapshot).toBe(copied.snapshot);

    const applying = applyUntil(source, target, {
      migrationId: p.migrationId,
      direction: 'forward',
      stop: markerApplied(target, p.migrationId),
      pruneEveryMs: 500,
    });
    await sleep(1000);
    await app.query('UPDATE public.accounts SET balance = balance + 1 WHERE id % 2 = 0');
    await truncateAndRefill(app, 300_000);
    await sleep(800);
    writing.stop = true;
    const stats = await writers;
    expect(stats.every((s) => s.ok > 20)).toBe(true);
    // The cutover's drain: a marker row committed on the source, applied on the target.
    await drainToMarker(app, await open(p.target), p.migrationId, 30_000);
    const applied = await applying;
    expect(applied.reason).toBe('stopped');

    const expected = await fingerprint(p.sourceAdmin, tables);
    expect(await fingerprint(p.targetAdmin, tables)).toEqual(expected);
    // The comparison compares something: every table has rows, and the whole-row table has duplicates.
    for (const [table, print] of Object.entries(expected)) expect(print, table).not.toMatch(/^0 rows/);
    const [dups] = await sql<{ n: number }>(p.source, `SELECT (count(*) - count(DISTINCT (a, b)))::int AS n FROM public.bag`);
    expect(dups.n).toBeGreaterThan(0);

    // Upserts went through ON CONFLICT where the key's index allows it, delete-then-insert on the deferrable key.
    expect((await loadTargetTable(target, qname('public', 'accounts'), 'primary-key', ['id'])).onConflict).toBe(true);
    expect((await loadTargetTable(target, qname('public', 'codes'), 'unique-index', ['code'])).onConflict).toBe(true);
    expect((await loadTargetTable(target, qname('public', 'swaps'), 'primary-key', ['k'])).onConflict).toBe(false);

    const [role] = await sql<{ may: boolean }>(p.target, `SELECT has_parameter_privilege('session_replication_role', 'SET') AS may`);
    expect(applied.mode).toBe(role.may ? 'replica' : 'origin');
    if (applied.mode === 'replica') expect(await sql(p.target, 'SELECT 1 FROM public.fired')).toEqual([]);
  });

  it('holds the horizon for a transaction that commits late: its changes arrive, in order', async () => {
    const p = await pair('horizon');
    const ddl = `CREATE TABLE public.h (id int PRIMARY KEY, v text); CREATE TABLE public.side (id int);`;
    await sql(p.source, `${ddl} INSERT INTO public.h VALUES (1, 'orig'), (2, 'orig'), (3, 'orig')`);
    await sql(p.target, ddl);
    const source = await open(p.source, 'capture');
    const target = await open(p.target, 'apply');
    await ensureMarker(source, p.migrationId);
    await ensureMarker(target, p.migrationId);
    const tables = [{ schema: 'public', name: 'h' }, markerTableRef(p.migrationId)];
    await installCapture(source, { migrationId: p.migrationId, direction: 'forward', tables, policy: 'refuse' });

    // T begins before the copy and writes (a table that is not captured): it has an xid throughout.
    const t = await open(p.source, 'late');
    await t.query('BEGIN');
    await t.query('INSERT INTO public.side VALUES (1)');
    await copy(p, tables, 1);
    const context = new ApplyContext();
    const batch = () => applyBatch(source, target, { migrationId: p.migrationId, direction: 'forward', context, horizonWaitMs: 20 });
    const value = async (id: number) => (await target.query<{ v: string }>('SELECT v FROM public.h WHERE id = $1', [id])).rows[0].v;

    // Others commit and are applied while T is open: an open transaction that has not written the log holds nothing back.
    await sql(p.source, `UPDATE public.h SET v = 'u0' WHERE id = 2`);
    let watermark = '0';
    for (let i = 0; i < 10 && (await value(2)) !== 'u0'; i++) watermark = (await batch()).watermark;
    expect(await value(2)).toBe('u0');
    expect(BigInt(watermark)).toBeGreaterThan(0n);

    // T writes row 1 (a low id, uncommitted), U1 commits row 3 after it (a higher id), T then changes row 3 too.
    await t.query(`UPDATE public.h SET v = 't1' WHERE id = 1`);
    await sql(p.source, `UPDATE public.h SET v = 'u1' WHERE id = 3`);
    await t.query(`UPDATE public.h SET v = 't3' WHERE id = 3`);
    const whileOpen: bigint[] = [];
    for (let i = 0; i < 10; i++) whileOpen.push(BigInt((await batch()).watermark));
    const [{ xid }] = (await t.query<{ xid: string }>('SELECT pg_current_xact_id()::text AS xid')).rows;
    await t.query('COMMIT');

    for (let i = 0; i < 20 && (await value(3)) !== 't3'; i++) await batch();
    // A watermark at the highest committed id would have passed T's rows while T was open, and lost row 1's change.
    const [first] = await sql<{ id: string }>(
      p.source,
      `SELECT min(id)::text AS id FROM ${captureNames(p.migrationId, 'forward').log} WHERE xid = $1::xid8`,
      [xid],
    );
    expect(whileOpen.every((w) => w < BigInt(first.id))).toBe(true);
    expect(await value(1)).toBe('t1');
    expect(await value(3)).toBe('t3');
    expect(await fingerprint(p.targetAdmin, tables.slice(0, 1))).toEqual(await fingerprint(p.sourceAdmin, tables.slice(0, 1)));
  });

  it('resumes after an abort and after a killed session without doubling anything, and prunes the log behind the watermark', async () => {
    const p = await pair('resume');
    const ddl = `CREATE TABLE public.bag (a int, b text); CREATE TABLE public.accounts (id int PRIMARY KEY, n int);`;
    await sql(
      p.source,
      `${ddl} INSERT INTO public.bag SELECT i % 5, 'seed' FROM generate_series(1, 40) i; INSERT INTO public.accounts SELECT i, 0 FROM generate_series(1, 50) i`,
    );
    await sql(p.target, ddl);
    const capture = await open(p.source, 'capture');
    await ensureMarker(capture, p.migrationId);
    await ensureMarker(await open(p.target), p.migrationId);
    const tables = [{ schema: 'public', name: 'bag' }, { schema: 'public', name: 'accounts' }, markerTableRef(p.migrationId)];
    await installCapture(capture, { migrationId: p.migrationId, direction: 'forward', tables, policy: 'replica-identity-full' });
    // A copy aborted at its first bytes fails with the abort's reason and leaves no session behind.
    const stopCopy = new AbortController();
    const abortedCopy = 'triggers-engine-aborted-copy';
    const aborted = copy(p, tables, 2, {
      applicationName: abortedCopy,
      progressEveryMs: 0,
      signal: stopCopy.signal,
      onProgress: () => stopCopy.abort(new Error('cancelled')),
    });
    await expect(aborted).rejects.toThrow('cancelled');
    for (const admin of [p.sourceAdmin, p.targetAdmin]) {
      expect(await sql(admin, `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, [abortedCopy])).toEqual([]);
    }
    await copy(p, tables, 2);
    for (let i = 0; i < 150; i++) {
      await capture.query(
        [
          `INSERT INTO public.bag VALUES (${i % 5}, 'dup'), (${i % 5}, 'dup')`,
          `DELETE FROM public.bag WHERE ctid = (SELECT ctid FROM public.bag WHERE a = ${i % 5} LIMIT 1)`,
          `UPDATE public.bag SET b = b || '.' WHERE a = ${i % 7}`,
          `UPDATE public.accounts SET n = n + 1 WHERE id % 10 = ${i % 10}`,
        ][i % 4],
      );
    }
    await capture.query(`INSERT INTO ${replicationNames(p.migrationId).marker} (id) VALUES (1)`);
    const before = await captureLag(capture, await open(p.target), p.migrationId, 'forward');
    expect(before.pendingLogRows).toBeGreaterThanOrEqual(100);
    expect(before.pendingChanges).toBeGreaterThan(150);
    expect(before.lagSeconds).toBeGreaterThan(0);
    const opts = { migrationId: p.migrationId, direction: 'forward' as const, maxLogRows: 3, progressEveryMs: 0, pruneEveryMs: 60_000 };

    // 1: aborted between batches.
    const controller = new AbortController();
    const first = await applyUntil(capture, await open(p.target, 'apply1'), {
      ...opts,
      signal: controller.signal,
      onProgress: (pr) => {
        if (pr.appliedLogRows >= 20) controller.abort();
      },
    });
    expect(first.reason).toBe('aborted');

    // 2: the apply session killed while it works.
    const apply2 = await open(p.target, 'apply2');
    const pid = (await apply2.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    let killed = false;
    const second = applyUntil(await open(p.source, 'capture2'), apply2, {
      ...opts,
      onProgress: async (pr) => {
        if (pr.appliedLogRows >= 10 && !killed) {
          killed = true;
          await sql(p.targetAdmin, 'SELECT pg_terminate_backend($1)', [pid]);
        }
      },
    });
    await expect(second).rejects.toThrow();
    const midway = BigInt((await readApplyState(await open(p.target), p.migrationId, 'forward'))!.watermark);
    expect(midway).toBeGreaterThan(BigInt(first.watermark));

    // 3: new sessions, to the marker; the log is pruned behind the watermark.
    const target3 = await open(p.target, 'apply3');
    const logBefore = (await captureLag(capture, target3, p.migrationId, 'forward')).logRows;
    const third = await applyUntil(await open(p.source, 'capture3'), target3, {
      ...opts,
      maxLogRows: 500,
      pruneEveryMs: 0,
      stop: markerApplied(target3, p.migrationId),
    });
    expect(third.reason).toBe('stopped');
    expect(await fingerprint(p.targetAdmin, tables)).toEqual(await fingerprint(p.sourceAdmin, tables));
    const after = await captureLag(capture, target3, p.migrationId, 'forward');
    expect(after).toMatchObject({ pendingLogRows: 0, pendingChanges: 0, lagSeconds: 0 });
    expect(after.logRows).toBeLessThan(logBefore);
    const names = captureNames(p.migrationId, 'forward');
    expect(await sql(p.source, `SELECT id FROM ${names.log} WHERE id <= $1`, [after.watermark])).toEqual([]);
  });

  it('an install blocked by a long transaction names the table and its holder, installs the rest, and removal leaves nothing', async () => {
    const p = await pair('blocked');
    await sql(
      p.source,
      `CREATE TABLE public.a (id int PRIMARY KEY); CREATE TABLE public.b (id int PRIMARY KEY); CREATE TABLE public.c (id int PRIMARY KEY);
                         INSERT INTO public.b VALUES (1)`,
    );
    const tables = ['a', 'b', 'c'].map((name) => ({ schema: 'public', name }));
    const names = captureNames(p.migrationId, 'forward');
    const holder = await open(p.source, 'holder');
    const holderPid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    await holder.query('BEGIN');
    await holder.query('UPDATE public.b SET id = id WHERE id = 1');
    const installer = await open(p.source, 'installer');
    const failed = await installCapture(installer, {
      migrationId: p.migrationId,
      direction: 'forward',
      tables,
      policy: 'refuse',
      lockTimeoutMs: 200,
      attempts: 2,
    }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(ApplicationFailure);
    const failure = failed as ApplicationFailure;
    expect(failure.nonRetryable).toBe(true);
    expect(failure.type).toBe('CaptureLockTimeout');
    expect(failure.message).toContain('public.b: pid ' + holderPid);
    expect(failure.message).toMatch(/idle in transaction, transaction open for \d+ s, holds RowExclusiveLock\): "UPDATE public\.b/);
    expect(failure.message).not.toMatch(/public\.[ac]:/);
    const triggers = () =>
      sql<{ rel: string; n: number }>(
        p.sourceAdmin,
        `SELECT tgrelid::regclass::text AS rel, count(*)::int AS n FROM pg_trigger WHERE starts_with(tgname, $1) GROUP BY 1 ORDER BY 1`,
        [names.triggerPrefix],
      );
    expect(await triggers()).toEqual([
      { rel: 'a', n: 4 },
      { rel: 'c', n: 4 },
    ]);
    await holder.query('ROLLBACK');

    // Completed once the holder is gone: only the missing table is locked.
    const retried = await installCapture(installer, { migrationId: p.migrationId, direction: 'forward', tables, policy: 'refuse' });
    expect(retried).toMatchObject({ installed: ['public.b'], alreadyInstalled: ['public.a', 'public.c'] });

    const dropped = await removeCapture(installer, p.migrationId, 'forward');
    expect(dropped).toHaveLength(13);
    expect(await removeCapture(installer, p.migrationId, 'forward')).toEqual([]);
    expect(await triggers()).toEqual([]);
    expect(await sql(p.sourceAdmin, `SELECT proname FROM pg_proc WHERE pronamespace::regnamespace::text = $1`, [names.schema])).toEqual([]);
    expect(await sql(p.sourceAdmin, `SELECT nspname FROM pg_namespace WHERE nspname LIKE '\\_pgmig%'`)).toEqual([]);
    const installerPid = (await installer.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    expect(
      await sql(p.sourceAdmin, `SELECT locktype, mode FROM pg_locks WHERE pid = $1 OR relation = 'public.b'::regclass`, [installerPid]),
    ).toEqual([]);
  });

  it('applies in replica mode where the role may, and in origin mode (user triggers disabled by the helpers) where it may not', async () => {
    const p = await pair('modes');
    expect(await prepareApplySession(await open(p.targetAdmin))).toBe('replica');
    const [may] = await sql<{ may: boolean }>(p.target, `SELECT has_parameter_privilege('session_replication_role', 'SET') AS may`);
    expect(await prepareApplySession(await open(p.target))).toBe(may.may ? 'replica' : 'origin');

    // A plain role that owns its tables on the target, like an application's own credential.
    const plain = `pgmig_triggers_plain_${randomBytes(3).toString('hex')}`;
    const password = randomBytes(12).toString('hex');
    roles.push(plain);
    await sql(env.TARGET_ADMIN_URL, `CREATE ROLE ${qi(plain)} LOGIN PASSWORD '${password}'`);
    await sql(p.targetAdmin, `GRANT CREATE ON DATABASE ${qi(p.targetDb)} TO ${qi(plain)}; GRANT CREATE ON SCHEMA public TO ${qi(plain)}`);
    const plainUrl = new URL(p.target);
    plainUrl.username = plain;
    plainUrl.password = password;
    const ddl = `CREATE TABLE public.audited (id int PRIMARY KEY, v text); CREATE TABLE public.theirs (id int PRIMARY KEY, v text);`;
    await sql(p.source, ddl);
    await sql(
      p.target,
      `CREATE TABLE public.theirs (id int PRIMARY KEY, v text); CREATE TABLE public.theirs_log (v text);
       CREATE FUNCTION public.log_theirs() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.theirs_log VALUES (NEW.v); RETURN NULL; END $$;
       CREATE TRIGGER log_theirs AFTER INSERT OR UPDATE ON public.theirs FOR EACH ROW EXECUTE FUNCTION public.log_theirs();
       GRANT ALL ON public.theirs, public.theirs_log TO ${qi(plain)};`,
    );
    await sql(
      plainUrl.toString(),
      `CREATE TABLE public.audited (id int PRIMARY KEY, v text); CREATE TABLE public.audit_log (v text);
       CREATE FUNCTION public.audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.audit_log VALUES (NEW.v); RETURN NULL; END $$;
       CREATE TRIGGER audit AFTER INSERT OR UPDATE ON public.audited FOR EACH ROW EXECUTE FUNCTION public.audit();`,
    );
    const capture = await open(p.source, 'capture');
    const apply = await open(plainUrl.toString(), 'plain');
    await ensureMarker(capture, p.migrationId);
    await ensureMarker(apply, p.migrationId);
    const userTables = [
      { schema: 'public', name: 'audited' },
      { schema: 'public', name: 'theirs' },
    ];
    const tables = [...userTables, markerTableRef(p.migrationId)];
    await installCapture(capture, { migrationId: p.migrationId, direction: 'forward', tables, policy: 'refuse' });
    await capture.query(
      `INSERT INTO public.audited SELECT i, 'a' || i FROM generate_series(1, 20) i; INSERT INTO public.theirs SELECT i, 't' || i FROM generate_series(1, 20) i`,
    );

    // Only the role's own table's trigger is touched.
    const disabled = await disableUserTriggers(apply, userTables);
    expect(disabled).toEqual([{ schema: 'public', table: 'audited', trigger: 'audit', enabled: 'O' }]);
    const copied = await copy(p, tables, 1, {}, plainUrl.toString());
    expect(copied.mode).toBe('origin');
    await capture.query(
      `UPDATE public.audited SET v = v || '!' WHERE id <= 10; UPDATE public.theirs SET v = v || '!' WHERE id <= 10; DELETE FROM public.audited WHERE id > 15`,
    );
    await capture.query(`INSERT INTO ${replicationNames(p.migrationId).marker} (id) VALUES (1)`);
    const applied = await applyUntil(capture, apply, {
      migrationId: p.migrationId,
      direction: 'forward',
      stop: markerApplied(apply, p.migrationId),
    });
    expect(applied.mode).toBe('origin');
    expect(await fingerprint(p.targetAdmin, userTables)).toEqual(await fingerprint(p.sourceAdmin, userTables));
    // Origin mode: the trigger left enabled fired (copy and apply), the disabled one did not.
    expect(await sql(p.targetAdmin, 'SELECT 1 FROM public.audit_log')).toEqual([]);
    expect((await sql(p.targetAdmin, 'SELECT 1 FROM public.theirs_log')).length).toBe(30);
    expect(await enableUserTriggers(apply, disabled)).toEqual(['public.audited: audit']);
    expect(await sql(p.targetAdmin, `SELECT tgenabled FROM pg_trigger WHERE tgname = 'audit'`)).toEqual([{ tgenabled: 'O' }]);
  });

  it('fails a change the target refuses, after a few tries, naming the error, the table and the log id', async () => {
    const p = await pair('refused');
    await sql(p.source, 'CREATE TABLE public.t (id int PRIMARY KEY, v text)');
    await sql(p.target, `CREATE TABLE public.t (id int PRIMARY KEY, v text CHECK (v <> 'bad'))`);
    const capture = await open(p.source, 'capture');
    const apply = await open(p.target, 'apply');
    const tables = [{ schema: 'public', name: 't' }];
    await installCapture(capture, { migrationId: p.migrationId, direction: 'forward', tables, policy: 'refuse' });
    await copy(p, tables, 1);
    await capture.query(`INSERT INTO public.t VALUES (1, 'good')`);
    await capture.query(`INSERT INTO public.t VALUES (2, 'bad')`);
    const failed = await applyUntil(capture, apply, { migrationId: p.migrationId, direction: 'forward', maxLogRows: 1 }).catch(
      (e: unknown) => e,
    );
    expect(failed).toBeInstanceOf(ApplicationFailure);
    expect(failed).toMatchObject({ nonRetryable: true, type: 'ApplyFailed' });
    expect((failed as Error).message).toMatch(
      /^cannot apply change 2 of the log to "public"\."t": new row .* violates check constraint "t_v_check"/,
    );
    // The batch that failed applied nothing, the one before it stays.
    expect(await sql(p.target, 'SELECT id, v FROM public.t')).toEqual([{ id: 1, v: 'good' }]);
    expect((await readApplyState(apply, p.migrationId, 'forward'))?.watermark).toBe('1');
  });
});
