/**
 * The catalog comparison on real clusters, with the whole-database fixture as the source: a copy as
 * the migration makes it (pg_dump | pg_restore --no-owner --no-acl onto the target cluster) and one
 * that keeps owners and grants (restored by the admin onto the source cluster, where the roles
 * exist) compare equal; the migration's own objects and extensions' objects stay out; a damaged
 * copy has each of its damages named, and fails the dump-restore verification.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Client } from 'pg';
import { compareCatalogs, readCatalog } from '../../activities/database/catalog';
import { inventoryDatabase } from '../../activities/database/inventory';
import { libpqEnv } from '../../activities/database/pg';
import { pgcopydbClone } from '../../activities/methods/dump-restore/pgcopydb-clone';
import { VerificationDuringCopy } from '../../activities/database/verify-during-copy';
import { createSourceDatabase, createTargetDatabase, databaseUrl, dropDatabase, loadStackEnv, type StackEnv } from '../../stack';
import { seedWholeDatabase } from '../fixtures/whole-database';
import { query, withClient } from '../helpers/harness';

let env: StackEnv;
const db = {
  source: `cat_src_${process.pid}`,
  copy: `cat_copy_${process.pid}`,
  owned: `cat_owned_${process.pid}`,
  cloned: `cat_cloned_${process.pid}`,
};
const urls = { source: '', copy: '', owned: '', sourceAdmin: '', ownedAdmin: '' };
const dumpDir = mkdtempSync(path.join(os.tmpdir(), 'pgmig-catalog-test-'));
const dumpFile = path.join(dumpDir, 'source.dump');

function pg(program: string, args: string[], url: string): void {
  execFileSync(path.join(env.PG_BIN, program), args, { env: { ...process.env, ...libpqEnv(url, 'catalog-test') }, stdio: 'pipe' });
}

/** Both sides compared as the verification does: one session each. */
async function compare(targetUrl: string, privileges = false): Promise<{ differences: string[]; ms: number }> {
  return withClient(urls.source, (s) =>
    withClient(targetUrl, async (t) => {
      const started = Date.now();
      const differences = await compareCatalogs(s, t, { privileges });
      return { differences, ms: Date.now() - started };
    }),
  );
}

beforeAll(async () => {
  env = loadStackEnv();
  urls.source = await createSourceDatabase(env, db.source);
  urls.sourceAdmin = databaseUrl(env.SOURCE_ADMIN_URL, db.source);
  await seedWholeDatabase(urls.source, urls.sourceAdmin);
  pg('pg_dump', ['--format=custom', `--file=${dumpFile}`], urls.sourceAdmin);
  // As the migration copies: onto the target cluster, every object the target user's.
  urls.copy = await createTargetDatabase(env, db.copy);
  pg('pg_restore', ['--no-owner', '--no-acl', `--dbname=${db.copy}`, dumpFile], urls.copy);
  // Owners and grants kept: restored by the admin where the source's roles exist.
  await createSourceDatabase(env, db.owned);
  urls.ownedAdmin = databaseUrl(env.SOURCE_ADMIN_URL, db.owned);
  urls.owned = databaseUrl(urls.source, db.owned);
  pg('pg_restore', [`--dbname=${db.owned}`, dumpFile], urls.ownedAdmin);
}, 120_000);

afterAll(async () => {
  rmSync(dumpDir, { recursive: true, force: true });
  if (env) {
    await dropDatabase(env.SOURCE_ADMIN_URL, db.source);
    await dropDatabase(env.TARGET_ADMIN_URL, db.copy);
    await dropDatabase(env.SOURCE_ADMIN_URL, db.owned);
    await dropDatabase(env.TARGET_ADMIN_URL, db.cloned);
  }
});

