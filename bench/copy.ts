/**
 * `npm run bench -- copy [--scales 20,200] [--jobs 2] [--repeats 1]`
 *
 * The product's freeze-copy window against the bare tools, on the same source database per size
 * (seeded once, reused by every contender), each into a fresh empty target database dropped after:
 *
 *   product          `migrateDatabase` with method `dump-restore` and otherwise its default input; its
 *                    write-freeze window (copy + sequences + verification, from the result), with the
 *                    copy and verify steps' durations beside it
 *   cdc-copy         `migrateDatabase` with method `pgcopydb`: its initial copy (the `snapshot-copy` step: a slot's
 *                    exported snapshot copied by `pgcopydb clone --snapshot`), the copy every CDC method can
 *                    run; the source is not frozen for it, so no verification is inside
 *   pgcopydb         `pgcopydb clone --table-jobs N --index-jobs N --no-owner --no-acl` (no follow)
 *   pg_dump+restore  `pg_dump -Fd -j N` to a scratch directory, then `pg_restore -j N --no-owner --no-acl`
 *
 * N (`--jobs`) defaults to 2, the product's default `parallelJobs`. The order of the contenders is
 * rotated per repeat and per size, so a warm cache favours none of them; the output says which ran first.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { formatBytes } from '../contract/plan';
import { ADMIN_SESSION_OPTIONS } from '../stack/sql';
import { createSourceDatabase, createTargetDatabase, databaseUrl, dropDatabase, stackUp, type StackEnv } from '../stack';
import { seedDemoData } from '../stack/demo-data';
import { median, ratio, rotated, type OrchestrationOverhead } from './measure';
import { resetSource, runProduct } from './product';
import { dumpAndRestore, pgcopydbClone } from './programs';
import { machine, type Machine } from './results';
import { printOverhead } from './cutover';
import { seconds, times } from './render';
import { withBenchWorker, type BenchWorker } from './worker';

export const COPY_CONTENDERS = ['product', 'cdc-copy', 'pgcopydb', 'pg_dump+restore'] as const;
export type CopyContender = (typeof COPY_CONTENDERS)[number];

export interface CopyRun {
  contender: CopyContender;
  scale: number;
  repeat: number;
  /** 0: ran first in its round. */
  position: number;
  /** The product: its write-freeze window; cdc-copy: its initial copy step; the tools: their wall time. */
  ms: number;
  /** The product's copy and verify steps; pg_dump's and pg_restore's shares. */
  parts: Record<string, number>;
  outcome?: string;
  overhead?: OrchestrationOverhead;
}

export interface CopySummary {
  scale: number;
  databaseBytes: number;
  /** Medians over the repeats. */
  productMs: number;
  productCopyMs: number;
  productVerifyMs: number;
  /** The pgcopydb method's initial copy (absent from results of before it was measured). */
  cdcCopyMs?: number;
  pgcopydbMs: number;
  pgDumpRestoreMs: number;
  productOverPgcopydb: number;
  /** The CDC initial copy's throughput against a bare pgcopydb clone's (pgcopydb's time over its time: 1.0x is as fast). */
  cdcCopyThroughputVsPgcopydb?: number;
  productOverPgDumpRestore: number;
  /** Which contender ran first, per repeat. */
  ranFirst: CopyContender[];
}

export interface CopyReport {
  kind: 'copy';
  options: { scales: number[]; jobs: number; repeats: number };
  machine: Machine;
  runs: CopyRun[];
  summary: CopySummary[];
  elapsedMs: number;
}

