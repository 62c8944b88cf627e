/** The triggers method's pure parts: names, the safe horizon, the statements, batch planning, lock reports. */
import { describe, expect, it } from 'vitest';
import { replicationNames } from '../../activities/methods/cdc/marker';
import { cutBatch } from '../../activities/methods/triggers/apply';
import {
  changeStatements,
  planSteps,
  truncateFallbackSql,
  truncateSql,
  type TargetTable,
} from '../../activities/methods/triggers/apply-sql';
import { CHUNK_ROWS, captureStatements, triggerDdl } from '../../activities/methods/triggers/capture';
import { SafeHorizon } from '../../activities/methods/triggers/horizon';
import type { CaptureTable } from '../../activities/methods/triggers/keys';
import { describeHolder, type LockHolder } from '../../activities/methods/triggers/locks';
import { captureNames, markerTableRef } from '../../activities/methods/triggers/names';

describe('capture names', () => {
  const ids = ['mig_1', 'A', 'a', 'a-b', 'a_b', 'a.b', 'Überweisung 2024', `${'x'.repeat(200)}1`, `${'x'.repeat(200)}2`];

  it('are valid unquoted identifiers within 63 bytes, distinct per id and direction', () => {
    const seen = new Set<string>();
    for (const id of ids) {
      for (const direction of ['forward', 'reverse'] as const) {
        const n = captureNames(id, direction);
        for (const name of [n.schema, n.applyStateTable, ...Object.values(n.triggers)]) {
          expect(name).toMatch(/^[a-z_][a-z0-9_]*$/);
          expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
        }
        expect(Object.values(n.triggers).every((t) => t.startsWith(n.triggerPrefix))).toBe(true);
        seen.add(n.schema);
      }
    }
    expect(seen.size).toBe(ids.length * 2);
  });

  it('keep a clean id readable, and capture the migration’s marker table', () => {
    expect(captureNames('mig_1', 'forward').schema).toBe('_pgmig_cap_f_mig_1');
    expect(captureNames('mig_1', 'reverse').applyState).toBe('"_pgmig"."_pgmig_cap_r_mig_1_apply"');
    expect(markerTableRef('mig-1')).toEqual({ schema: '_pgmig', name: replicationNames('mig-1').markerTable });
  });
});

describe('safe horizon', () => {
  it('is the last id at once when nobody holds the log', () => {
    expect(new SafeHorizon().observe({ lastId: 7n, holders: [] })).toBe(7n);
  });

  it('stays below a transaction that holds log ids until it ends, then moves past it', () => {
    const h = new SafeHorizon();
    expect(h.observe({ lastId: 1n, holders: [] })).toBe(1n);
    // T holds id 2 (uncommitted); U commits id 3: a watermark at 3 would lose T's row.
    expect(h.observe({ lastId: 3n, holders: ['5/1'] })).toBe(1n);
    expect(h.waiting).toBe(true);
    expect(h.observe({ lastId: 4n, holders: ['5/1'] })).toBe(1n);
    expect(h.observe({ lastId: 4n, holders: [] })).toBe(4n);
    expect(h.waiting).toBe(false);
  });

  it('makes an earlier id final once its own writers ended, while newer writers still hold later ids', () => {
    const h = new SafeHorizon();
    expect(h.observe({ lastId: 10n, holders: ['3/7'] })).toBe(0n);
    expect(h.observe({ lastId: 20n, holders: ['4/9'] })).toBe(10n);
    expect(h.observe({ lastId: 20n, holders: ['4/9', '6/2'] })).toBe(10n);
    // 6/2 took the lock after 20 was read: it cannot hold ids up to 20.
    expect(h.observe({ lastId: 25n, holders: ['6/2'] })).toBe(20n);
  });

  it('keeps a bounded memory under a transaction that never ends, and catches up when it does', () => {
    const h = new SafeHorizon();
    for (let i = 1n; i <= 500n; i++) expect(h.observe({ lastId: i, holders: ['1/1', `2/${i}`] })).toBe(0n);
    expect(h.observe({ lastId: 500n, holders: ['2/500'] })).toBe(499n);
    expect(h.observe({ lastId: 500n, holders: [] })).toBe(500n);
  });
});