describe('catalog comparison', () => {
  test('reads what the fixture holds, described without OIDs', async () => {
    const catalog = await withClient(urls.source, (c) => readCatalog(c, { privileges: true }));
    const names = catalog.objects.map((o) => `${o.kind} ${o.name}`);
    expect(names).toEqual(
      expect.arrayContaining([
        'schema "Sales"',
        'extension plpgsql',
        'table "Sales"."Orders"',
        'column "Sales"."Orders"."CustomerName"',
        'index "Sales".orders_unpaid',
        'constraint notes_body_not_empty on public.notes',
        'constraint positive_amount_check on domain "Sales".positive_amount',
        'trigger orders_touch on "Sales"."Orders"',
        'function "Sales".order_count()',
        'view "Sales".recent_orders',
        'materialized view "Sales".order_totals',
        'sequence "Sales".invoice_no',
        'enum "Sales"."OrderStatus"',
        'domain "Sales".positive_amount',
        'table public.events_2026_h1',
      ]),
    );
    const byName = (name: string) => catalog.objects.find((o) => `${o.kind} ${o.name}` === name)!.props;
    expect(byName('materialized view "Sales".order_totals')).toMatchObject({ populated: true });
    expect(byName('constraint notes_body_not_empty on public.notes')).toEqual({
      definition: "CHECK ((body <> ''::text))",
      validated: false,
    });
    expect(byName('table public.events_2026_h1')).toMatchObject({
      'partition of': 'public.events',
      'partition bound': "FOR VALUES FROM ('2026-01-01') TO ('2026-07-01')",
    });
    expect(byName('table public.session_cache')).toMatchObject({ persistence: 'unlogged' });
    expect(byName('sequence public.documents_id_seq')).toMatchObject({ 'owned by': 'public.documents.id', type: 'integer' });
    expect(byName('enum "Sales"."OrderStatus"')).toEqual({ labels: "'new', 'paid', 'shipped'" });
    expect(byName('column "Sales"."Orders"."CustomerName"')).toMatchObject({ comment: 'as typed by the customer' });
    const oids = await query<{ oid: string }>(
      urls.source,
      `SELECT oid::text FROM pg_class WHERE oid >= 16384 UNION SELECT oid::text FROM pg_type WHERE oid >= 16384
       UNION SELECT oid::text FROM pg_proc WHERE oid >= 16384 UNION SELECT oid::text FROM pg_constraint WHERE oid >= 16384`,
    );
    const described = JSON.stringify(catalog.objects);
    expect(oids.map((o) => o.oid).filter((oid) => new RegExp(`\\b${oid}\\b`).test(described))).toEqual([]);
    expect(catalog.privileges!.grants).toEqual(
      expect.arrayContaining([
        { object: 'table public.events', privilege: 'SELECT', grantee: 'app_reader', grantable: false },
        { object: 'tables in schema "Sales"', privilege: 'SELECT', grantee: 'app_reader', grantable: false, forRole: 'app' },
        expect.objectContaining({ object: expect.stringMatching(/^large object \d+$/), privilege: 'SELECT', grantee: 'app_reader' }),
      ]),
    );
  });

  test('a copy as the migration makes it: nothing differs (owners and grants not compared)', async () => {
    const { differences, ms } = await compare(urls.copy);
    expect(differences).toEqual([]);
    console.log(`catalog comparison of the whole-database fixture: ${ms} ms`);
  });

  test('a copy by pgcopydb clone (the other dump-restore engine): nothing differs', async () => {
    const targetUrl = await createTargetDatabase(env, db.cloned);
    const tables = (await withClient(urls.source, (c) => inventoryDatabase(c))).tables;
    await pgcopydbClone({
      sourceUrl: urls.source,
      targetUrl,
      dir: path.join(dumpDir, 'pgcopydb'),
      jobs: 2,
      splitTablesLargerThan: 0,
      tables,
      applicationName: 'catalog-test',
      onTableCopied: () => undefined,
      onProgress: () => undefined,
    });
    expect((await compare(targetUrl)).differences).toEqual([]);
  }, 120_000);

  test('a copy that kept owners and grants: nothing differs with them compared, roles mapped to themselves', async () => {
    expect((await compare(urls.owned, true)).differences).toEqual([]);
  });

  test("the migration's own schemas, pgcopydb's, and extensions' objects are left out", async () => {
    await query(
      urls.copy,
      `CREATE SCHEMA _pgmig_cap_f_test;
       CREATE FUNCTION _pgmig_cap_f_test.capture() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
       CREATE TRIGGER _pgmig_cap_f_test_i AFTER INSERT ON public.notes FOR EACH STATEMENT EXECUTE FUNCTION _pgmig_cap_f_test.capture();
       CREATE SCHEMA _pgmig; CREATE TABLE _pgmig.marker (id int PRIMARY KEY);
       CREATE SCHEMA pgcopydb; CREATE TABLE pgcopydb.sentinel (id int);`,
    );
    await query(databaseUrl(env.TARGET_ADMIN_URL, db.copy), 'CREATE EXTENSION citext');
    try {
      expect((await compare(urls.copy)).differences).toEqual([]);
    } finally {
      await query(urls.copy, 'DROP SCHEMA _pgmig_cap_f_test, _pgmig, pgcopydb CASCADE');
      await query(databaseUrl(env.TARGET_ADMIN_URL, db.copy), 'DROP EXTENSION citext');
    }
  });

  describe('a damaged copy', () => {
    beforeAll(async () => {
      await query(
        urls.ownedAdmin,
        `DROP INDEX "Sales".orders_unpaid;
         REVOKE SELECT ON public.events FROM app_reader;
         REFRESH MATERIALIZED VIEW "Sales".order_totals WITH NO DATA;
         ALTER TABLE public.notes DROP CONSTRAINT notes_body_not_empty;
         ALTER TABLE public.notes ADD CONSTRAINT notes_body_not_empty CHECK (length(body) > 1) NOT VALID;
         ALTER DOMAIN "Sales".positive_amount DROP CONSTRAINT positive_amount_check;
         ALTER DOMAIN "Sales".positive_amount ADD CONSTRAINT positive_amount_check CHECK (VALUE > 0) NOT VALID;
         ALTER TYPE "Sales"."OrderStatus" ADD VALUE 'refunded';
         ALTER SEQUENCE "Sales".invoice_no INCREMENT BY 10;
         COMMENT ON COLUMN "Sales"."Orders"."CustomerName" IS NULL;
         ALTER TABLE "Sales"."Orders" DISABLE TRIGGER orders_touch;
         CREATE OR REPLACE FUNCTION "Sales".order_count() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) + 1 FROM "Sales"."Orders"';
         ALTER VIEW "Sales".recent_orders OWNER TO postgres;
         ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;
         CREATE POLICY readers ON public.notes FOR SELECT TO app_reader USING (body IS NOT NULL);
         CREATE RULE no_delete AS ON DELETE TO public.documents DO INSTEAD NOTHING;`,
      );
    });

    test('names each damage', async () => {
      expect((await compare(urls.owned, true)).differences).toEqual([
        `column "Sales"."Orders"."CustomerName": comment differs (source: as typed by the customer; target: (none))`,
        `constraint notes_body_not_empty on public.notes: definition differs (source: CHECK ((body <> ''::text)); target: CHECK ((length(body) > 1)))`,
        'constraint positive_amount_check on domain "Sales".positive_amount: NOT VALID on target',
        `enum "Sales"."OrderStatus": labels differ (source: 'new', 'paid', 'shipped'; target: 'new', 'paid', 'shipped', 'refunded')`,
        'function "Sales".order_count(): definition differs (source: …ion$SELECT count(*) FROM "Sales"."Orders"$function$; target: …ion$SELECT count(*) + 1 FROM "Sales"."Orders"$function$)',
        'index "Sales".orders_unpaid: missing on target',
        'materialized view "Sales".order_totals: not populated on target',
        'sequence "Sales".invoice_no: increment differs (source: 1; target: 10)',
        'table public.notes: row level security differs (source: off; target: on)',
        'trigger orders_touch on "Sales"."Orders": enabled differs (source: yes; target: disabled)',
        'policy readers on public.notes: exists only on target',
        'rule no_delete on public.documents: exists only on target',
        'view "Sales".recent_orders: owner differs (source: app; target: postgres)',
        'grant SELECT on table public.events to app_reader: missing on target',
      ]);
    });

    test('fails the verification inside the dump-restore copy, naming them', async () => {
      const tables = (await withClient(urls.source, (c) => inventoryDatabase(c))).tables;
      const [source, target] = [new Client({ connectionString: urls.source }), new Client({ connectionString: urls.owned })];
      await Promise.all([source.connect(), target.connect()]);
      try {
        const report = await new VerificationDuringCopy([source], [target], tables).start().finish();
        expect(report.ok).toBe(false);
        expect(report.mismatches).toEqual([]);
        expect(report.catalogDifferences).toEqual(
          expect.arrayContaining([
            'index "Sales".orders_unpaid: missing on target',
            'materialized view "Sales".order_totals: not populated on target',
          ]),
        );
        // Owners and grants are off by default (the copy does not carry them yet).
        expect(report.catalogDifferences!.filter((d) => /owner|grant/.test(d))).toEqual([]);
      } finally {
        await Promise.all([source.end(), target.end()]);
      }
    });
  });
});
