/**
 * Heartbeats while an activity works, so a short heartbeat timeout finds a dead worker within seconds
 * (inside the write-freeze window every second of a dead worker is a second of outage). Local
 * activities have no heartbeat: a dead worker is found by the workflow task timeout instead.
 */
import { Context } from '@temporalio/activity';

/**
 * How often activities heartbeat. The window's steps have a 2 s heartbeat timeout: four beats fit in it,
 * so a busy event loop is not taken for a dead worker, and the worker sends at most one every 500 ms
 * (its maxHeartbeatThrottleInterval).
 */
export const HEARTBEAT_EVERY_MS = 500;

export async function keepAlive<T>(work: () => Promise<T>, details?: () => unknown, everyMs = HEARTBEAT_EVERY_MS): Promise<T> {
  let ctx: Context;
  try {
    ctx = Context.current();
  } catch {
    return work(); // called outside an activity (a unit test, a CLI helper): nothing to heartbeat to
  }
  if (ctx.info.isLocal) return work();
  const beat = () => ctx.heartbeat(details?.());
  beat();
  const timer = setInterval(beat, everyMs);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
