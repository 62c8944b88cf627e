import type { Duration } from '@temporalio/common';

/** The task queue every migration worker polls: part of the public contract, overridable for tests and staging. */
export const DEFAULT_TASK_QUEUE = 'pg-migrations';

export function taskQueue(env: NodeJS.ProcessEnv = process.env): string {
  return env.TEMPORAL_TASK_QUEUE || DEFAULT_TASK_QUEUE;
}

/**
 * How long a workflow task may take before the server hands it to another worker. The server's
 * default is 10 s; inside the write-freeze window (local activities run inside the workflow task)
 * every second of a dead worker is a second of outage, so migrations are started with 3 s.
 */
export const WORKFLOW_TASK_TIMEOUT: Duration = '3s';

/** Options for starting a migration or rehearsal on the migration workers. */
export function migrationStartOptions(queue: string = taskQueue()) {
  return { taskQueue: queue, workflowTaskTimeout: WORKFLOW_TASK_TIMEOUT };
}

/**
 * The queue only one worker process polls besides the shared one (Temporal's worker-specific task
 * queues): the steps that share files on that worker's host run there (workflows/host-group.ts).
 */
export function hostTaskQueue(queue: string, workerId: string): string {
  return `${queue}@${workerId}`;
}
