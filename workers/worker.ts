/** Builds the migration worker; used by the worker entry point, the demo and the integration tests. */
import { hostname } from 'node:os';
import path from 'node:path';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { DatabaseMigrationServiceClient } from '@aws-sdk/client-database-migration-service';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { type NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';
import { createHostActivities } from '../activities/host';
import { createRehearsalActivities } from '../activities/rehearsal';
import { hostTaskQueue, taskQueue } from '../signals/task-queue';
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
  /**
   * This worker process's id, unique among the workers of the queue: with it, the worker also polls a queue
   * of its own (`<queue>@<workerId>`, see createHostWorker) where the steps that share files on its host run.
   * Without it, those steps run on the shared queue as they did before (one worker, or one host).
   */
  workerId?: string;
}

/** What both of a worker process's workers share: connection, namespace, activities (claimHost answers with the own queue). */
function commonOptions(opts: MigrationWorkerOptions) {
  const namespace = opts.namespace ?? process.env.TEMPORAL_NAMESPACE ?? 'default';
  const queue = opts.taskQueue ?? taskQueue();
  const deps = opts.deps ?? defaultActivityDeps(opts.connection, namespace);
  const host = opts.workerId
    ? { workerId: opts.workerId, taskQueue: hostTaskQueue(queue, opts.workerId) }
    : { workerId: opts.identity ?? `${hostname()}-${process.pid}` };
  return {
    queue,
    host,
    options: {
      connection: opts.connection,
      namespace,
      activities: {
        ...createHostActivities(host),
        ...(opts.activities ?? { ...createActivities(deps), ...createRehearsalActivities(deps) }),
      },
      // Heartbeats reach the server every 500 ms (activities beat at HEARTBEAT_EVERY_MS): the window's 2 s
      // heartbeat timeout then tolerates three lost beats, and copy progress reaches `status` promptly.
      maxHeartbeatThrottleInterval: '500ms',
      ...(opts.identity ? { identity: opts.identity } : {}),
    } satisfies Partial<WorkerOptions>,
  };
}

export async function createMigrationWorker(opts: MigrationWorkerOptions): Promise<Worker> {
  const { queue, options } = commonOptions(opts);
  return Worker.create({
    ...options,
    taskQueue: queue,
    ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath: path.resolve(__dirname, '../workflows') }),
    // A dead worker's sticky workflow tasks go to another worker after 500 ms instead of 10 s: inside the
    // write-freeze window every second counts (see WORKFLOW_TASK_TIMEOUT). A live worker polls its sticky
    // queue at once; a late one costs a replay, not a failure.
    stickyQueueScheduleToStartTimeout: '500ms',
  });
}

/**
 * The worker of this process's own queue (`<queue>@<workerId>`): activities only, the same ones. The
 * workflow sends a group of steps that share files on one host here (workflows/host-group.ts); when this
 * process is gone, nothing polls the queue, the group's next step is not started within its
 * scheduleToStartTimeout, and the workflow restarts the group on another worker.
 */
export async function createHostWorker(opts: MigrationWorkerOptions & { workerId: string }): Promise<Worker> {
  const { host, options } = commonOptions(opts);
  return Worker.create({ ...options, taskQueue: host.taskQueue! });
}

/**
 * A worker process: the shared queue's worker (workflows and activities) and, with a worker id, the one of
 * its own queue. Runs until either stops (shutdown, or a fatal error, which is rethrown); the other is shut down too.
 */
export async function runMigrationWorkers(opts: MigrationWorkerOptions): Promise<void> {
  const workers = [await createMigrationWorker(opts)];
  if (opts.workerId) workers.push(await createHostWorker({ ...opts, workerId: opts.workerId }));
  const runs = workers.map((w) => w.run());
  try {
    await Promise.race(runs);
  } finally {
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    await Promise.allSettled(runs);
  }
  await Promise.all(runs);
}
