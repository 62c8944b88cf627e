/**
 * Waiting on an AWS resource from inside an activity: describe, report progress (the activity
 * heartbeats there), sleep, again, until done, a time limit, or the activity's cancellation.
 * AWS control planes are eventually consistent and slow (a DMS replication instance takes 5-15
 * minutes, a Route 53 change up to a minute), so every wait here is resumable: it gives up
 * retryably, and the next attempt finds the resource by name and waits on.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { ApplicationFailure } from '@temporalio/common';

export interface WaitProgress {
  /** What is being waited for, e.g. `replication instance pgmig-x-instance`. */
  resource: string;
  status: string;
  elapsedMs: number;
  polls: number;
}

export interface PollOptions {
  /** Between two describes; callers' defaults suit AWS (seconds). Tests pass a few ms. */
  intervalMs?: number;
  /** Give up (retryably: a retry resumes the wait) after this long. */
  timeoutMs?: number;
  /** Called after every describe: activities heartbeat here. Must not throw. */
  onProgress?: (progress: WaitProgress) => void;
  /** Activity cancellation (`Context.current().cancellationSignal`): ends the wait with its reason. */
  signal?: AbortSignal;
}

export type PollStep<T> = { done: true; value: T } | { done: false; status: string };

/**
 * The failure type of a wait that ran out of time. The name dates from when only the DMS method
 * polled; Route 53 waits share it, and retry policies or tests that name it must keep matching.
 */
export const WAIT_TIMEOUT = 'DmsWaitTimeout';

/**
 * Calls `check` until it reports done, reporting progress after each call and sleeping `intervalMs`
 * between calls. On timeout: a retryable `WAIT_TIMEOUT` failure (the next attempt finds the
 * resource by name and waits on). Cancellation rejects with the signal's reason.
 */
export async function pollUntil<T>(
  resource: string,
  check: () => Promise<PollStep<T>>,
  opts: PollOptions = {},
  defaults: { intervalMs: number; timeoutMs: number } = { intervalMs: 5_000, timeoutMs: 15 * 60_000 },
): Promise<T> {
  const intervalMs = opts.intervalMs ?? defaults.intervalMs;
  const timeoutMs = opts.timeoutMs ?? defaults.timeoutMs;
  const started = Date.now();
  for (let polls = 1; ; polls++) {
    if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('cancelled');
    const step = await check();
    const elapsedMs = Date.now() - started;
    opts.onProgress?.({ resource, status: step.done ? 'done' : step.status, elapsedMs, polls });
    if (step.done) return step.value;
    if (elapsedMs >= timeoutMs) {
      throw ApplicationFailure.retryable(
        `${resource}: still '${step.status}' after ${(elapsedMs / 1000).toFixed(1)} s (limit ${(timeoutMs / 1000).toFixed(1)} s); a retry finds it and waits on`,
        WAIT_TIMEOUT,
      );
    }
    try {
      await delay(Math.max(0, Math.min(intervalMs, timeoutMs - elapsedMs)), undefined, { signal: opts.signal });
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? err;
      throw err;
    }
  }
}
