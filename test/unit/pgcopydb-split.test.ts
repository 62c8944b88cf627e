import { describe, expect, it } from 'vitest';
import { sizeInBytes, splitAbove } from '../../activities/methods/dump-restore/pgcopydb-clone';
import type { TableInventory } from '../../contract/plan';

const table = (schema: string, name: string, bytes: number) => ({ schema, name, bytes }) as TableInventory;
const MB = 1024 * 1024;

describe('pgcopydb split threshold', () => {
  it('splits large tables, unless a large one has a name pgcopydb 0.10 would not quote (it then fails on it)', () => {
    const run = 512 * MB;
    expect(splitAbove(run, [table('public', 'orders', 600 * MB), table('billing', 'LedgerEntries', 10 * MB)])).toBe(512 * MB);
    expect(splitAbove(run, [table('public', 'orders', 600 * MB), table('billing', 'LedgerEntries', 513 * MB)])).toBe(0);
    expect(splitAbove(run, [table('Shop', 'orders', 600 * MB)])).toBe(0);
  });

  it("reads copy.splitTablesLargerThan's sizes", () => {
    expect(sizeInBytes('512MB')).toBe(512 * MB);
    expect(sizeInBytes('2 GB')).toBe(2048 * MB);
    expect(sizeInBytes('64kB')).toBe(64 * 1024);
  });
});
