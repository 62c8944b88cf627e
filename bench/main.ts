/** `npm run bench -- <name> [options]`: benchmarks, kept out of the test suite (they measure, not assert). */
import { Command } from 'commander';
import type { MigrationMethod } from '../contract/input';
import { benchCutover, CUTOVER_HEADER, summarize } from './cutover';
import { benchTriggers } from './triggers';
import { printTriggersReport } from './triggers-report';

const program = new Command('bench');
program
  .command('cutover')
  .description('longest application write gap, freeze window, copy time and lost writes per method and size')
  .option('--methods <list>', 'comma-separated methods', 'logical')
  .option('--scales <list>', 'comma-separated demo dataset scales (100,000 pgbench rows per unit)', '2,20')
  .option('--interval-ms <n>', 'pause between application writes (the write load)', '5')
  .action(async (opts: { methods: string; scales: string; intervalMs: string }) => {
    console.log(CUTOVER_HEADER);
    const runs = await benchCutover({
      methods: opts.methods.split(',') as MigrationMethod[],
      scales: opts.scales.split(',').map(Number),
      intervalMs: Number(opts.intervalMs),
    });
    summarize(runs);
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
      scales: opts.scales.split(',').map(Number),
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