export async function benchCopy(options: CopyReport['options']): Promise<CopyReport> {
  const started = Date.now();
  const loadStart = os.loadavg();
  const env = await stackUp();
  const runs: CopyRun[] = [];
  const summary: CopySummary[] = [];
  await withBenchWorker(env, async (bench) => {
    for (const [i, scale] of options.scales.entries()) {
      const sourceDb = `bench_copy_${scale}_src`;
      const sourceUrl = await createSourceDatabase(env, sourceDb);
      try {
        const seeded = await seedDemoData(sourceUrl, { scale });
        console.log(
          `scale ${scale}: ${formatBytes(seeded.totalBytes)} seeded${seeded.skipped ? ' (already there)' : ` in ${seeded.seconds.toFixed(0)} s`}`,
        );
        await settle(databaseUrl(env.SOURCE_ADMIN_URL, sourceDb));
        const mine: CopyRun[] = [];
        for (let repeat = 0; repeat < options.repeats; repeat++) {
          const order = rotated(COPY_CONTENDERS, repeat + i);
          console.log(`scale ${scale}, round ${repeat + 1}: ${order.join(' -> ')} (${order[0]} first)`);
          for (const [position, contender] of order.entries()) {
            const run = await copyOnce(bench, { contender, scale, sourceDb, sourceUrl, jobs: options.jobs });
            const full = { ...run, scale, repeat, position };
            mine.push(full);
            const parts = Object.entries(run.parts).map(([k, v]) => `${k} ${seconds(v)}`);
            console.log(
              `  ${contender.padEnd(16)} ${seconds(run.ms).padEnd(8)} ${parts.join(', ')}${run.outcome ? ` (${run.outcome})` : ''}`,
            );
          }
        }
        runs.push(...mine);
        summary.push(summarizeCopy(scale, seeded.totalBytes, mine));
      } finally {
        await dropDatabase(env.SOURCE_ADMIN_URL, sourceDb);
      }
    }
  });
  return { kind: 'copy', options, machine: machine(loadStart, started), runs, summary, elapsedMs: Date.now() - started };
}

/**
 * A freshly seeded database leaves work behind (autovacuum of every new table, a checkpoint of the
 * dirty pages) that would land on whichever contender runs first: done here, before any is timed.
 */
async function settle(adminUrl: string): Promise<void> {
  const c = new Client({ connectionString: adminUrl, options: ADMIN_SESSION_OPTIONS });
  await c.connect();
  try {
    await c.query('VACUUM (ANALYZE)');
    await c.query('CHECKPOINT');
  } finally {
    await c.end();
  }
}

/** Medians per contender and the product's ratios to the two tools. */
export function summarizeCopy(scale: number, databaseBytes: number, runs: Omit<CopyRun, 'outcome' | 'overhead'>[]): CopySummary {
  const of = (c: CopyContender, pick: (r: (typeof runs)[number]) => number = (r) => r.ms) =>
    median(runs.filter((r) => r.contender === c).map(pick));
  const productMs = of('product');
  const pgcopydbMs = of('pgcopydb');
  const pgDumpRestoreMs = of('pg_dump+restore');
  const cdcCopyMs = of('cdc-copy');
  return {
    scale,
    databaseBytes,
    productMs,
    productCopyMs: of('product', (r) => r.parts.copy ?? NaN),
    productVerifyMs: of('product', (r) => r.parts.verify ?? NaN),
    cdcCopyMs,
    pgcopydbMs,
    pgDumpRestoreMs,
    productOverPgcopydb: ratio(productMs, pgcopydbMs),
    cdcCopyThroughputVsPgcopydb: ratio(pgcopydbMs, cdcCopyMs),
    productOverPgDumpRestore: ratio(productMs, pgDumpRestoreMs),
    ranFirst: runs.filter((r) => r.position === 0).map((r) => r.contender),
  };
}

interface CopyTarget {
  contender: CopyContender;
  scale: number;
  sourceDb: string;
  sourceUrl: string;
  jobs: number;
}

