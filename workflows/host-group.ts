/**
 * Steps that share files on one worker's host run as a group on that worker (Temporal's
 * worker-specific task queues): the workflow asks, on the shared queue, which worker to use
 * (`claimHost`: whichever live worker answers), then schedules the group's steps on that worker's own
 * queue with a short scheduleToStartTimeout. A dead worker polls nothing: the next step (or the retry
 * of the one it was running, after its heartbeat timeout) is not started in time, the server fails it
 * with a SCHEDULE_TO_START timeout (never retried), and the whole group starts over on another worker,
 * after `restart` has cleaned what the partial group left in the databases. The files the dead host
 * kept are never needed: a group reads only what it wrote itself.
 *
 * A worker without a queue of its own (workers/worker.ts without a worker id: one worker, or an old
 * one) answers without one, and the group runs on the shared queue as before.
 */
import { ActivityFailure, log, TimeoutFailure } from '@temporalio/workflow';
import type { HostClaim } from '../activities/host';
import { activities } from './activity-options';

/** The group's result and the workers it ran on, in order (the last one completed it). */
export interface HostGroupRun<T> {
  value: T;
  workers: string[];
}

/** How many workers a group is tried on before the lost worker's failure is the group's. */
export const MAX_HOSTS_PER_GROUP = 3;

/** A step of a pinned group was not started on its worker in time: the worker (its host) is gone. */
export function lostItsHost(err: unknown): boolean {
  return err instanceof ActivityFailure && err.cause instanceof TimeoutFailure && err.cause.timeoutType === 'SCHEDULE_TO_START';
}

export async function onOneHost<T>(
  group: {
    /** For the log and the step's detail. */
    name: string;
    /** Puts the databases back to before the group's first step (idempotent; runs on the shared queue). */
    restart: (lost: HostClaim) => Promise<void>;
    maxHosts?: number;
  },
  steps: (host: HostClaim) => Promise<T>,
): Promise<HostGroupRun<T>> {
  const workers: string[] = [];
  for (;;) {
    const host = await activities.regular.claimHost();
    workers.push(host.workerId);
    try {
      return { value: await steps(host), workers };
    } catch (err) {
      if (!host.taskQueue || !lostItsHost(err) || workers.length >= (group.maxHosts ?? MAX_HOSTS_PER_GROUP)) throw err;
      log.warn(`${group.name}: worker ${host.workerId} is gone; the group starts over on another worker`, { worker: host.workerId });
      await group.restart(host);
    }
  }
}

/** "on worker a" or "on worker b (started over after worker a was lost)". */
export function describeHosts(workers: string[]): string {
  const last = workers[workers.length - 1];
  const lost = workers.slice(0, -1);
  return `on worker ${last}${lost.length ? ` (started over after worker ${lost.join(', then ')} was lost)` : ''}`;
}
