/** Builds the migration worker; used by the worker entry point, the demo and the integration tests. */
import path from 'node:path';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';

export const DEFAULT_TASK_QUEUE = 'pg-migrations';

export function taskQueue(): string {
  return process.env.TEMPORAL_TASK_QUEUE || DEFAULT_TASK_QUEUE;
}

/** AWS clients are created lazily: a dump-restore run with env references never needs them. */
export function defaultActivityDeps(env: NodeJS.ProcessEnv = process.env): ActivityDeps {
  let ssm: SSMClient | undefined;
  let secrets: SecretsManagerClient | undefined;
  return {
    env,
    ssm: () => (ssm ??= new SSMClient({})),
    secretsManager: () => (secrets ??= new SecretsManagerClient({})),
  };
}

export interface MigrationWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  taskQueue?: string;
  deps?: ActivityDeps;
  /** Replace activities (tests inject failures by wrapping the real ones). */
  activities?: object;
  /** A prebuilt bundle (tests build it once); otherwise the workflows are bundled at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  identity?: string;
}

export async function createMigrationWorker(opts: MigrationWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace ?? process.env.TEMPORAL_NAMESPACE ?? 'default',
    taskQueue: opts.taskQueue ?? taskQueue(),
    ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath: path.resolve(__dirname, '../workflows') }),
    activities: opts.activities ?? createActivities(opts.deps ?? defaultActivityDeps()),
    // Copy progress reaches `status` / the CLI every couple of seconds instead of every 0.8 x heartbeat timeout.
    maxHeartbeatThrottleInterval: '2s',
    ...(opts.identity ? { identity: opts.identity } : {}),
  });
}
