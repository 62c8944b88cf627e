/** Pure arithmetic of the benchmarks: medians, ratios, the orchestration overhead of a workflow run. */

export function median(values: number[]): number {
  const xs = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (!xs.length) return NaN;
  const mid = Math.floor(xs.length / 2);
  return xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
}

/** a / b, NaN when either is missing or b is zero. */
export function ratio(a: number, b: number): number {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : NaN;
}

/** `order` rotated left by `by`: run i of a repeated comparison starts with a different contender. */
export function rotated<T>(order: readonly T[], by: number): T[] {
  const n = order.length;
  if (!n) return [];
  const k = ((by % n) + n) % n;
  return [...order.slice(k), ...order.slice(0, k)];
}

export interface Interval {
  start: number;
  end: number;
}

/** Total length covered by the intervals, overlaps counted once. */
export function coveredMs(intervals: Interval[]): number {
  const xs = intervals.filter((i) => i.end > i.start).sort((a, b) => a.start - b.start);
  let total = 0;
  let current: Interval | undefined;
  for (const i of xs) {
    if (current && i.start <= current.end) current.end = Math.max(current.end, i.end);
    else {
      if (current) total += current.end - current.start;
      current = { ...i };
    }
  }
  return total + (current ? current.end - current.start : 0);
}

function overlaps(a: Interval, b: Interval): boolean {
  return a.start < b.end && b.start < a.end;
}

export interface OrchestrationOverhead {
  wallMs: number;
  /** Time covered by the migration's own activities: task started -> completed / failed, overlaps counted once. */
  activityMs: number;
  activities: number;
  /** Steps of the result that ran as local activities (no regular activity inside them), counted by their durations. */
  localSteps: string[];
  overheadMs: number;
  overheadPct: number;
}

/**
 * Wall time of the workflow minus the time its activities ran. Regular activities are measured from
 * the history (ActivityTaskStarted -> Completed); local activities leave only markers, so the steps of
 * the result that contain no regular activity (and, when the history has local-activity markers, are
 * where those ran) are counted by their own start and end.
 */
export function orchestrationOverhead(opts: {
  wallMs: number;
  activities: Interval[];
  steps: (Interval & { name: string })[];
  hasLocalActivities: boolean;
}): OrchestrationOverhead {
  const localSteps = opts.hasLocalActivities ? opts.steps.filter((s) => !opts.activities.some((a) => overlaps(a, s))) : [];
  const activityMs = coveredMs([...opts.activities, ...localSteps]);
  const overheadMs = opts.wallMs - activityMs;
  return {
    wallMs: opts.wallMs,
    activityMs,
    activities: opts.activities.length,
    localSteps: localSteps.map((s) => s.name),
    overheadMs,
    overheadPct: opts.wallMs > 0 ? (100 * overheadMs) / opts.wallMs : NaN,
  };
}
