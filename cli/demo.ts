/**
 * `npm run demo`: a complete migration of the demo dataset on the local stack, end to end.
 * Brings the stack up, seeds the source, empties the demo target, starts a worker in this process,
 * runs a stand-in application that keeps writing, starts `migrateDatabase`, follows it, and prints
 * a summary (rows moved, write-freeze window, verification, the application's longest write gap).
 */
import { existsSync, readFileSync } from 'node:fs';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { parse } from 'dotenv';
import type { CopyEngine, MigrationInputDraft, MigrationMethod } from '../contract/input';
import { formatBytes, formatMs } from '../contract/plan';
import { AppWriter } from '../stack/app-writer';
import { seedDemoData } from '../stack/demo-data';
import { demoAppEnvPath, writeDemoAppEnv } from '../stack/demo-reset';
import { Client, escapeIdentifier } from 'pg';
import { createSourceDatabase, createTargetDatabase, databaseUrl, stackUp, type StackEnv } from '../stack';
import { migrationStartOptions, taskQueue } from '../signals/task-queue';
import { createMigrationWorker } from '../workers/worker';
import { temporalClient, uiLink } from './connection';
import { followMigration } from './follow';
import { closedResult, printClosed } from './summary';

export interface DemoOptions {
  autoApprove: boolean;
  method: MigrationMethod | 'auto';
  scale: number;
  jobs: number;
  /** dump-restore's copy engine (copy.engine). */
  copyEngine?: CopyEngine;
  approver: string;
}

/** A previous demo leaves the source read-only (it is the rollback reference); the sandbox starts writable. */
async function unfreezeDemoSource(env: StackEnv, source: DemoSource): Promise<void> {
  const admin = new Client({
    connectionString: databaseUrl(env.SOURCE_ADMIN_URL, source.database),
    options: '-c default_transaction_read_only=off',
  });
  await admin.connect();
  try {
    await admin.query(`ALTER DATABASE ${escapeIdentifier(source.database)} RESET default_transaction_read_only`);
    await admin.query(
      `ALTER ROLE ${escapeIdentifier(source.role)} IN DATABASE ${escapeIdentifier(source.database)} RESET default_transaction_read_only`,
    );
  } catch (err) {
    if ((err as { code?: string }).code !== '3D000') throw err; // no appdb yet: nothing to unfreeze
  } finally {
    await admin.end();
  }
}

interface DemoSource {
  database: string;
  role: string;
}

/**
 * The source database of the demo: `appdb` owned by `app` (which has REPLICATION, as on a Heroku plan
 * with logical replication), or for `--method triggers` `herokudb` owned by `heroku_app`, a plain owner
 * as Heroku's credential really is: no slot, no subscription, only its tables.
 */
async function demoSource(env: StackEnv, method: DemoOptions['method']): Promise<DemoSource & { url: string }> {
  if (method !== 'triggers') return { database: 'appdb', role: 'app', url: env.SOURCE_DATABASE_URL };
  const exists = new Client({ connectionString: env.SOURCE_ADMIN_URL });
  await exists.connect();
  const found = await exists.query(`SELECT 1 FROM pg_database WHERE datname = 'herokudb'`).finally(() => exists.end());
  const url = found.rowCount
    ? databaseUrl(env.SOURCE_HEROKU_DATABASE_URL, 'herokudb')
    : await createSourceDatabase(env, 'herokudb', { heroku: true });
  return { database: 'herokudb', role: 'heroku_app', url };
}

