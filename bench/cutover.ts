/**
 * `npm run bench -- cutover [--scales 2,20] [--methods logical] [--interval-ms 5]`
 *
 * Runs a whole migration per method and dataset size while a stand-in application writes at a fixed
 * rate, with both gates approved ahead of time (an approval applies the moment its gate's automatic
 * checks pass), and on the same database under the same load a logical cutover by hand (the anchor,
 * `anchor-logical.ts`). Prints, per run: the longest gap between two acknowledged application writes
 * (the downtime the application saw), the write-freeze window, the copy time and the lost-write count;
 * then the product's gap over the anchor's per method and size, and each run's orchestration overhead.
 */
import os from 'node:os';
import type { MigrationMethod } from '../contract/input';
import { formatBytes, formatMs } from '../contract/plan';
import { createSourceDatabase, createTargetDatabase, databaseUrl, dropDatabase, stackUp } from '../stack';
import { seedDemoData } from '../stack/demo-data';
import { runLogicalAnchor, type AnchorRun } from './anchor-logical';
import { AppUnderLoad } from './app-load';
import { median, ratio, type OrchestrationOverhead } from './measure';
import { resetSource, runProduct } from './product';
import { machine, type Machine } from './results';
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
  overhead?: OrchestrationOverhead;
}

export interface AnchorCutover extends AnchorRun {
  scale: number;
  databaseBytes: number;
  /** Whether the anchor ran before the product's runs on this database. */
  ranFirst: boolean;
}

