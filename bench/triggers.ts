/**
 * `npm run bench -- triggers [--scales 1,10] [--repeats 3] [--interval-ms 5] [--clients 2] [--pgbench-seconds 15]
 *    [--overhead-rounds 2] [--apply-seconds 30] [--backlog-seconds 10]`
 *
 * The triggers method against its goals, in one run on one stack:
 *  1. cutover: the longest gap in the stand-in application's acknowledged writes and the write-freeze
 *     window, `triggers` (from a Heroku-like source: an owner without REPLICATION) beside `logical`
 *     (from a source whose owner may replicate, which logical needs) on the same demo data, per scale;
 *  2. the capture's cost on the source: pgbench TPS without and with the capture, alternating;
 *  3. the apply under a sustained pgbench load: changes applied per second and the backlog it holds,
 *     then what it applies per second while working off a backlog under the same load.
 * Parts 2 and 3 run on one Heroku-like source seeded at the smallest scale.
 */
import os from 'node:os';
import { createSourceDatabase, createTargetDatabase, dropDatabase, stackUp } from '../stack';
import { seedDemoData } from '../stack/demo-data';
import { benchApplyThroughput, type ApplyThroughput } from './apply-throughput';
import { benchCaptureOverhead, type CaptureOverhead } from './capture-overhead';
import { printRun, runCutover, type CutoverRun } from './cutover';
import { withBenchWorker } from './worker';

export interface TriggersBenchOptions {
  scales: number[];
  intervalMs: number;
  /** pgbench clients, for the overhead runs and the apply's load. */
  clients: number;
  /** Each pgbench run of the overhead measurement; rounds of one run without and one with the capture. */
  pgbenchSeconds: number;
  overheadRounds: number;
  /** The load the apply follows, twice: with the apply running throughout, then with it started `backlogSeconds` late. */
  applySeconds: number;
  backlogSeconds: number;
  /** Cutovers per method and scale (interleaved: every method and scale once, then again). */
  repeats: number;
}

export interface TriggersBenchReport {
  options: TriggersBenchOptions;
  cutovers: CutoverRun[];
  loadScale: number;
  overhead: CaptureOverhead;
  apply: ApplyThroughput;
  /** os.loadavg() (1, 5, 15 min) when the run started and when it ended, and the CPU count. */
  loadAverage: { start: number[]; end: number[]; cpus: number };
  elapsedMs: number;
}

export const CUTOVER_METHODS = ['triggers', 'logical'] as const;

/** pgbench before the overhead runs (freshly loaded tables: hint bits, caches); not reported. */
export const WARM_UP_SECONDS = 5;

export async function benchTriggers(options: TriggersBenchOptions): Promise<TriggersBenchReport> {
  if (!(options.backlogSeconds < options.applySeconds)) throw new Error('--backlog-seconds must be shorter than --apply-seconds');
  const started = Date.now();
  const loadStart = os.loadavg();
  const env = await stackUp();

  const cutovers = await withBenchWorker(env, async (bench) => {
    const runs: CutoverRun[] = [];
    for (let repeat = 0; repeat < options.repeats; repeat++) {
      for (const scale of options.scales) {
        for (const method of CUTOVER_METHODS) {
          const run = await runCutover(bench, { method, scale, intervalMs: options.intervalMs, herokuSource: method === 'triggers' });
          printRun(run);
          runs.push(run);
        }
      }
    }
    return runs;
  });

  const loadScale = Math.min(...options.scales);
  const [src, tgt] = ['bench_triggers_load_src', 'bench_triggers_load_tgt'];
  const sourceUrl = await createSourceDatabase(env, src, { heroku: true });
  try {
    await seedDemoData(sourceUrl, { scale: loadScale });
    const pgbench = { pgBin: env.PG_BIN, url: sourceUrl, clients: options.clients };
    const overhead = await benchCaptureOverhead({
      ...pgbench,
      seconds: options.pgbenchSeconds,
      rounds: options.overheadRounds,
      warmUpSeconds: WARM_UP_SECONDS,
      migrationId: 'bench-overhead',
    });
    console.log(`capture overhead measured (${overhead.runs.length} pgbench runs)`);
    const targetUrl = await createTargetDatabase(env, tgt);
    const apply = await benchApplyThroughput({
      ...pgbench,
      seconds: options.applySeconds,
      backlogSeconds: options.backlogSeconds,
      targetUrl,
      migrationId: 'bench-apply',
    });
    console.log('apply measured (steady and backlog phases)');
    return {
      options,
      cutovers,
      loadScale,
      overhead,
      apply,
      loadAverage: { start: loadStart, end: os.loadavg(), cpus: os.cpus().length },
      elapsedMs: Date.now() - started,
    };
  } finally {
    await dropDatabase(env.SOURCE_ADMIN_URL, src);
    await dropDatabase(env.TARGET_ADMIN_URL, tgt);
  }
}
