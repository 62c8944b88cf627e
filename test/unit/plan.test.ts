import { describe, expect, it } from 'vitest';
import { checkMigrationInput, type MigrationInput } from '../../contract/input';
import { buildPlan, estimateDumpRestoreMs, type DatabaseInventory } from '../../contract/plan';

function inventory(overrides: Partial<DatabaseInventory> = {}): DatabaseInventory {
  return {
    serverVersion: '15.4',
    serverVersionNum: 150004,
    database: 'db',
    currentUser: 'app',
    isSuperuser: false,
    ownsDatabase: true,
    encoding: 'UTF8',
    sizeBytes: 100 * 1024 * 1024,
    walLevel: 'logical',
    maxConnections: 100,
    connectionsInUse: 5,
    tables: [],
    sequences: [],
    extensions: ['plpgsql'],
    availableExtensions: ['plpgsql', 'citext'],
    largeObjects: 0,
    preparedTransactions: 0,
    schemas: ['public'],
    userObjects: 0,
    readOnlySettings: [],
    ...overrides,
  };
}

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
    const plan = buildPlan(input({ downtimeBudget: '1m' }), source, target);
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
        { schema: 'public', name: 'events', estimatedRows: 10, bytes: 10, hasPrimaryKey: false, unlogged: false, partitioned: false },
        { schema: 'public', name: 'cache', estimatedRows: 10, bytes: 10, hasPrimaryKey: true, unlogged: true, partitioned: false },
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
});