export interface CutoverReport {
  kind: 'cutover';
  options: { methods: MigrationMethod[]; scales: number[]; intervalMs: number };
  machine: Machine;
  runs: CutoverRun[];
  anchors: AnchorCutover[];
  /** Per method and scale: the product's longest write gap / the anchor's. */
  ratios: { method: MigrationMethod; scale: number; productGapMs: number; anchorGapMs: number; ratio: number }[];
  elapsedMs: number;
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

/**
 * Per scale, one source database seeded once; on it, every method's migration (each to a fresh target,
 * the source made writable again after it) and the by-hand logical anchor, under the same write load.
 * The anchor runs first at every other scale.
 */
export async function benchCutover(opts: { methods: MigrationMethod[]; scales: number[]; intervalMs: number }): Promise<CutoverReport> {
  const started = Date.now();
  const loadStart = os.loadavg();
  const env = await stackUp();
  const { runs, anchors } = await withBenchWorker(env, async (bench) => {
    const runs: CutoverRun[] = [];
    const anchors: AnchorCutover[] = [];
    for (const [i, scale] of opts.scales.entries()) {
      const sourceDb = `bench_cutover_${scale}_src`;
      const sourceUrl = await createSourceDatabase(env, sourceDb);
      try {
        const seeded = await seedDemoData(sourceUrl, { scale });
        const anchorFirst = i % 2 === 0;
        const anchor = async () => {
          const app = await AppUnderLoad.start(sourceUrl, opts.intervalMs);
          const run = await runLogicalAnchor(env, { id: `bench_cutover_${scale}`, sourceDb, appRole: 'app', app });
          await resetSource(databaseUrl(env.SOURCE_ADMIN_URL, sourceDb));
          anchors.push({ ...run, scale, databaseBytes: seeded.totalBytes, ranFirst: anchorFirst });
          printRow(
            'anchor',
            scale,
            seeded.totalBytes,
            run.longestGapMs,
            run.windowMs,
            run.initialCopyMs,
            run.totalMs,
            run.acked,
            run.lost,
            anchorFirst ? 'by hand (ran first)' : 'by hand',
          );
        };
        if (anchorFirst) await anchor();
        for (const method of opts.methods) {
          const run = await productCutover(bench, { method, scale, intervalMs: opts.intervalMs }, sourceUrl, seeded.totalBytes);
          await resetSource(databaseUrl(env.SOURCE_ADMIN_URL, sourceDb));
          runs.push(run);
          printRun(run);
        }
        if (!anchorFirst) await anchor();
      } finally {
        await dropDatabase(env.SOURCE_ADMIN_URL, sourceDb);
      }
    }
    return { runs, anchors };
  });
  return {
    kind: 'cutover',
    options: opts,
    machine: machine(loadStart, started),
    runs,
    anchors,
    ratios: cutoverRatios(runs, anchors),
    elapsedMs: Date.now() - started,
  };
}

/** The product's longest write gap per method and scale over the anchor's (medians when repeated). */
export function cutoverRatios(runs: CutoverRun[], anchors: AnchorCutover[]): CutoverReport['ratios'] {
  const out: CutoverReport['ratios'] = [];
  for (const scale of new Set(runs.map((r) => r.scale))) {
    const anchorGapMs = median(anchors.filter((a) => a.scale === scale).map((a) => a.longestGapMs));
    for (const method of new Set(runs.map((r) => r.method))) {
      const productGapMs = median(runs.filter((r) => r.scale === scale && r.method === method).map((r) => r.longestGapMs));
      if (Number.isFinite(productGapMs)) out.push({ method, scale, productGapMs, anchorGapMs, ratio: ratio(productGapMs, anchorGapMs) });
    }
  }
  return out;
}

/**
 * One whole migration of a new database seeded at `scale` while the stand-in application writes every
 * `intervalMs`, both gates approved ahead of time; the databases are dropped after.
 */
export async function runCutover(bench: BenchWorker, opts: CutoverOptions): Promise<CutoverRun> {
  const { env } = bench;
  const sourceDb = `bench_${opts.method.replace(/-/g, '_')}_${opts.scale}_src`;
  const sourceUrl = await createSourceDatabase(env, sourceDb, { heroku: !!opts.herokuSource });
  try {
    const seeded = await seedDemoData(sourceUrl, { scale: opts.scale });
    return await productCutover(bench, opts, sourceUrl, seeded.totalBytes);
  } finally {
    await dropDatabase(env.SOURCE_ADMIN_URL, sourceDb);
  }
}

/** The product's migration of `sourceUrl` to a fresh target while the application writes; the target dropped after. */
async function productCutover(bench: BenchWorker, opts: CutoverOptions, sourceUrl: string, databaseBytes: number): Promise<CutoverRun> {
  const { env } = bench;
  const { method, scale } = opts;
  const id = `bench_${method.replace(/-/g, '_')}_${scale}`;
  const targetDb = `${id}_tgt`;
  const targetUrl = await createTargetDatabase(env, targetDb);
  try {
    const app = await AppUnderLoad.start(sourceUrl, opts.intervalMs);
    const product = await runProduct(bench, {
      id,
      method,
      sourceUrl,
      targetUrl,
      replicationUrl: databaseUrl(env.TARGET_ADMIN_URL, targetDb),
      configFile: app.configFile,
    });
    const writes = await app.finish(targetUrl);
    const { result } = product;
    return {
      method,
      scale,
      databaseBytes,
      longestGapMs: writes.longestGapMs,
      freezeWindowMs: result.freezeWindow.durationMs ?? NaN,
      copyMs: result.steps.filter((s) => COPY_STEPS.has(s.name)).reduce((n, s) => n + (s.durationMs ?? 0), 0),
      totalMs: product.totalMs,
      acked: writes.acked,
      lost: writes.lost,
      outcome: `${result.outcome}/${result.verification}`,
      overhead: product.overhead,
    };
  } finally {
    await dropDatabase(env.TARGET_ADMIN_URL, targetDb);
  }
}

export const CUTOVER_HEADER = 'method        scale  size       longest write gap  freeze window  copy      total     acked  lost  outcome';

function printRow(
  label: string,
  scale: number,
  bytes: number,
  gap: number,
  window: number,
  copy: number,
  total: number,
  acked: number,
  lost: number,
  outcome: string,
): void {
  console.log(
    `${label.padEnd(13)} ${String(scale).padStart(5)}  ${formatBytes(bytes).padEnd(9)}  ${formatMs(gap).padEnd(17)}  ${formatMs(window).padEnd(13)}  ${formatMs(copy).padEnd(8)}  ${formatMs(total).padEnd(8)}  ${String(acked).padStart(5)}  ${String(lost).padStart(4)}  ${outcome}`,
  );
}

export function printRun(r: CutoverRun): void {
  printRow(r.method, r.scale, r.databaseBytes, r.longestGapMs, r.freezeWindowMs, r.copyMs, r.totalMs, r.acked, r.lost, r.outcome);
}

export function printOverhead(label: string, o: OrchestrationOverhead | undefined): void {
  if (!o) return;
  console.log(
    `${label}: wall ${formatMs(o.wallMs)}, activities ${formatMs(o.activityMs)} (${o.activities} activities, local steps: ${o.localSteps.join(', ') || 'none'}), orchestration overhead ${Math.round(o.overheadMs)} ms = ${o.overheadPct.toFixed(1)}%`,
  );
}

export function summarize(runs: CutoverRun[], report?: CutoverReport): void {
  console.log(`\n${CUTOVER_HEADER}`);
  for (const r of runs) printRun(r);
  for (const method of new Set(runs.map((r) => r.method))) {
    const mine = runs.filter((r) => r.method === method).sort((a, b) => a.scale - b.scale);
    if (mine.length >= 2) {
      const ratio = mine[mine.length - 1].longestGapMs / mine[0].longestGapMs;
      console.log(`${method}: longest write gap ratio largest/smallest dataset = ${ratio.toFixed(2)}`);
    }
  }
  if (!report) return;
  console.log('\nproduct / by-hand logical anchor, longest application write gap:');
  for (const r of report.ratios) {
    console.log(
      `  ${r.method.padEnd(13)} scale ${String(r.scale).padStart(4)}: ${formatMs(r.productGapMs)} / ${formatMs(r.anchorGapMs)} = ${r.ratio.toFixed(2)}x`,
    );
  }
  for (const a of report.anchors) console.log(`  anchor at scale ${a.scale} ran ${a.ranFirst ? 'first' : 'last'}`);
  console.log('\norchestration overhead (workflow wall time minus its activities):');
  for (const r of runs) printOverhead(`  ${r.method} scale ${r.scale}`, r.overhead);
}
