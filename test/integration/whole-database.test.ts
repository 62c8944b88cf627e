/**
 * Issue 12 (items 2-4): the whole-database fixture (test/fixtures/whole-database.ts) beside the demo data,
 * migrated by each CDC method while the application writes and a second session keeps changing the
 * UNLOGGED table and a large object until the freeze stops it; and by dump-restore with both engines.
 * Afterwards the materialized view returns the source's rows, the UNLOGGED table and the large objects hold
 * the source's content, replica identity is on both sides what the source had before, and nothing of the
 * migration (capture triggers, functions, schemas) is on either side.
 */
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MigrationInputDraft } from '../../contract/input';
import type { MigrationResult, MigrationStatus } from '../../signals';
import type { WriterStats } from '../../stack/app-writer';
import { heldPrivileges } from '../../activities/database/smoke-privileges';
import { WHOLE_DATABASE } from '../fixtures/whole-database';
import { useEveryObject } from '../helpers/privileges';
import {
  SHAPES_ONLY,
  expectEveryAckedWriteOnce,
  migrateUnderLoad,
  migrationObjects,
  openSandbox,
  query,
  withClient,
  recordHistory,
  type Sandbox,
} from '../helpers/harness';

/**
 * Beside the fixture's materialized view: one over it through a view (refreshed in the wrong order, it
 * would fail: its source is not populated yet), and one the source never populated (it must stay so).
 */
const MORE_VIEWS = `
  CREATE VIEW "Sales".paid_totals AS SELECT * FROM "Sales".order_totals WHERE status = 'paid';
  CREATE MATERIALIZED VIEW "Sales"."PaidSummary" AS SELECT orders, amount FROM "Sales".paid_totals;
  CREATE MATERIALIZED VIEW "Sales".never_refreshed AS SELECT count(*) AS n FROM "Sales"."Orders" WITH NO DATA;
`;

const populatedViews = async (url: string) =>
  (
    await query<{ m: string }>(
      url,
      `SELECT relname || ': ' || relispopulated::text AS m FROM pg_class WHERE relkind = 'm' AND relnamespace = '"Sales"'::regnamespace ORDER BY relname::text COLLATE "C"`,
    )
  ).map((r) => r.m);

/** Rows of a relation in a stable order, as one md5 and a count. */
const fingerprint = async (url: string, relation: string) =>
  (
    await query<{ n: number; md5: string }>(
      url,
      `SELECT count(*)::int AS n, md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS md5 FROM ${relation} t`,
    )
  )[0];

const largeObjects = (url: string) =>
  query<{ oid: string; md5: string }>(
    url,
    `SELECT oid::int8::text AS oid, md5(lo_get(oid)) AS md5 FROM pg_largeobject_metadata ORDER BY oid`,
  );

/** Every user table's replica identity (pg_class.relreplident), as `schema.name: d|n|f|i`. */
const replicaIdentities = async (url: string) =>
  (
    await query<{ r: string }>(
      url,
      `SELECT n.nspname || '.' || c.relname || ': ' || c.relreplident::text AS r FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE '\\_pgmig%'
        ORDER BY 1`,
    )
  ).map((row) => row.r);

/**
 * Changes the UNLOGGED table and rewrites a large object every few milliseconds until the source refuses
 * writes (the freeze: its session is ended, the next one is read-only), as the owner (an application role).
 */
