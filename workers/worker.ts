/** Builds the migration worker; used by the worker entry point, the demo and the integration tests. */
import path from 'node:path';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { DatabaseMigrationServiceClient } from '@aws-sdk/client-database-migration-service';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { type NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';
import { createRehearsalActivities } from '../activities/rehearsal';
import { taskQueue } from '../signals/task-queue';
import type { DmsClients } from '../activities/methods/dms/aws-dms';

/**
 * Activity dependencies from the worker's environment and its Temporal connection. AWS clients are
 * created lazily: a run with env references never needs them.
 */
export function defaultActivityDeps(connection: NativeConnection, namespace: string, env: NodeJS.ProcessEnv = process.env): ActivityDeps {
  let ssm: SSMClient | undefined;
  let secrets: SecretsManagerClient | undefined;
  let dms: DmsClients | undefined;
  const client = new Client({ connection, namespace });
  return {
    env,
    dms: () => (dms ??= { dms: new DatabaseMigrationServiceClient({}), cloudwatch: new CloudWatchClient({}) }),
    ssm: () => (ssm ??= new SSMClient({})),
    secretsManager: () => (secrets ??= new SecretsManagerClient({})),
    signalWorkflow: (workflowId, runId, signal, ...args) => client.workflow.getHandle(workflowId, runId).signal(signal, ...args),
    describeWorkflow: async (workflowId, runId) => {
      try {
        return (await client.workflow.getHandle(workflowId, runId).describe()).status.name;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return undefined;
        throw err;
      }
    },
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
  const namespace = opts.namespace ?? process.env.TEMPORAL_NAMESPACE ?? 'default';
  const deps = opts.deps ?? defaultActivityDeps(opts.connection, namespace);
  return Worker.create({
    connection: opts.connection,
    namespace,
    taskQueue: opts.taskQueue ?? taskQueue(),
    ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath: path.resolve(__dirname, '../workflows') }),
    activities: opts.activities ?? { ...createActivities(deps), ...createRehearsalActivities(deps) },
    // Heartbeats reach the server every 500 ms (activities beat at HEARTBEAT_EVERY_MS): the window's 2 s
    // heartbeat timeout then tolerates three lost beats, and copy progress reaches `status` promptly.
    maxHeartbeatThrottleInterval: '500ms',
    // A dead worker's sticky workflow tasks go to another worker after 500 ms instead of 10 s: inside the
    // write-freeze window every second counts (see WORKFLOW_TASK_TIMEOUT). A live worker polls its sticky
    // queue at once; a late one costs a replay, not a failure.
    stickyQueueScheduleToStartTimeout: '500ms',
    ...(opts.identity ? { identity: opts.identity } : {}),
  });
}