const keyed: CaptureTable = {
  schema: 'Odd "s"',
  name: "it's",
  rel: '"Odd ""s"""."it\'s"',
  partitioned: false,
  isPartition: false,
  key: 'primary-key',
  keyColumns: ['Id', 'day'],
};
const wholeRow: CaptureTable = { ...keyed, key: 'whole-row', keyColumns: [] };

describe('capture statements', () => {
  it('log keys of deleted rows, whole new rows, and for updates only the keys that disappeared, in chunks', () => {
    const s = captureStatements('"cap"."log"', keyed);
    expect(s.insert).toContain(
      `'I', count(*), json_agg(r) FROM (SELECT to_json(r) AS r, (row_number() OVER () - 1) / ${CHUNK_ROWS} AS c FROM pgmig_new r)`,
    );
    expect(s.delete).toContain('FROM (SELECT "Id", "day" FROM pgmig_old) r');
    expect(s.update).toContain('(SELECT "Id", "day" FROM pgmig_old EXCEPT SELECT "Id", "day" FROM pgmig_new)');
    expect(s.truncate).toBe(`INSERT INTO "cap"."log" (rel, op, n_rows) VALUES ('"Odd ""s"""."it''s"', 'T', 0)`);
    const w = captureStatements('"cap"."log"', wholeRow);
    expect(w.delete).toContain('FROM pgmig_old r');
    expect(w.update).not.toContain('EXCEPT');
  });

  it('write them into one function per table and operation, attached by four statement triggers, transition tables on all but TRUNCATE', () => {
    const names = captureNames('m', 'forward');
    const ddl = triggerDdl(names, keyed);
    const triggers = ddl.filter((d) => d.startsWith('CREATE OR REPLACE TRIGGER'));
    expect(triggers).toHaveLength(4);
    expect(triggers[0]).toMatch(
      /^CREATE OR REPLACE TRIGGER "_pgmig_cap_f_m_i" AFTER INSERT ON "Odd ""s"""."it's" REFERENCING NEW TABLE AS pgmig_new FOR EACH STATEMENT/,
    );
    expect(triggers[1]).toContain('REFERENCING OLD TABLE AS pgmig_old NEW TABLE AS pgmig_new');
    expect(triggers[3]).toBe(
      `CREATE OR REPLACE TRIGGER "_pgmig_cap_f_m_t" AFTER TRUNCATE ON "Odd ""s"""."it's" FOR EACH STATEMENT EXECUTE FUNCTION ${names.functionFor(keyed.rel, 't')}()`,
    );
    // The statement is the function's body (its plan is kept), quoted with a tag the table's name cannot end early.
    const truncateFn = ddl.find((d) => d.includes(`FUNCTION ${names.functionFor(keyed.rel, 't')}() RETURNS trigger`))!;
    expect(truncateFn).toContain(`AS $pgmig0$BEGIN ${captureStatements(names.log, keyed).truncate}; RETURN NULL; END$pgmig0$`);
    expect(ddl).toContain(`REVOKE ALL ON FUNCTION ${names.functionFor(keyed.rel, 'u')}() FROM PUBLIC`);
    const sly = triggerDdl(names, { ...keyed, name: 'a$pgmig0$b', rel: '"public"."a$pgmig0$b"' });
    expect(sly.find((d) => d.includes('RETURNS trigger'))).toMatch(/AS \$pgmig1\$BEGIN .*\$pgmig1\$$/s);
  });
});

const target = (over: Partial<TargetTable> = {}): TargetTable => ({
  rel: '"public"."t"',
  partitioned: false,
  key: 'primary-key',
  keyColumns: ['id'],
  columns: ['id', 'v', 'seq'],
  generated: ['g'],
  identityAlways: ['seq'],
  onConflict: true,
  ...over,
});

