/**
 * What `status` and `watch` can learn about a migration before asking the workflow: whether it is
 * closed (then its result and search attributes answer, no worker needed) and whether any worker
 * polls its task queue (a query to a workflow nobody runs waits until the client gives up, 30-60 s,
 * and then says only "Failed to query Workflow").
 */
import { isGrpcDeadlineError, type Client, type WorkflowExecutionDescription, type WorkflowHandle } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { statusQuery, type MigrationStatus } from '../signals';

/** A live worker long-polls for at most a minute at a time: a poller not seen for longer has gone. */
const LIVE_POLLER_MS = 90_000;
/** A backstop for a worker that polls but does not answer (stuck, or gone within LIVE_POLLER_MS). */
export const QUERY_DEADLINE_MS = 10_000;

/** Workers that polled the queue for workflow tasks (queries are workflow tasks) within LIVE_POLLER_MS. */
export async function workflowPollers(client: Client, queue: string): Promise<number> {
  const { pollers } = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name: queue },
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  const now = Date.now();
  return pollers.filter((p) => !p.lastAccessTime || now - tsToMs(p.lastAccessTime) < LIVE_POLLER_MS).length;
}

/** The migration's search attributes the CLI shows (phase, outcome, awaited gate), as `name=value`. */
export function searchAttributeText(description: WorkflowExecutionDescription): string {
  const shown = ['MigrationPhase', 'MigrationMethod', 'MigrationOutcome', 'AwaitingGate'];
  return description.typedSearchAttributes
    .getAll()
    .filter((p) => shown.includes(p.key.name))
    .map((p) => `${p.key.name}=${String(p.value)}`)
    .join('  ');
}

export type Reachable =
  | { state: 'closed'; description: WorkflowExecutionDescription }
  | { state: 'no-worker'; description: WorkflowExecutionDescription; message: string }
  | { state: 'running'; description: WorkflowExecutionDescription };

/** Whether the workflow is closed, running with a worker, or running with nobody to answer it. */
export async function reachability(client: Client, handle: WorkflowHandle): Promise<Reachable> {
  const description = await handle.describe();
  if (description.status.name !== 'RUNNING') return { state: 'closed', description };
  if ((await workflowPollers(client, description.taskQueue)) > 0) return { state: 'running', description };
  const attributes = searchAttributeText(description);
  return {
    state: 'no-worker',
    description,
    message: `${handle.workflowId} is running, but no worker polls its task queue "${description.taskQueue}", so it cannot answer or make progress: start one with \`npm run worker\` (TEMPORAL_TASK_QUEUE=${description.taskQueue})${attributes ? `\nlast recorded: ${attributes}` : ''}`,
  };
}

/** A status query nobody answered: no worker polls the queue any more, or none answered in time. */
export class NoWorkerAnswer extends Error {}

/**
 * The status query, given up after QUERY_DEADLINE_MS rather than the client's default. The client
 * reports every failure as "Failed to query Workflow": the server's reason is in its cause.
 */
export async function queryStatus(handle: WorkflowHandle): Promise<MigrationStatus> {
  try {
    return await handle.client.connection.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => handle.query(statusQuery));
  } catch (err) {
    if (isGrpcDeadlineError(err))
      throw new NoWorkerAnswer(`${handle.workflowId}: no worker answered the status query within ${QUERY_DEADLINE_MS / 1000} s`, {
        cause: err,
      });
    const reason = (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : undefined;
    // The server's own check: "FAILED_PRECONDITION: no poller seen for task queue recently, worker may be down".
    if (reason && /no poller seen/.test(reason))
      throw new NoWorkerAnswer(`${handle.workflowId}: no worker polls its task queue any more (${reason})`, { cause: err });
    throw err;
  }
}