/** One contender's copy of the source into a fresh target database, dropped after. */
async function copyOnce(bench: BenchWorker, t: CopyTarget): Promise<Pick<CopyRun, 'contender' | 'ms' | 'parts' | 'outcome' | 'overhead'>> {
  const { env } = bench;
  const id = `bench_copy_${t.scale}_${t.contender.replace(/\W/g, '_')}`;
  const targetDb = `${id}_tgt`;
  const targetUrl = await createTargetDatabase(env, targetDb);
  try {
    if (t.contender === 'product' || t.contender === 'cdc-copy') return await productCopy(bench, env, t, id, targetDb, targetUrl);
    if (t.contender === 'pgcopydb') {
      const start = Date.now();
      await pgcopydbClone(t.sourceUrl, targetUrl, t.jobs);
      return { contender: t.contender, ms: Date.now() - start, parts: {} };
    }
    const timing = await dumpAndRestore(t.sourceUrl, targetUrl, { jobs: t.jobs });
    return { contender: t.contender, ms: timing.dumpMs + timing.restoreMs, parts: { dump: timing.dumpMs, restore: timing.restoreMs } };
  } finally {
    await dropDatabase(env.TARGET_ADMIN_URL, targetDb);
  }
}

async function productCopy(
  bench: BenchWorker,
  env: StackEnv,
  t: CopyTarget,
  id: string,
  targetDb: string,
  targetUrl: string,
): Promise<Pick<CopyRun, 'contender' | 'ms' | 'parts' | 'outcome' | 'overhead'>> {
  const configFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgmig-bench-')), 'app.env');
  writeFileSync(configFile, `DATABASE_URL=${t.sourceUrl}\n`);
  try {
    const cdc = t.contender === 'cdc-copy';
    const { result, overhead } = await runProduct(bench, {
      id,
      method: cdc ? 'pgcopydb' : 'dump-restore',
      sourceUrl: t.sourceUrl,
      targetUrl,
      replicationUrl: databaseUrl(env.TARGET_ADMIN_URL, targetDb),
      configFile,
    });
    // Since the verification runs inside the copy there is no separate verify step: 0 then.
    const step = (name: string) => result.steps.find((s) => s.name === name)?.durationMs ?? 0;
    if (cdc) {
      const copyMs = result.steps.find((s) => s.name === 'snapshot-copy')?.durationMs ?? NaN;
      return { contender: t.contender, ms: copyMs, parts: {}, outcome: result.outcome };
    }
    printOverhead(`  product orchestration`, overhead);
    return {
      contender: t.contender,
      ms: result.freezeWindow.durationMs ?? NaN,
      parts: { copy: step('copy'), verify: step('verify') },
      outcome: `${result.outcome}/${result.verification}`,
      overhead,
    };
  } finally {
    rmSync(path.dirname(configFile), { recursive: true, force: true });
    await resetSource(databaseUrl(env.SOURCE_ADMIN_URL, t.sourceDb));
  }
}

export function printCopySummary(report: CopyReport): void {
  console.log(
    `\nfreeze-copy: product (dump-restore write-freeze window) vs the bare tools, -j ${report.options.jobs}, medians of ${report.options.repeats}`,
  );
  console.log(
    'scale  size       product   (copy     verify)   pgcopydb  pg_dump+restore  product/pgcopydb  product/pg_dump+restore  cdc-copy  its throughput/pgcopydb  ran first',
  );
  for (const s of report.summary) {
    console.log(
      `${String(s.scale).padStart(5)}  ${formatBytes(s.databaseBytes).padEnd(9)}  ${seconds(s.productMs).padEnd(8)}  (${seconds(s.productCopyMs).padEnd(8)} ${seconds(s.productVerifyMs).padEnd(8)})  ${seconds(s.pgcopydbMs).padEnd(8)}  ${seconds(s.pgDumpRestoreMs).padEnd(15)}  ${times(s.productOverPgcopydb).padEnd(16)}  ${times(s.productOverPgDumpRestore).padEnd(23)}  ${seconds(s.cdcCopyMs).padEnd(8)}  ${times(s.cdcCopyThroughputVsPgcopydb).padEnd(23)}  ${s.ranFirst.join(', ')}`,
    );
  }
}
