/** The task queue every migration worker polls: part of the public contract, overridable for tests and staging. */
export const DEFAULT_TASK_QUEUE = 'pg-migrations';

export function taskQueue(env: NodeJS.ProcessEnv = process.env): string {
  return env.TEMPORAL_TASK_QUEUE || DEFAULT_TASK_QUEUE;
}
