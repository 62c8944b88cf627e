/**
 * Logical method on a schema with the tricky cases: no primary key, identity and generated columns,
 * a partitioned table, an enum, mixed-case quoted names, a non-public schema. UNLOGGED tables and
 * large objects, copied inside the write-freeze window, are refused by preflight with their measured
 * size when that window would exceed downtimeBudget, and DDL on the source during replication blocks
 * the cutover instead of corrupting the target.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveUpdate, statusQuery } from '../../signals';
import { openSandbox, query, sourceWritable, targetTableCount, type Sandbox } from '../helpers/harness';
import { migrationResult } from '../../signals/outcome';

let sandbox: Sandbox;

const TRICKY = `
  CREATE SCHEMA "Reporting";
  CREATE TYPE "Reporting"."Mood" AS ENUM ('ok', 'meh');
  CREATE TABLE "Reporting"."DailyStats" (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "Day" date NOT NULL,
    mood "Reporting"."Mood" NOT NULL,
    visits int NOT NULL,
    visits_x2 int GENERATED ALWAYS AS (visits * 2) STORED
  );
  INSERT INTO "Reporting"."DailyStats" ("Day", mood, visits) SELECT d::date, 'ok', 10 FROM generate_series('2024-01-01'::date, '2024-03-01', '1 day') d;
  CREATE TABLE public.measurements (id bigserial, taken date NOT NULL, value numeric, PRIMARY KEY (id, taken)) PARTITION BY RANGE (taken);
  CREATE TABLE public.measurements_2024 PARTITION OF public.measurements FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
  CREATE TABLE public.measurements_2025 PARTITION OF public.measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
  INSERT INTO public.measurements (taken, value) SELECT '2024-01-01'::date + (i % 700), i FROM generate_series(1, 3000) i;
`;

beforeAll(async () => {
  sandbox = await openSandbox('tricky');
  await query(sandbox.sourceUrl, TRICKY);
});

afterAll(async () => {
  await sandbox?.close();
});

async function failure(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  return (err as WorkflowFailedError).cause?.message ?? '';
}

describe('logical method: tricky schemas', () => {
  it('refuses UNLOGGED tables and large objects whose copy inside the window exceeds downtimeBudget, with their size, before changing anything', async () => {
    await query(
      sandbox.sourceUrl,
      `CREATE UNLOGGED TABLE public.sessions_cache (k text PRIMARY KEY, v text);
       INSERT INTO public.sessions_cache SELECT 'k' || g, repeat('v', 100) FROM generate_series(1, 50000) g`,
    );
    const [lo] = await query<{ oid: number }>(sandbox.sourceUrl, `SELECT lo_from_bytea(0, 'hello') AS oid`);
    try {
      const handle = await sandbox.start(sandbox.logicalInput({ downtimeBudget: '1s' }));
      const message = await failure(handle.result());
      expect(message).toMatch(
        /estimated write-freeze window \d+\.\d s exceeds downtimeBudget 1s: UNLOGGED table\(s\) public\.sessions_cache \(\d+\.\d MB\) and 1 large object\(s\) \([\d.]+ kB\), which no change stream carries, are copied inside it/,
      );
      expect(message).toMatch(/nothing was changed/);
      expect(await sourceWritable(sandbox)).toBe(true);
      expect(await targetTableCount(sandbox)).toBe(0);
    } finally {
      await query(sandbox.sourceUrl, `DROP TABLE public.sessions_cache; SELECT lo_unlink(${lo.oid})`);
    }
  });

  it('blocks the cutover when DDL ran on the source during replication', async () => {
    const handle = await sandbox.start(sandbox.logicalInput());
    for (let i = 0; i < 600; i++) {
      const status = await handle.query(statusQuery).catch(() => undefined);
      if (status?.phase === 'awaiting-cutover') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await query(sandbox.sourceUrl, `ALTER TABLE "Reporting"."DailyStats" ADD COLUMN note text`);
    try {
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'cutover' }] });
      const message = await failure(handle.result());
      expect(message).toMatch(/the source schema changed during replication .*Reporting\.DailyStats: columns differ/);
      expect(await sourceWritable(sandbox)).toBe(true);
      expect(await targetTableCount(sandbox)).toBe(0);
    } finally {
      await query(sandbox.sourceUrl, `ALTER TABLE "Reporting"."DailyStats" DROP COLUMN note`);
    }
  });

  it('migrates identity, generated, partitioned, enum, mixed-case and non-public tables correctly', async () => {
    const handle = await sandbox.start(sandbox.logicalInput());
    await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'cutover' }] });
    await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });
    const result = await migrationResult(handle);
    expect(result.outcome).toBe('completed');
    expect(result.verification).toBe('passed');
    const stats = await query(
      sandbox.targetUrl,
      `SELECT count(*)::int AS n, sum(visits_x2)::int AS x2, min(mood::text) AS mood FROM "Reporting"."DailyStats"`,
    );
    expect(stats).toEqual([{ n: 61, x2: 1220, mood: 'ok' }]);
    const parts = await query(
      sandbox.targetUrl,
      `SELECT tableoid::regclass::text AS part, count(*)::int AS n FROM public.measurements GROUP BY 1 ORDER BY 1`,
    );
    const sourceParts = await query(
      sandbox.sourceUrl,
      `SELECT tableoid::regclass::text AS part, count(*)::int AS n FROM public.measurements GROUP BY 1 ORDER BY 1`,
    );
    expect(parts).toEqual(sourceParts);
    const [row] = await query<{ id: string }>(
      sandbox.targetUrl,
      `INSERT INTO "Reporting"."DailyStats" ("Day", mood, visits) VALUES ('2025-01-01', 'meh', 1) RETURNING id`,
    );
    // The smoke test takes one value of each sequence to prove it is free: ids continue after it.
    expect(Number(row.id)).toBeGreaterThan(61);
    const [m] = await query<{ id: string }>(
      sandbox.targetUrl,
      `INSERT INTO public.measurements (taken, value) VALUES ('2025-06-01', 1) RETURNING id`,
    );
    expect(Number(m.id)).toBeGreaterThan(3000);
  });
});