describe('apply statements', () => {
  it('upsert on the key, leaving identity ALWAYS columns as they are', () => {
    const [s] = changeStatements(target(), 'I', false);
    expect(s.sql).toBe(
      'INSERT INTO "public"."t" ("id", "v", "seq") OVERRIDING SYSTEM VALUE SELECT "id", "v", "seq" FROM json_populate_recordset(NULL::"public"."t", $1::json) ON CONFLICT ("id") DO UPDATE SET "v" = EXCLUDED."v"',
    );
    expect(changeStatements(target({ columns: ['id'], identityAlways: [] }), 'I', false)[0].sql).toMatch(
      /ON CONFLICT \("id"\) DO NOTHING$/,
    );
  });

  it('delete the disappeared keys before writing the new rows, and delete-then-insert without a usable unique index', () => {
    const update = changeStatements(target(), 'U', true);
    expect(update.map((s) => s.rows)).toEqual(['old', 'new']);
    expect(update[0].sql).toContain(
      'DELETE FROM "public"."t" AS t USING json_populate_recordset(NULL::"public"."t", $1::json) AS k WHERE t."id" = k."id"',
    );
    expect(changeStatements(target(), 'U', false).map((s) => s.rows)).toEqual(['new']);
    const deferrable = changeStatements(target({ onConflict: false }), 'I', false);
    expect(deferrable.map((s) => s.sql.split(' ')[0])).toEqual(['DELETE', 'INSERT']);
    expect(deferrable[1].sql).not.toContain('ON CONFLICT');
  });

  it('match whole rows one for one, without their generated columns', () => {
    const [remove, insert] = changeStatements(target({ key: 'whole-row', keyColumns: [], onConflict: false }), 'U', true);
    expect(remove).toMatchObject({ rows: 'old', withGenerated: true });
    expect(remove.sql).toContain('(t.tableoid, t.ctid) IN');
    expect(remove.sql).toContain('WHERE m.i <= m.n');
    expect(insert.sql).not.toContain('ON CONFLICT');
  });

  it('truncate the tables of one statement together (a partitioned table without ONLY), or delete in reverse order', () => {
    const tables = [target({ rel: '"p"', partitioned: true }), target({ rel: '"c"' })];
    expect(truncateSql(tables)).toBe('TRUNCATE "p", ONLY "c"');
    expect(truncateFallbackSql(tables)).toEqual(['DELETE FROM ONLY "c"', 'DELETE FROM "p"']);
  });
});

describe('batches', () => {
  const row = (id: string, op: 'I' | 'U' | 'D' | 'T', xid: string) => ({ id, op, xid, rel: `r${id}`, nRows: 1 });

  it('group consecutive TRUNCATE rows of one transaction, and nothing else', () => {
    const steps = planSteps([
      row('1', 'T', '9'),
      row('2', 'T', '9'),
      row('3', 'T', '8'),
      row('4', 'I', '8'),
      row('5', 'T', '8'),
      row('6', 'T', '9'),
    ]);
    expect(steps.map((s) => s.map((r) => r.id))).toEqual([['1', '2'], ['3'], ['4'], ['5'], ['6']]);
  });

  it('cut at the row limit, or once the bytes are reached (the first row always goes)', () => {
    const rows = [{ bytes: 10 }, { bytes: 10 }, { bytes: 10 }, { bytes: 10 }];
    expect(cutBatch(rows, 3, 1000)).toHaveLength(3);
    expect(cutBatch(rows, 10, 15)).toHaveLength(2);
    expect(cutBatch([{ bytes: 1e9 }, { bytes: 1 }], 10, 15)).toHaveLength(1);
  });
});

describe('lock holders', () => {
  const holder = (over: Partial<LockHolder>): LockHolder => ({
    pid: 42,
    mode: 'RowExclusiveLock',
    granted: true,
    usename: 'app',
    backendType: 'client backend',
    state: 'idle in transaction',
    query: 'UPDATE t SET x = 1',
    xactAgeSeconds: 3600,
    ...over,
  });

  it('name who holds the lock, how long, and what it ran', () => {
    expect(describeHolder(holder({ query: `UPDATE t SET x = '${'y'.repeat(200)}'` }))).toBe(
      `pid 42 (role app, idle in transaction, transaction open for 3600 s, holds RowExclusiveLock): "UPDATE t SET x = '${'y'.repeat(82)}"`,
    );
    expect(describeHolder(holder({ backendType: 'autovacuum worker', query: 'autovacuum: VACUUM public.t (to prevent wraparound)' }))).toBe(
      'autovacuum (to prevent wraparound) (pid 42)',
    );
    expect(describeHolder(holder({ query: '<insufficient privilege>', state: null, xactAgeSeconds: null, usename: 'app_worker' }))).toBe(
      'pid 42 (role app_worker, details hidden from this role (pg_read_all_stats shows them), holds RowExclusiveLock)',
    );
    expect(describeHolder(holder({ pid: null }))).toBe('a prepared transaction (RowExclusiveLock)');
  });
});
