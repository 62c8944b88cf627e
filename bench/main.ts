/** `npm run bench -- <name> [options]`: benchmarks, kept out of the test suite (they measure, not assert). */
import { Command } from 'commander';
import type { MigrationMethod } from '../contract/input';
import { benchCopy, printCopySummary } from './copy';
import { benchCutover, CUTOVER_HEADER, summarize } from './cutover';
import { benchFleet, saveFleetBench } from './fleet';
import { regenerateReport } from './report';
import { writeResult } from './results';
import { benchTriggers } from './triggers';
import { printTriggersReport } from './triggers-report';

const list = (s: string) => s.split(',').map(Number);

async function saved(report: { kind: string }): Promise<void> {
  const file = await writeResult(report);
  console.log(`\nresults: ${file}; rendered: ${(await regenerateReport()).join(', ')} (bench/results/*.md, *.svg, README)`);
}

const program = new Command('bench');
program
  .command('cutover')
  .description(
    'longest application write gap, freeze window, copy time and lost writes per method and size, against a logical cutover by hand on the same database and load; orchestration overhead',
  )
  .option('--methods <list>', 'comma-separated methods', 'logical')
  .option('--scales <list>', 'comma-separated demo dataset scales (100,000 pgbench rows per unit)', '2,20')
  .option('--interval-ms <n>', 'pause between application writes (the write load)', '5')
  .action(async (opts: { methods: string; scales: string; intervalMs: string }) => {
    console.log(CUTOVER_HEADER);
    const report = await benchCutover({
      methods: opts.methods.split(',') as MigrationMethod[],
      scales: list(opts.scales),
      intervalMs: Number(opts.intervalMs),
    });
    summarize(report.runs, report);
    await saved(report);
  });

program
  .command('copy')
  .description("the product's freeze-copy window (dump-restore) vs a bare pgcopydb clone and pg_dump + pg_restore, same source, per size")
  .option('--scales <list>', 'comma-separated demo dataset scales, at least 10x apart (100,000 pgbench rows per unit)', '20,200')
  .option('--jobs <n>', "the tools' -j / --table-jobs / --index-jobs (the product runs its default parallelJobs, 2)", '2')
  .option('--repeats <n>', 'rounds per size, the order of the contenders rotated each round (medians reported)', '1')
  .action(async (opts: { scales: string; jobs: string; repeats: string }) => {
    const report = await benchCopy({ scales: list(opts.scales), jobs: Number(opts.jobs), repeats: Number(opts.repeats) });
    printCopySummary(report);
    await saved(report);
  });

program
  .command('fleet')
  .description('small-database migrations per hour as one migrateFleet on one worker, with p50 / p95 write-freeze windows')
  .option('--count <n>', 'how many small databases the fleet migrates', '40')
  .option('--concurrency <n>', "the fleet's concurrency (migrations at once)", '4')
  .option('--accounts <n>', 'rows of the accounts table of each database (plus 200 events)', '500')
  .action(async (opts: { count: string; concurrency: string; accounts: string }) => {
    const { bench, fleet } = await benchFleet({
      count: Number(opts.count),
      concurrency: Number(opts.concurrency),
      accounts: Number(opts.accounts),
    });
    const w = bench.windows;
    console.log(
      `\n${bench.counts.completed}/${bench.databases} completed in ${bench.elapsedMs} ms: ${bench.migrationsPerHour} migrations/h; window p50 ${w.p50} ms, p95 ${w.p95} ms, max ${w.max} ms`,
    );
    console.log(`results: ${(await saveFleetBench(bench, fleet)).join(', ')}`);
  });

program
  .command('report')
  .description("renders bench/results/*.json to Markdown and SVG and regenerates the README's measured results")
  .action(async () => {
    console.log(`rendered: ${(await regenerateReport()).join(', ') || 'nothing (no result files)'}`);
  });

program
  .command('triggers')
  .description(
    "triggers vs logical: write gap and freeze window per size; the capture's pgbench overhead on the source; apply rate and lag under load",
  )
  .option('--scales <list>', 'comma-separated demo dataset scales, at least 10x apart (100,000 pgbench rows per unit)', '1,10')
  .option('--repeats <n>', 'cutovers per method and scale (the ratios use the medians)', '3')
  .option('--interval-ms <n>', 'pause between application writes during the cutovers', '5')
  .option('--clients <n>', 'pgbench clients (overhead runs and apply load)', '2')
  .option('--pgbench-seconds <n>', 'length of each pgbench run of the overhead measurement', '15')
  .option('--overhead-rounds <n>', 'overhead rounds, each one pgbench run without and one with the capture', '2')
  .option('--apply-seconds <n>', 'length of each pgbench load the apply follows', '30')
  .option('--backlog-seconds <n>', 'in the second load, the apply starts this late', '10')
  .action(async (opts: Record<string, string>) => {
    console.log(CUTOVER_HEADER);
    const report = await benchTriggers({
      scales: list(opts.scales),
      repeats: Number(opts.repeats),
      intervalMs: Number(opts.intervalMs),
      clients: Number(opts.clients),
      pgbenchSeconds: Number(opts.pgbenchSeconds),
      overheadRounds: Number(opts.overheadRounds),
      applySeconds: Number(opts.applySeconds),
      backlogSeconds: Number(opts.backlogSeconds),
    });
    printTriggersReport(report);
  });

program.parseAsync().catch((err) => {
  console.error(err);
  process.exit(1);
});
