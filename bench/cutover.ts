/**
 * `npm run bench -- cutover [--scales 2,20] [--methods logical] [--interval-ms 5]`
 *
 * Runs a whole migration per method and dataset size while a stand-in application writes at a fixed
 * rate, with both gates approved ahead of time (an approval applies the moment its gate's automatic
 * checks pass). Prints, per run: the longest gap between two acknowledged application writes (the
 * downtime the application saw), the write-freeze window, the copy time and the lost-write count.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'dotenv';
import { Client } from 'pg';
import type { MigrationMethod } from '../contract/input';
import { formatBytes, formatMs } from '../contract/plan';
import { approveUpdate, type MigrationResult } from '../signals';
import { createSourceDatabase, createTargetDatabase, databaseUrl, dropDatabase, stackUp } from '../stack';
import { AppWriter } from '../stack/app-writer';
import { seedDemoData } from '../stack/demo-data';
import { migrationStartOptions } from '../signals/task-queue';
import { withBenchWorker, type BenchWorker } from './worker';

export interface CutoverRun {
  method: MigrationMethod;
  scale: number;
  databaseBytes: number;
  longestGapMs: number;
  freezeWindowMs: number;
  copyMs: number;
  totalMs: number;
  acked: number;
  lost: number;
  outcome: string;
}

const COPY_STEPS = new Set(['copy', 'copy-schema', 'snapshot-copy', 'start-replication', 'initial-copy', 'indexes']);

export interface CutoverOptions {
  method: MigrationMethod;
  scale: number;
  /** Pause between application writes (the write load). */
  intervalMs: number;
  /** The source database owned by `heroku_app` (no REPLICATION, as Heroku's credential): what the triggers method is for. */
  herokuSource?: boolean;
}

/** Every method at every scale, one run after the other, each printed as it ends. */
export async function benchCutover(opts: { methods: MigrationMethod[]; scales: number[]; intervalMs: number }): Promise<CutoverRun[]> {
  const env = await stackUp();
  return withBenchWorker(env, async (bench) => {
    const runs: CutoverRun[] = [];
    for (const scale of opts.scales) {
      for (const method of opts.methods) {
        runs.push(await runCutover(bench, { method, scale, intervalMs: opts.intervalMs }));
        printRun(runs[runs.length - 1]);
      }
    }
    return runs;
  });
}

/**
 * One whole migration of a new database seeded at `scale` while the stand-in application writes every
 * `intervalMs`, both gates approved ahead of time; the databases are dropped after.
 */
export async function runCutover(bench: BenchWorker, opts: CutoverOptions): Promise<CutoverRun> {
  const { env, client, taskQueue } = bench;
  const { method, scale } = opts;
  const id = `bench_${method.replace(/-/g, '_')}_${scale}`;
  const sourceUrl = await createSourceDatabase(env, `${id}_src`, { heroku: !!opts.herokuSource });
  const targetUrl = await createTargetDatabase(env, `${id}_tgt`);
  const seeded = await seedDemoData(sourceUrl, { scale });
  process.env.BENCH_SOURCE_URL = sourceUrl;
  process.env.BENCH_TARGET_URL = targetUrl;
  process.env.BENCH_REPLICATION_URL = databaseUrl(env.TARGET_ADMIN_URL, `${id}_tgt`);
  const configFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgmig-bench-')), 'app.env');
  writeFileSync(configFile, `DATABASE_URL=${sourceUrl}\n`);
  const app = new AppWriter(
    () => (existsSync(configFile) ? parse(readFileSync(configFile, 'utf8')).DATABASE_URL : undefined),
    opts.intervalMs,
  );
  app.start();
  await new Promise((r) => setTimeout(r, 1000));
  const started = Date.now();
  const handle = await client.workflow.start('migrateDatabase', {
    ...migrationStartOptions(taskQueue),
    workflowId: `${id}-${Date.now()}`,
    args: [
      {
        migrationId: id.replace(/_/g, '-'),
        source: { url: { env: 'BENCH_SOURCE_URL' } },
        target: { url: { env: 'BENCH_TARGET_URL' }, replicationUrl: { env: 'BENCH_REPLICATION_URL' } },
        method,
        freeze: { drainTimeout: '1s' },
        replication: { tablesWithoutPrimaryKey: 'replica-identity-full', drainTimeout: '5m' },
        configSink: { type: 'env-file', path: configFile },
      },
    ],
  });
  for (const gate of method === 'dump-restore' ? ['go-live'] : ['cutover', 'go-live']) {
    await handle.executeUpdate(approveUpdate, {
      args: [{ approver: 'bench', gate, reason: 'approved ahead of time by the benchmark' }],
    });
  }
  const result = (await handle.result()) as MigrationResult;
  const totalMs = Date.now() - started;
  await new Promise((r) => setTimeout(r, 1000));
  const writes = await app.stop();
  const landed = new Set<number>();
  const target = new Client({ connectionString: targetUrl });
  await target.connect();
  try {
    const rows = await target.query(`SELECT (payload->>'seq')::int AS seq FROM public.audit_log WHERE event = 'app-write'`);
    for (const r of rows.rows) landed.add(r.seq as number);
  } finally {
    await target.end();
  }
  await dropDatabase(env.SOURCE_ADMIN_URL, `${id}_src`);
  await dropDatabase(env.TARGET_ADMIN_URL, `${id}_tgt`);
  return {
    method,
    scale,
    databaseBytes: seeded.totalBytes,
    longestGapMs: writes.longestGapMs,
    freezeWindowMs: result.freezeWindow.durationMs ?? NaN,
    copyMs: result.steps.filter((s) => COPY_STEPS.has(s.name)).reduce((n, s) => n + (s.durationMs ?? 0), 0),
    totalMs,
    acked: writes.acked.length,
    lost: writes.acked.filter((w) => !landed.has(w.seq)).length,
    outcome: `${result.outcome}/${result.verification}`,
  };
}

export const CUTOVER_HEADER = 'method        scale  size       longest write gap  freeze window  copy      total     acked  lost  outcome';
export function printRun(r: CutoverRun): void {
  console.log(
    `${r.method.padEnd(13)} ${String(r.scale).padStart(5)}  ${formatBytes(r.databaseBytes).padEnd(9)}  ${formatMs(r.longestGapMs).padEnd(17)}  ${formatMs(r.freezeWindowMs).padEnd(13)}  ${formatMs(r.copyMs).padEnd(8)}  ${formatMs(r.totalMs).padEnd(8)}  ${String(r.acked).padStart(5)}  ${String(r.lost).padStart(4)}  ${r.outcome}`,
  );
}

export function summarize(runs: CutoverRun[]): void {
  console.log(`\n${CUTOVER_HEADER}`);
  for (const r of runs) printRun(r);
  for (const method of new Set(runs.map((r) => r.method))) {
    const mine = runs.filter((r) => r.method === method).sort((a, b) => a.scale - b.scale);
    if (mine.length >= 2) {
      const ratio = mine[mine.length - 1].longestGapMs / mine[0].longestGapMs;
      console.log(`${method}: longest write gap ratio largest/smallest dataset = ${ratio.toFixed(2)}`);
    }
  }
}