async function changeUntilFrozen(url: string): Promise<{ rounds: number }> {
  const connect = async () => {
    const client = new Client({ connectionString: url });
    client.on('error', () => undefined); // the freeze ends the session: the next query fails, and we reconnect
    await client.connect();
    return client;
  };
  let c = await connect();
  const lo = (await c.query<{ oid: string }>(`SELECT min(content)::int8::text AS oid FROM ${WHOLE_DATABASE.documents}`)).rows[0].oid;
  let rounds = 0;
  try {
    for (let i = 1; i < 100_000; i++) {
      try {
        await c.query('BEGIN');
        await c.query(`UPDATE ${WHOLE_DATABASE.cache} SET v = $2 WHERE k = $1`, [`k${1 + (i % 100)}`, `changed ${i}`]);
        await c.query(`INSERT INTO ${WHOLE_DATABASE.cache} (k, v) VALUES ($1, 'new')`, [`late${i}`]);
        if (i % 7 === 0) await c.query(`DELETE FROM ${WHOLE_DATABASE.cache} WHERE k = $1`, [`late${i - 3}`]);
        await c.query(`SELECT lo_put($1::oid, 0, convert_to($2, 'UTF8'))`, [lo, `revision ${i} `]);
        await c.query('COMMIT');
        rounds++;
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        if ((err as { code?: string }).code === '25006') return { rounds };
        await c.end().catch(() => undefined);
        c = await connect();
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('the source was never frozen');
  } finally {
    await c.end().catch(() => undefined);
  }
}

interface Case {
  method: 'logical' | 'triggers' | 'pgcopydb' | 'dump-restore';
  engine?: 'pgcopydb' | 'pg-dump';
  input: (sandbox: Sandbox) => MigrationInputDraft;
  gates: string[];
  heroku?: boolean;
  /** Saved under test/histories/ with RECORD_HISTORIES=1, replayed by test/replay.test.ts. */
  history?: string;
}

const cases: Case[] = [
  { method: 'logical', input: (s) => s.logicalInput(), gates: ['cutover', 'go-live'], history: 'logical-whole-database-completed' },
  { method: 'triggers', input: (s) => s.triggersInput(), gates: ['cutover', 'go-live'], heroku: true },
  {
    method: 'pgcopydb',
    input: (s) =>
      s.logicalInput({ method: 'pgcopydb', replication: { tablesWithoutPrimaryKey: 'replica-identity-full', drainTimeout: '30s' } }),
    gates: ['cutover', 'go-live'],
  },
  ...(['pgcopydb', 'pg-dump'] as const).map((engine) => ({
    method: 'dump-restore' as const,
    engine,
    input: (s: Sandbox) => s.input({ copy: { engine } }),
    gates: ['go-live'],
  })),
];

for (const c of cases) {
  describe.sequential(`the whole database by ${c.method}${c.engine ? ` (${c.engine})` : ''}`, () => {
    let sandbox: Sandbox;
    let result: MigrationResult;
    let status: MigrationStatus;
    let writes: WriterStats;
    let identityBefore: string[];
    let changes: { rounds: number };

    let map: Record<string, string>;
    const owner = c.heroku ? 'heroku_app' : 'app';

    beforeAll(async () => {
      sandbox = await openSandbox(`whole_${c.method}`, { wholeDatabase: true, heroku: !!c.heroku, scale: SHAPES_ONLY });
      // The application keeps a role of its own (the default), mapped to names of this sandbox's own: roles are cluster-wide.
      map = { [owner]: `app_${sandbox.id}`, app_worker: `worker_${sandbox.id}`, app_reader: `reader_${sandbox.id}` };
      await query(sandbox.sourceUrl, MORE_VIEWS);
      identityBefore = await replicaIdentities(sandbox.sourceUrl);
      const changing = changeUntilFrozen(sandbox.sourceUrl);
      const run = await migrateUnderLoad(sandbox, { ...c.input(sandbox), roles: { map, application: 'own' } }, c.gates);
      ({ result, status, writes } = run);
      changes = await changing;
      if (c.history) await recordHistory(run.handle, c.history);
    }, 300_000);

    afterAll(async () => {
      await sandbox?.close();
    });

    it('completes verified, with every acknowledged write on the target once', async () => {
      expect(result.reason).toBeUndefined();
      expect(result.outcome).toBe('completed');
      expect(result.verification).toBe('passed');
      // The catalog verification (indexes, constraints, triggers, functions, views, types, partitions, comments...) finds nothing.
      expect(result.catalogDifferences).toEqual([]);
      await expectEveryAckedWriteOnce(sandbox.targetUrl, writes);
      const window = status.steps.find((s) => s.name === 'copy-in-window');
      console.log(
        `${c.method}${c.engine ? ` (${c.engine})` : ''}: write-freeze window ${result.freezeWindow.durationMs} ms; ${changes.rounds} rounds of changes to the UNLOGGED table and a large object before the freeze` +
          (window ? `; copy-in-window ${window.durationMs} ms: ${window.detail}` : ''),
      );
      if (c.method !== 'dump-restore') {
        const refreshed = status.steps.find((s) => s.name === 'refresh-materialized-views');
        expect(refreshed?.detail).toBe('refreshed Sales.order_totals, Sales.PaidSummary');
        expect(window?.detail).toMatch(
          c.method === 'triggers' ? /^0 UNLOGGED table\(s\).* 2 large object\(s\)/ : /^1 UNLOGGED table\(s\).* 2 large object\(s\)/,
        );
      }
    });

    it('runs the application as its own role on the target, holding every privilege it had on the source, and using every kind of object', async () => {
      const url = sandbox.configuredUrl()!;
      expect(decodeURIComponent(new URL(url).username)).toBe(map[owner]);
      const key = (p: { kind: string; name: string; privilege: string }) => `${p.kind} ${p.name} ${p.privilege}`;
      const onSource = await withClient(sandbox.sourceAdminUrl, (s) => heldPrivileges(s, owner));
      const onTarget = await withClient(url, (t) => heldPrivileges(t, map[owner]));
      expect(onTarget.map(key)).toEqual(expect.arrayContaining(onSource.map(key)));
      await withClient(url, useEveryObject);
    });

    it("has the materialized views populated with the source's rows (each after those it reads), and the unpopulated one unpopulated", async () => {
      expect(await populatedViews(sandbox.targetUrl)).toEqual(['PaidSummary: true', 'never_refreshed: false', 'order_totals: true']);
      expect(await fingerprint(sandbox.targetUrl, '"Sales"."PaidSummary"')).toEqual(
        await fingerprint(sandbox.sourceUrl, '"Sales"."PaidSummary"'),
      );
      const [populated] = await query<{ p: boolean }>(
        sandbox.targetUrl,
        `SELECT relispopulated AS p FROM pg_class WHERE oid = $1::regclass`,
        [WHOLE_DATABASE.matview],
      );
      expect(populated.p).toBe(true);
      const onSource = await fingerprint(sandbox.sourceUrl, WHOLE_DATABASE.matview);
      expect(onSource.n).toBe(3);
      expect(await fingerprint(sandbox.targetUrl, WHOLE_DATABASE.matview)).toEqual(onSource);
    });

    it('has the UNLOGGED table and the large objects as the source had them at the freeze', async () => {
      expect(changes.rounds).toBeGreaterThan(0);
      const cache = await fingerprint(sandbox.sourceUrl, WHOLE_DATABASE.cache);
      expect(cache.n).toBeGreaterThan(100);
      expect(await fingerprint(sandbox.targetUrl, WHOLE_DATABASE.cache)).toEqual(cache);
      const objects = await largeObjects(sandbox.sourceUrl);
      expect(objects).toHaveLength(WHOLE_DATABASE.largeObjects);
      expect(await largeObjects(sandbox.targetUrl)).toEqual(objects);
    });

    it('leaves replica identity on both sides as the source had it, and nothing of the migration on either', async () => {
      expect(identityBefore).toContain('public.notes: d');
      expect(await replicaIdentities(sandbox.sourceUrl)).toEqual(identityBefore);
      expect(await replicaIdentities(sandbox.targetUrl)).toEqual(identityBefore);
      for (const url of [sandbox.sourceAdminUrl, sandbox.targetAdminUrl]) {
        expect(await migrationObjects(url)).toEqual({ triggers: [], schemas: [], functions: [] });
      }
    });
  });
}