export async function runDemo(opts: DemoOptions): Promise<number> {
  const print = (line: string) => console.log(line);
  print('== local stack');
  const env = await stackUp();
  for (const [k, v] of Object.entries(env)) if (!/URL|SECRET|ACCESS_KEY/.test(k) || k === 'TEMPORAL_UI_URL') process.env[k] ??= v;
  const source = await demoSource(env, opts.method);
  // Secrets the migration input references by name, visible to this process's worker only.
  process.env.SOURCE_DATABASE_URL = source.url;
  process.env.TARGET_DATABASE_URL = env.TARGET_DATABASE_URL;
  // The local target is a plain PostgreSQL 15, where only a superuser may CREATE SUBSCRIPTION (RDS's master user can).
  process.env.TARGET_REPLICATION_URL = databaseUrl(env.TARGET_ADMIN_URL, 'appdb');
  process.env.AWS_ENDPOINT_URL = env.AWS_ENDPOINT_URL;
  print(`   Temporal UI ${env.TEMPORAL_UI_URL}`);

  print(`== demo data (scale ${opts.scale})`);
  await unfreezeDemoSource(env, source);
  const seeded = await seedDemoData(source.url, { scale: opts.scale });
  print(
    `   source ${source.database} (role ${source.role}): ${seeded.tables.length} tables, ${seeded.tables.reduce((n, t) => n + t.rows, 0)} rows, ${formatBytes(seeded.totalBytes)}`,
  );
  await createTargetDatabase(env, 'appdb');
  print('   target appdb: empty');

  // The application's config: it starts on the source; the migration swaps it to the target.
  const appEnv = demoAppEnvPath();
  writeDemoAppEnv(source.url, appEnv);
  const app = new AppWriter(() => (existsSync(appEnv) ? parse(readFileSync(appEnv, 'utf8')).DATABASE_URL : undefined));

  // The worker's own logs (bundler output, retries) would drown the progress lines: warnings only.
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const connection = await NativeConnection.connect({ address: env.TEMPORAL_ADDRESS });
  // A queue of the demo's own: its secret references (set in this process's environment above) resolve
  // only in this worker, so a `npm run worker` running beside it must not take its tasks.
  const demoQueue = `${taskQueue()}-demo-${process.pid}`;
  const worker = await createMigrationWorker({ connection, taskQueue: demoQueue });
  const running = worker.run();
  const client = await temporalClient();
  const workflowId = `demo-${new Date()
    .toISOString()
    .replace(/[^0-9]/g, '')
    .slice(0, 14)}`;
  const input: MigrationInputDraft = {
    migrationId: workflowId,
    source: { url: { env: 'SOURCE_DATABASE_URL' } },
    target: { url: { env: 'TARGET_DATABASE_URL' }, replicationUrl: { env: 'TARGET_REPLICATION_URL' } },
    method: opts.method,
    // The demo data has two tables without a primary key, like many real databases.
    replication: { tablesWithoutPrimaryKey: 'replica-identity-full' },
    gates: { cutover: { timeout: '15m' }, 'go-live': { timeout: '15m' } },
    parallelJobs: opts.jobs,
    ...(opts.copyEngine ? { copy: { engine: opts.copyEngine } } : {}),
    freeze: { drainTimeout: '2s' },
    configSink: { type: 'env-file', path: appEnv, key: 'DATABASE_URL' },
  };
  let exitCode: number;
  try {
    app.start();
    await new Promise((r) => setTimeout(r, 1000)); // the application is live before the migration starts
    const handle = await client.workflow.start('migrateDatabase', {
      ...migrationStartOptions(demoQueue, input),
      workflowId,
      args: [input],
    });
    print(`== migration ${workflowId}`);
    print(`   ${uiLink(workflowId, handle.firstExecutionRunId)}`);
    await followMigration(handle, { autoApprove: opts.autoApprove, approver: opts.approver, print: (l) => print(`  ${l}`) });
    // Let the application write to its new database for a moment before measuring.
    await new Promise((r) => setTimeout(r, 1000));
    const writes = await app.stop();
    const byDb = new Map<string, number>();
    for (const w of writes.acked) byDb.set(w.database, (byDb.get(w.database) ?? 0) + 1);
    exitCode = printClosed(await closedResult(handle), workflowId, print, [
      `   application writes   ${writes.acked.length} acknowledged, ${writes.failures} refused; longest gap ${formatMs(writes.longestGapMs)}`,
      ...[...byDb].map(([db, n]) => `     ${String(n).padStart(6)} on ${db}`),
    ]);
  } finally {
    await app.stop().catch(() => undefined);
    worker.shutdown();
    await running;
    await connection.close();
  }
  return exitCode;
}
