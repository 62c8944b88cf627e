import type { Duration } from '@temporalio/common';
import { describeRef, type MigrationInputDraft, type SecretRef } from '../contract/input';

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

/** Options for starting a migration or rehearsal on the migration workers; with its input, the UI's one-line summary. */
export function migrationStartOptions(queue: string = taskQueue(), input?: MigrationInputDraft) {
  return { taskQueue: queue, workflowTaskTimeout: WORKFLOW_TASK_TIMEOUT, ...(input ? { staticSummary: startSummary(input) } : {}) };
}

/** The one-line summary a migration is started with (client side; the references, never their values). */
export function startSummary(input: MigrationInputDraft): string {
  const ref = (r: unknown) => (r && typeof r === 'object' ? describeRef(r as SecretRef) : '?');
  const draft = input as {
    migrationId?: string;
    source?: { url?: unknown };
    target?: { url?: unknown };
    method?: string;
    downtimeBudget?: string;
  };
  const budget = draft.downtimeBudget ? `, downtime budget ${draft.downtimeBudget}` : '';
  return `${draft.migrationId ? `${draft.migrationId}: ` : ''}${ref(draft.source?.url)} -> ${ref(draft.target?.url)} (${draft.method ?? 'auto'}${budget})`;
}

/**
 * The queue only one worker process polls besides the shared one (Temporal's worker-specific task
 * queues): the steps that share files on that worker's host run there (workflows/host-group.ts).
 */
export function hostTaskQueue(queue: string, workerId: string): string {
  return `${queue}@${workerId}`;
}
