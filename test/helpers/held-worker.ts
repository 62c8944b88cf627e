/**
 * A worker process for crash tests: the real worker and activities, except that the first call of
 * the activity named by PGMIG_HOLD_AFTER, on whichever worker runs it, does its work (the side
 * effect happens) and then never returns, after writing its pid to PGMIG_HOLD_FILE. The test then
 * SIGKILLs that process, exactly as a worker host dying right after a step would.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { config } from 'dotenv';
import { createActivities } from '../../activities';
import { stackEnvPath } from '../../stack/env-file';
import { createMigrationWorker, defaultActivityDeps } from '../../workers/worker';

async function main(): Promise<void> {
  config({ path: stackEnvPath(), quiet: true });
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const holdAfter = process.env.PGMIG_HOLD_AFTER;
  const holdFile = process.env.PGMIG_HOLD_FILE;
  const namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';
  const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' });
  // No load to measure on the test databases: a glance at the WAL rate, as the in-process harness does.
  const activities = { ...createActivities({ ...defaultActivityDeps(connection, namespace), walSampleMs: 100 }) } as unknown as Record<
    string,
    (...args: unknown[]) => Promise<unknown>
  >;
  if (holdAfter && holdFile) {
    const real = activities[holdAfter];
    if (!real) throw new Error(`PGMIG_HOLD_AFTER: no activity ${holdAfter}`);
    activities[holdAfter] = async (...args: unknown[]) => {
      const result = await real(...args);
      // Only the first call anywhere holds: the file is shared by every worker of the test.
      if (existsSync(holdFile)) return result;
      writeFileSync(holdFile, String(process.pid), { flag: 'wx' });
      return new Promise(() => undefined);
    };
  }
  const bundle = process.env.WORKFLOW_BUNDLE_PATH;
  const worker = await createMigrationWorker({ connection, activities, ...(bundle ? { workflowBundle: { codePath: bundle } } : {}) });
  await worker.run();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
