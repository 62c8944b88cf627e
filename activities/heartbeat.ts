/**
 * Heartbeats while an activity works, so a short heartbeat timeout finds a dead worker within seconds
 * (inside the write-freeze window every second of a dead worker is a second of outage). Local
 * activities have no heartbeat: a dead worker is found by the workflow task timeout instead.
 */
import { Context } from '@temporalio/activity';

export async function keepAlive<T>(work: () => Promise<T>, details?: () => unknown, everyMs = 1_000): Promise<T> {
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
