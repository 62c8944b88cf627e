/**
 * npm run stack -- up [--seed] [--scale N]   start what is not running, write .stack/stack.env
 * npm run stack -- status                    one line per component
 * npm run stack -- down [--purge]            stop everything the stack started
 * npm run stack -- env                       print the env file path and its keys (passwords masked)
 * npm run stack -- reset [--scale N]         the demo databases back to their starting state
 */
import { Command, InvalidArgumentError } from 'commander';
import { seedDemoData, type DemoDataSummary } from './demo-data';
import { demoAppEnvPath, resetDemoDatabases } from './demo-reset';
import { loadStackEnv, resolveStackDir, stackDown, stackEnvPath, stackStatus, stackUp, type StackEnv } from './index';

function mask(value: string): string {
  return value.replace(/(\/\/[^:/@]+:)[^@]*@/, '$1***@');
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function parseScale(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('scale must be a positive integer');
  return n;
}

async function printStatus(): Promise<boolean> {
  const status = await stackStatus();
  for (const c of status) {
    const state = c.running ? 'running' : 'stopped';
    const pid = c.pid !== undefined ? `pid ${c.pid}` : '';
    console.log(`  ${c.name.padEnd(16)} ${state.padEnd(8)} ${c.endpoint.padEnd(24)} ${pid.padEnd(11)} ${c.detail ?? ''}`.trimEnd());
  }
  return status.every((c) => c.running);
}

function printSeeded(s: DemoDataSummary): void {
  if (s.skipped) console.log(`  already loaded at scale ${s.scale}: skipped`);
  else console.log(`  loaded in ${s.seconds.toFixed(2)} s`);
  for (const t of s.tables) console.log(`  ${t.table.padEnd(28)} ${String(t.rows).padStart(10)} rows ${mb(t.bytes).padStart(10)}`);
  console.log(`  database ${s.database}: ${mb(s.totalBytes)}`);
}

function printEnv(env: StackEnv): void {
  console.log(`Env file ${stackEnvPath()} (scratch dir ${env.STACK_DIR}):`);
  for (const [k, v] of Object.entries(env)) {
    console.log(`  ${k}=${k === 'AWS_SECRET_ACCESS_KEY' ? v : mask(v)}`);
  }
}

export const program = new Command('stack').description('Local stack: Temporal dev server, two PostgreSQL 15 clusters, moto');

program
  .command('up')
  .description('start whatever is not running (idempotent) and write .stack/stack.env')
  .option('--seed', 'load the demo dataset into the source database appdb (as role app)')
  .option('--scale <n>', 'demo dataset scale (100,000 pgbench accounts per unit)', parseScale, 1)
  .action(async (opts: { seed?: boolean; scale: number }) => {
    const started = Date.now();
    const env = await stackUp({ log: (l) => console.log(`  ${l}`) });
    console.log(`Stack is up (${((Date.now() - started) / 1000).toFixed(1)} s).`);
    await printStatus();
    console.log(`Temporal UI: ${env.TEMPORAL_UI_URL}`);
    console.log(`Source (Heroku stand-in): ${mask(env.SOURCE_DATABASE_URL)}`);
    console.log(`Target (RDS stand-in):    ${mask(env.TARGET_DATABASE_URL)}`);
    console.log(`Credentials: ${stackEnvPath()}  (load with: set -a; . ${stackEnvPath()}; set +a)`);
    if (opts.seed) {
      console.log(`Seeding demo dataset at scale ${opts.scale} into appdb as role app ...`);
      printSeeded(await seedDemoData(env.SOURCE_DATABASE_URL, { scale: opts.scale }));
    }
  });

program
  .command('reset')
  .description(
    'put the demo databases back to their starting state: source appdb re-created and seeded, target appdb empty, the demo application on the source',
  )
  .option('--scale <n>', "demo dataset scale (the demo's default is 2)", parseScale, 2)
  .action(async (opts: { scale: number }) => {
    const env = await stackUp({ log: (l) => console.log(`  ${l}`) });
    console.log(`Re-creating source appdb at scale ${opts.scale}, target appdb empty ...`);
    printSeeded(await resetDemoDatabases(env, { scale: opts.scale }));
    console.log(`  target appdb: empty; herokudb dropped; ${demoAppEnvPath()} points at the source`);
  });

program
  .command('down')
  .description('stop everything the stack started (data is kept)')
  .option('--purge', 'also delete the scratch dir (clusters, Temporal history) and the env file')
  .action(async (opts: { purge?: boolean }) => {
    await stackDown({ purge: opts.purge, log: (l) => console.log(`  ${l}`) });
    console.log(`Stack is down (scratch dir ${resolveStackDir()}${opts.purge ? ' removed' : ' kept'}).`);
  });

program
  .command('status')
  .description('show each component (exit code 1 if any is stopped)')
  .action(async () => {
    console.log(`Scratch dir ${resolveStackDir()}`);
    const allUp = await printStatus();
    if (!allUp) process.exitCode = 1;
  });

program
  .command('env')
  .description('print the env file location and contents (passwords masked)')
  .action(() => printEnv(loadStackEnv()));

// Run as the stack's CLI; imported (the help-text test), it only builds the commands.
if (require.main === module) {
  program.parseAsync(process.argv).catch((err: unknown) => {
    console.error(`stack: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
