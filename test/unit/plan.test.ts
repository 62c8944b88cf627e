import { describe, expect, it } from 'vitest';
import { checkMigrationInput, type MigrationInput } from '../../contract/input';
import { METHOD_TRAITS } from '../../contract/methods';
import {
  buildPlan,
  CDC_CUTOVER_ESTIMATE_MS,
  estimateDumpRestoreMs,
  WINDOW_COPY_BYTES_PER_SECOND,
  WINDOW_COPY_MS_PER_LARGE_OBJECT,
  windowCopy,
} from '../../contract/plan';
import { inventory, tableInventory } from '../helpers/inventory';

function input(extra: Record<string, unknown> = {}): MigrationInput {
  const checked = checkMigrationInput({
    source: { url: { env: 'S' } },
    target: { url: { env: 'T' } },
    configSink: { type: 'env-file', path: '/x' },
    ...extra,
  });
  if (!checked.ok) throw new Error('bad fixture');
  return checked.input;
}

describe('buildPlan', () => {
  it('chooses dump-restore for a small database and explains the estimate', () => {
    const plan = buildPlan(input({ downtimeBudget: '10m' }), inventory({ tables: [] }), inventory({ currentUser: 'rds_master' }));
    expect(plan.method).toBe('dump-restore');
    expect(plan.blockers).toEqual([]);
    expect(plan.estimatedDowntimeMs).toBe(estimateDumpRestoreMs(100 * 1024 * 1024, 2));
    expect(plan.methodReasons[0]).toMatch(/auto: source is 100\.0 MB/);
    expect(plan.appRoles).toEqual(['app']);
  });

  it('blocks every condition that would make the run unsafe', () => {
    const source = inventory({
      serverVersionNum: 160002,
      serverVersion: '16.2',
      extensions: ['plpgsql', 'postgis'],
      ownsDatabase: false,
      preparedTransactions: 1,
      readOnlySettings: [{ role: 'reporting', database: null, value: 'off' }],
      maxConnections: 5,
      connectionsInUse: 4,
      sizeBytes: 500 * 1024 ** 3,
    });
    const target = inventory({ userObjects: 3, database: 'rds' });
    const plan = buildPlan(input({ downtimeBudget: '1m', method: 'dump-restore' }), source, target);
    const text = plan.blockers.join('\n');
    expect(text).toMatch(/target database "rds" is not empty \(3 user objects\)/);
    expect(text).toMatch(/target PostgreSQL 15\.4 is older than source 16\.2/);
    expect(text).toMatch(/extension "postgis" is installed on the source but not available on the target/);
    expect(text).toMatch(/does not own database/);
    expect(text).toMatch(/prepared transaction/);
    expect(text).toMatch(/role "reporting" has its own default_transaction_read_only=off/);
    expect(text).toMatch(/source has 1 free connections/);
    expect(text).toMatch(/exceeds downtimeBudget 1m/);
  });

  it('warns about what a dump carries but users should know', () => {
    const source = inventory({
      largeObjects: 2,
      tables: [
        {
          schema: 'public',
          name: 'events',
          estimatedRows: 10,
          bytes: 10,
          hasPrimaryKey: false,
          unlogged: false,
          partitioned: false,
          isPartition: false,
          replicaIdentity: 'd',
          owner: 'app',
        },
        {
          schema: 'public',
          name: 'cache',
          estimatedRows: 10,
          bytes: 10,
          hasPrimaryKey: true,
          unlogged: true,
          partitioned: false,
          isPartition: false,
          replicaIdentity: 'd',
          owner: 'app',
        },
      ],
    });
    const plan = buildPlan(input(), source, inventory({ serverVersionNum: 160000, serverVersion: '16.0' }));
    expect(plan.blockers).toEqual([]);
    const text = plan.warnings.join('\n');
    expect(text).toMatch(/1 table\(s\) without a primary key \(public\.events\)/);
    expect(text).toMatch(/1 UNLOGGED table/);
    expect(text).toMatch(/2 large object/);
    expect(text).toMatch(/version skew/);
    expect(text).toMatch(/no downtimeBudget given/);
  });

  it('auto picks logical replication when a dump-restore would not fit, and says why', () => {
    const plan = buildPlan(
      input({ downtimeBudget: '30s' }),
      inventory({ sizeBytes: 50 * 1024 ** 3, walBytesPerSecond: 2 * 1024 * 1024 }),
      inventory(),
    );
    expect(plan.method).toBe('logical');
    expect(plan.blockers).toEqual([]);
    expect(plan.methodReasons.join(' ')).toMatch(/too large to freeze.*native logical replication is available.*2\.0 MB\/s of WAL/);
  });

  it('auto picks trigger capture for a source without logical replication (Heroku), with what capture costs', () => {
    const heroku = inventory({ sizeBytes: 50 * 1024 ** 3, walLevel: 'replica', canReplicate: false, walBytesPerSecond: 1024 * 1024 });
    const plan = buildPlan(input({ downtimeBudget: '30s' }), heroku, inventory({ canSetReplicationRole: true }));
    expect(plan.method).toBe('triggers');
    expect(plan.blockers).toEqual([]);
    const why = plan.methodReasons.join(' ');
    expect(why).toMatch(/not possible here \(source wal_level is replica.*no REPLICATION privilege\): trigger-based change capture/);
    expect(why).toMatch(/about 2x the source's WAL \(1\.0 MB\/s measured, so ~2\.0 MB\/s\).*~428\.2 MB of disk during the initial copy/);
    // A small Heroku database still gets the simplest method that fits.
    expect(buildPlan(input({ downtimeBudget: '10m' }), inventory({ canReplicate: false }), inventory()).method).toBe('dump-restore');
    // Where capture cannot run either, auto stays on logical and its blockers say why.
    const neither = buildPlan(
      input({ downtimeBudget: '30s' }),
      { ...heroku, serverVersionNum: 120000, serverVersion: '12.0' },
      inventory(),
    );
    expect(neither.method).toBe('logical');
    expect(neither.blockers.join('\n')).toMatch(/no REPLICATION privilege/);
  });

  it('triggers: refuses tables it cannot find rows of, tables it may not add triggers to, large objects; a unique NOT NULL index is a key', () => {
    const table = (name: string, extra: Record<string, unknown>) => ({
      schema: 'public',
      name,
      estimatedRows: 1,
      bytes: 1,
      hasPrimaryKey: false,
      unlogged: false,
      partitioned: false,
      isPartition: false,
      replicaIdentity: 'd' as const,
      owner: 'app',
      ...extra,
    });
    const tables = [
      table('events', {}),
      table('codes', { hasUniqueKey: true }),
      table('cache', { hasPrimaryKey: true, unlogged: true }),
      table('theirs', { hasPrimaryKey: true, owner: 'other' }),
    ];
    const source = inventory({ canReplicate: false, largeObjects: 2, largeObjectBytes: 10 * 1024 * 1024, tables });
    const plan = buildPlan(input({ method: 'triggers' }), source, inventory({ canSetReplicationRole: false }));
    const text = plan.blockers.join('\n');
    expect(text).toMatch(/table\(s\) public\.events have no primary key and no unique index on NOT NULL columns/);
    expect(text).not.toMatch(/codes|cache/);
    expect(text).toMatch(/public\.theirs are not owned by "app", which cannot create the capture triggers/);
    expect(text).not.toMatch(/REPLICATION|wal_level|slot|large object/);
    expect(plan.warnings.join(' ')).toMatch(/may not SET session_replication_role/);
    // Large objects go inside the window: in the estimate, and said so.
    expect(plan.warnings.join(' ')).toMatch(
      /2 large object\(s\) \(10\.0 MB\): no change stream carries them, so they are copied inside the write-freeze window/,
    );
    expect(plan.estimatedDowntimeMs).toBeGreaterThan(CDC_CUTOVER_ESTIMATE_MS + 100);
    const whole = buildPlan(
      input({ method: 'triggers', replication: { tablesWithoutPrimaryKey: 'replica-identity-full' } }),
      inventory({ canReplicate: false, tables: [tables[0]] }),
      inventory({ canSetReplicationRole: true }),
    );
    expect(whole.blockers).toEqual([]);
  });

  it('refuses sessions of other roles the source role can neither see nor end: they would write through the freeze', () => {
    const source = inventory({ unendableSessions: [{ role: 'app_worker', sessions: 2 }] });
    const plan = buildPlan(input({ method: 'dump-restore' }), source, inventory());
    expect(plan.blockers.join('\n')).toMatch(
      /source: 2 session\(s\) of role "app_worker" may write to the database, and "app" can neither see when they began nor end them .*pg_signal_backend/,
    );
  });

  it('refuses what logical replication would silently get wrong', () => {
    const tables = [
      {
        schema: 'public',
        name: 'events',
        estimatedRows: 1,
        bytes: 1,
        hasPrimaryKey: false,
        unlogged: false,
        partitioned: false,
        isPartition: false,
        replicaIdentity: 'd' as const,
        owner: 'app',
      },
      {
        schema: 'public',
        name: 'cache',
        estimatedRows: 1,
        bytes: 1,
        hasPrimaryKey: true,
        unlogged: true,
        partitioned: false,
        isPartition: false,
        replicaIdentity: 'd' as const,
        owner: 'app',
      },
      {
        schema: 'public',
        name: 'foreign',
        estimatedRows: 1,
        bytes: 1,
        hasPrimaryKey: true,
        unlogged: false,
        partitioned: false,
        isPartition: false,
        replicaIdentity: 'd' as const,
        owner: 'other',
      },
    ];
    const source = inventory({ walLevel: 'replica', canReplicate: false, largeObjects: 3, tables, replicationSlotsUsed: 9 });
    const plan = buildPlan(input({ method: 'logical' }), source, inventory({ canSubscribe: false }));
    const text = plan.blockers.join('\n');
    expect(text).toMatch(/wal_level is replica/);
    expect(text).toMatch(/no REPLICATION privilege/);
    expect(text).toMatch(/1 free replication slot/);
    expect(text).toMatch(/cannot CREATE SUBSCRIPTION/);
    // UNLOGGED tables and large objects are copied inside the window instead (see below).
    expect(text).not.toMatch(/UNLOGGED|large object/);
    expect(text).toMatch(/without a primary key or replica identity \(public\.events\)/);
    expect(text).toMatch(/public\.foreign are not owned by "app"/);
    const allowed = buildPlan(
      input({ method: 'logical', replication: { tablesWithoutPrimaryKey: 'replica-identity-full' } }),
      inventory({ tables: [tables[0]] }),
      inventory(),
    );
    expect(allowed.blockers).toEqual([]);
    expect(allowed.warnings.join(' ')).toMatch(/get REPLICA IDENTITY FULL/);
  });
});

describe('buildPlan: what CDC methods copy inside the write-freeze window', () => {
  const MB = 1024 * 1024;
  const tables = [
    tableInventory('public', 'orders', 1000),
    tableInventory('public', 'session_cache', 1000, { unlogged: true, bytes: 80 * MB }),
    tableInventory('public', 'cache_2026', 1000, { unlogged: true, isPartition: true, bytes: 40 * MB }),
  ];
  const source = inventory({ tables, largeObjects: 4, largeObjectBytes: 8 * MB });

  it('UNLOGGED tables (not for triggers, whose capture sees them) and large objects: sizes, the estimate, said in warnings', () => {
    const copy = windowCopy(METHOD_TRAITS.logical, source);
    expect(copy.unlogged.map((t) => t.name)).toEqual(['session_cache', 'cache_2026']);
    expect(copy.unloggedBytes).toBe(120 * MB);
    expect(copy.unloggedMs).toBe(Math.round(((120 * MB) / WINDOW_COPY_BYTES_PER_SECOND) * 1000));
    expect(copy.largeObjectsMs).toBe(Math.round(((8 * MB) / WINDOW_COPY_BYTES_PER_SECOND) * 1000) + 4 * WINDOW_COPY_MS_PER_LARGE_OBJECT);
    for (const method of ['logical', 'pgcopydb', 'dms'] as const) {
      const plan = buildPlan(input({ method, replication: { tablesWithoutPrimaryKey: 'replica-identity-full' } }), source, inventory());
      expect(plan.blockers, method).toEqual([]);
      expect(plan.estimatedDowntimeMs, method).toBe(CDC_CUTOVER_ESTIMATE_MS + copy.estimatedMs);
      expect(plan.estimateBasis).toMatch(
        /UNLOGGED table\(s\) public\.session_cache, public\.cache_2026 \(120\.0 MB\) and 4 large object\(s\) \(8\.0 MB\)/,
      );
      const warnings = plan.warnings.join('\n');
      expect(warnings).toMatch(
        /2 UNLOGGED table\(s\) \(public\.session_cache, public\.cache_2026, 120\.0 MB\): invisible to logical decoding, so they are emptied on the target and copied from the frozen source inside the write-freeze window/,
      );
      expect(warnings).toMatch(/4 large object\(s\) \(8\.0 MB\): no change stream carries them/);
    }
    const triggers = buildPlan(input({ method: 'triggers' }), source, inventory());
    expect(triggers.estimatedDowntimeMs).toBe(CDC_CUTOVER_ESTIMATE_MS + copy.largeObjectsMs);
    expect(triggers.warnings.join('\n')).not.toMatch(/UNLOGGED table\(s\) \(/);
    // dump-restore copies both with everything else.
    expect(windowCopy(METHOD_TRAITS['dump-restore'], source).estimatedMs).toBe(0);
  });

  it('refuses with the measured sizes when the window would exceed downtimeBudget, or what one window step may take', () => {
    const over = buildPlan(input({ method: 'logical', downtimeBudget: '2s' }), source, inventory());
    expect(over.blockers).toEqual([
      expect.stringMatching(
        /^estimated write-freeze window \d+\.\d s exceeds downtimeBudget 2s: UNLOGGED table\(s\) public\.session_cache, public\.cache_2026 \(120\.0 MB\) and 4 large object\(s\) \(8\.0 MB\), which no change stream carries, are copied inside it/,
      ),
    ]);
    expect(buildPlan(input({ method: 'logical', downtimeBudget: '10s' }), source, inventory()).blockers).toEqual([]);
    const huge = inventory({ tables: [tableInventory('public', 'sessions', 1, { unlogged: true, bytes: 10 * 1024 * MB })] });
    expect(buildPlan(input({ method: 'dms' }), huge, inventory()).blockers).toEqual([
      expect.stringMatching(/^UNLOGGED table\(s\) public\.sessions \(10\.0 GB\) would be copied inside the write-freeze window in ~\d/),
    ]);
  });
});

describe('buildPlan: what preflight checked beside the inventories', () => {
  it('blocks on application roles missing on the source or beyond the source role, naming the field', () => {
    const plan = buildPlan(
      input({ source: { url: { env: 'S' }, appRoles: ['app', 'ghost', 'worker', 'admin'] } }),
      inventory(),
      inventory(),
      {
        missingAppRoles: ['ghost', 'worker'],
        unalterableAppRoles: [{ role: 'admin', reason: 'permission denied to alter role' }],
      },
    );
    expect(plan.blockers).toEqual([
      'source.appRoles: "ghost", "worker" do not exist on the source (database "db"); the freeze would fail with writes already frozen',
      'source.appRoles: "app" cannot make role "admin" read-only in database "db" (permission denied to alter role)',
    ]);
  });

  it('blocks on every config sink problem, as the sink named it', () => {
    const plan = buildPlan(input(), inventory(), inventory(), {
      configSink: ['configSink.path: directory /nowhere does not exist on this worker (w1)'],
    });
    expect(plan.blockers).toEqual(['configSink.path: directory /nowhere does not exist on this worker (w1)']);
  });

  it("names dump-restore's copy engine, and blocks when the one asked for is not on the worker", () => {
    const dumpRestore = input({ method: 'dump-restore', copy: { engine: 'pgcopydb' } });
    const found = buildPlan(dumpRestore, inventory(), inventory(), { copyEngine: { engine: 'pgcopydb' } });
    expect(found.blockers).toEqual([]);
    expect(found.methodReasons).toContain('copy engine: pgcopydb (copy.engine "pgcopydb"), verification during the copy');
    const missing = buildPlan(dumpRestore, inventory(), inventory(), {
      copyEngine: { problem: 'copy.engine: "pgcopydb", but pgcopydb is not installed' },
    });
    expect(missing.blockers).toEqual(['copy.engine: "pgcopydb", but pgcopydb is not installed']);
  });

  it('blocks when the initial copy is pgcopydb and pgcopydb cannot run on this worker, naming the field', () => {
    const missing = { pgcopydbMissing: 'pgcopydb is not installed on this worker (Debian: apt-get install pgcopydb)' };
    const target = inventory({ canSubscribe: true });
    const forMethod = buildPlan(input({ method: 'pgcopydb' }), inventory(), target, missing);
    expect(forMethod.blockers).toEqual([
      expect.stringMatching(/^method: pgcopydb, which makes the initial copy, cannot run on this worker: pgcopydb is not installed/),
    ]);
    const forLogical = buildPlan(input({ method: 'logical', replication: { initialCopy: 'pgcopydb' } }), inventory(), target, missing);
    expect(forLogical.blockers).toEqual([expect.stringMatching(/^replication\.initialCopy: pgcopydb, which makes the initial copy/)]);
    expect(buildPlan(input({ method: 'logical' }), inventory(), target, missing).blockers).toEqual([]);
  });
});
