/**
 * Worker entry point: `npm run worker`. Reads TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE /
 * TEMPORAL_TASK_QUEUE and the secrets that migration inputs reference (e.g. SOURCE_DATABASE_URL)
 * from its environment. For the local stack, `.stack/stack.env` (or STACK_ENV_FILE) is loaded when present (variables
 * already set win).
 */
import { existsSync } from 'node:fs';
import { config } from 'dotenv';
import { NativeConnection } from '@temporalio/worker';
import { logger } from '../cli/logger';
import { taskQueue } from '../signals/task-queue';
import { stackEnvPath } from '../stack/env-file';
import { createMigrationWorker } from './worker';

async function main(): Promise<void> {
  const stackEnv = stackEnvPath();
  if (existsSync(stackEnv)) config({ path: stackEnv, quiet: true });
  const address = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
  const connection = await NativeConnection.connect({ address });
  // A prebuilt bundle (see `bundleWorkflowCode`) skips bundling at start-up.
  const bundle = process.env.WORKFLOW_BUNDLE_PATH;
  const worker = await createMigrationWorker({ connection, ...(bundle ? { workflowBundle: { codePath: bundle } } : {}) });
  logger.info({ address, taskQueue: taskQueue() }, 'migration worker started');
  await worker.run();
  await connection.close();
}

main().catch((err) => {
  logger.error({ err: err instanceof Error ? err.message : String(err) }, 'worker failed');
  process.exit(1);
});
