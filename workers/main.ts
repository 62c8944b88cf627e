/**
 * Worker entry point: `npm run worker`. Reads TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE /
 * TEMPORAL_TASK_QUEUE and the secrets that migration inputs reference (e.g. SOURCE_DATABASE_URL)
 * from its environment. WORKER_ID names this process among the queue's workers (default: host name and
 * a random suffix): it also polls `<queue>@<WORKER_ID>`, where the steps sharing files on its host run;
 * WORKER_SCRATCH_DIR is where it keeps those files (one per worker process). For the local stack, `.stack/stack.env` (or STACK_ENV_FILE) is loaded when present (variables
 * already set win).
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { config } from 'dotenv';
import { NativeConnection } from '@temporalio/worker';
import { logger } from '../cli/logger';
import { scratchRoot } from '../activities/names';
import { sweepScratch } from '../activities/scratch';
import { hostTaskQueue, taskQueue } from '../signals/task-queue';
import { stackEnvPath } from '../stack/env-file';
import { runMigrationWorkers } from './worker';

async function main(): Promise<void> {
  const stackEnv = stackEnvPath();
  if (existsSync(stackEnv)) config({ path: stackEnv, quiet: true });
  const address = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
  const connection = await NativeConnection.connect({ address });
  // A prebuilt bundle (see `bundleWorkflowCode`) skips bundling at start-up.
  const bundle = process.env.WORKFLOW_BUNDLE_PATH;
  const workerId = process.env.WORKER_ID || `${hostname()}-${randomUUID().slice(0, 8)}`;
  // What an earlier process with this scratch directory left (dumps hold customer data): before polling.
  const swept = await sweepScratch();
  if (swept.length)
    logger.info({ scratchDir: scratchRoot(), removed: swept }, 'removed what an earlier worker left in its scratch directory');
  const running = runMigrationWorkers({ connection, workerId, ...(bundle ? { workflowBundle: { codePath: bundle } } : {}) });
  logger.info(
    { address, taskQueue: taskQueue(), workerId, hostTaskQueue: hostTaskQueue(taskQueue(), workerId), scratchDir: scratchRoot() },
    'migration worker starting',
  );
  await running;
  await connection.close();
}

main().catch((err) => {
  logger.error({ err: err instanceof Error ? err.message : String(err) }, 'worker failed');
  process.exit(1);
});
