/** `npm run bench -- <name> [options]`: benchmarks, kept out of the test suite (they measure, not assert). */
import { Command } from 'commander';
import type { MigrationMethod } from '../contract/input';
import { benchCutover, summarize } from './cutover';

const program = new Command('bench');
program
  .command('cutover')
  .description('longest application write gap, freeze window, copy time and lost writes per method and size')
  .option('--methods <list>', 'comma-separated methods', 'logical')
  .option('--scales <list>', 'comma-separated demo dataset scales (100,000 pgbench rows per unit)', '2,20')
  .option('--interval-ms <n>', 'pause between application writes (the write load)', '5')
  .action(async (opts: { methods: string; scales: string; intervalMs: string }) => {
    console.log(header());
    const runs = await benchCutover({
      methods: opts.methods.split(',') as MigrationMethod[],
      scales: opts.scales.split(',').map(Number),
      intervalMs: Number(opts.intervalMs),
    });
    summarize(runs);
  });

function header(): string {
  return 'method        scale  size       longest write gap  freeze window  copy      total     acked  lost  outcome';
}

program.parseAsync().catch((err) => {
  console.error(err);
  process.exit(1);
});
