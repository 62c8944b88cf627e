/**
 * `npm run stack -- reset`: the demo databases as `npm run demo` (and examples/local-dump-restore.json)
 * expect to find them, whatever a previous migration left: the source re-created and seeded (writable
 * again, without the slots, publications and triggers a migration adds), the target empty, and the
 * stand-in application's config pointing at the source.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createSourceDatabase, createTargetDatabase, dropDatabase } from './databases';
import { seedDemoData, type DemoDataSummary } from './demo-data';
import { stackEnvPath, type StackEnv } from './env-file';

/** The stand-in application's dotenv file, the demo's (and the example input's) env-file config sink. */
export function demoAppEnvPath(): string {
  return path.join(path.dirname(stackEnvPath()), 'demo-app.env');
}

/** Points the stand-in application at `databaseUrl`; the file holds a password, so only its owner reads it. */
export function writeDemoAppEnv(databaseUrl: string, file = demoAppEnvPath()): void {
  writeFileSync(file, `# written by the demo: the stand-in application's configuration\nDATABASE_URL=${databaseUrl}\n`, { mode: 0o600 });
}

export interface ResetOptions {
  scale: number;
  /** The demo's database on both clusters; a test resets one of its own. */
  database?: string;
  /** The application's config file (default demoAppEnvPath()). */
  appEnvPath?: string;
  /** The source database `--method triggers` uses (the demo re-creates it when absent). */
  herokuDatabase?: string;
}

export async function resetDemoDatabases(env: StackEnv, opts: ResetOptions): Promise<DemoDataSummary> {
  const database = opts.database ?? 'appdb';
  // Re-created rather than cleaned: a migration leaves read-only settings, slots, publications,
  // triggers and the application's writes, and DROP DATABASE takes them all.
  const sourceUrl = await createSourceDatabase(env, database);
  const seeded = await seedDemoData(sourceUrl, { scale: opts.scale });
  await dropDatabase(env.SOURCE_ADMIN_URL, opts.herokuDatabase ?? 'herokudb');
  await createTargetDatabase(env, database);
  writeDemoAppEnv(sourceUrl, opts.appEnvPath);
  return seeded;
}
