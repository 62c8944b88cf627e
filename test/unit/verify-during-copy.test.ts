/**
 * The verification that overlaps the copy, on fake sessions (pure logic: which table is read on which
 * side when): the frozen source is fingerprinted at once, a target table only once its data is in, a
 * difference is reported, and a failed read ends it with that error.
 */
import type { Client } from 'pg';
import { describe, expect, it, vi } from 'vitest';
import type { TableInventory } from '../../contract/plan';
import { VerificationDuringCopy } from '../../activities/database/verify-during-copy';
import { tableInventory } from '../helpers/inventory';

const table = (name: string, bytes: number): TableInventory => tableInventory('public', name, bytes / 100);

/** A session answering fingerprint queries from `data` (rows per table), logging each read as `side:table`. */
function fakeSession(side: string, data: Record<string, number>, log: string[], fail?: string): Client {
  return {
    query: async (sql: string) => {
      await new Promise((r) => setTimeout(r, 5));
      const m = /FROM "public"\."(\w+)"/.exec(sql);
      // The catalog (its session's search path, then no objects on either side) and the row hash choice.
      if (!m) return { rows: /search_path/.test(sql) ? [{ path: 'public' }] : [] };
      if (m[1] === fail) throw new Error(`relation "${m[1]}" does not exist`);
      log.push(`${side}:${m[1]}`);
      return { rows: [{ n: String(data[m[1]]), sum: String(data[m[1]] * 7) }] };
    },
  } as unknown as Client;
}

describe('verification during the copy', () => {
  const tables = [table('small', 10), table('big', 1000), table('mid', 100)];

  it('reads the source at once (largest first) and each target table only after it is copied', async () => {
    const log: string[] = [];
    const rows = { small: 1, big: 100, mid: 10 };
    const v = new VerificationDuringCopy([fakeSession('source', rows, log)], [fakeSession('target', rows, log)], tables).start();
    // Polled, not slept: on a loaded machine the reads take longer than any fixed pause.
    await vi.waitFor(() => expect(log).toEqual(['source:big', 'source:mid', 'source:small']), { timeout: 5_000 });
    v.tableCopied('public', 'mid');
    await vi.waitFor(() => expect(log).toEqual(['source:big', 'source:mid', 'source:small', 'target:mid']), { timeout: 5_000 });
    expect(v.done).toBe(1);
    const report = await v.finish();
    expect(log.slice(4).sort()).toEqual(['target:big', 'target:small']);
    expect(report).toMatchObject({ ok: true, tablesChecked: 3, rowsChecked: 111, mismatches: [] });
  });

  it('reports a table whose rows differ', async () => {
    const log: string[] = [];
    const v = new VerificationDuringCopy(
      [fakeSession('source', { small: 1, big: 100, mid: 10 }, log)],
      [fakeSession('target', { small: 1, big: 99, mid: 10 }, log)],
      tables,
    ).start();
    for (const t of tables) v.tableCopied(t.schema, t.name);
    const report = await v.finish();
    expect(report.ok).toBe(false);
    expect(report.mismatches).toEqual([expect.objectContaining({ table: 'public.big', sourceRows: 100, targetRows: 99 })]);
  });

  it('ends with the error of a read that failed', async () => {
    const log: string[] = [];
    const rows = { small: 1, big: 100, mid: 10 };
    const v = new VerificationDuringCopy([fakeSession('source', rows, log)], [fakeSession('target', rows, log, 'mid')], tables).start();
    v.tableCopied('public', 'mid');
    await expect(v.finish()).rejects.toThrow('relation "mid" does not exist');
  });

  it('abandoned (the copy failed), it stops waiting for tables', async () => {
    const log: string[] = [];
    const rows = { small: 1, big: 100, mid: 10 };
    const v = new VerificationDuringCopy([fakeSession('source', rows, log)], [fakeSession('target', rows, log)], tables).start();
    v.abandon();
    await expect(v.finish()).rejects.toThrow('the copy did not complete');
  });
});
