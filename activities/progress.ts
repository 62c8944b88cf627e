/**
 * A long step's progress, from its activity to the two places that show it: the activity's heartbeat
 * details (every beat: `StepProgress` fields, with the step's own fields beside them) and the workflow's
 * `status.progress` (the `progress` signal, throttled so the history stays small: the first after
 * `PROGRESS_FIRST_AFTER_MS`, then at most every `PROGRESS_EVERY_MS`, and only when the figures moved).
 */
import { Context } from '@temporalio/activity';
import { ProgressMeter, type StepProgress } from '../contract/progress';
import type { ActivityDeps } from './context';
import type { CopyProgress } from './methods/method';

export const PROGRESS_FIRST_AFTER_MS = 3_000;
export const PROGRESS_EVERY_MS = 10_000;
/** The workflow type whose `status` holds `progress` (a rehearsal's activities only heartbeat it). */
const REPORTING_WORKFLOW = 'migrateDatabase';

export type ProgressSend = (p: StepProgress) => Promise<void>;

/** Sends to the running activity's own migration workflow; undefined outside one (tests, CLI helpers, rehearsals). */
export function progressSend(deps: Pick<ActivityDeps, 'signalWorkflow'>): ProgressSend | undefined {
  let info: Context['info'];
  try {
    info = Context.current().info;
  } catch {
    return undefined;
  }
  const execution = info.workflowExecution;
  if (!execution || info.workflowType !== REPORTING_WORKFLOW) return undefined;
  return (p) => deps.signalWorkflow(execution.workflowId, execution.runId, 'progress', p);
}

/** What a change means: the figures, not the time they were taken or the rate's jitter. */
const figures = (p: StepProgress) => JSON.stringify([p.step, p.done, p.total, p.percent, p.unit, p.detail]);

/** Decides which progress reports go to the workflow: `offer` every measurement, it sends the few due. */
export class ProgressSignaller {
  private readonly startedMs: number;
  private lastSentMs: number | undefined;
  private lastSent: string | undefined;
  private inFlight = false;

  constructor(
    private readonly send: ProgressSend | undefined,
    private readonly opts: { firstAfterMs?: number; everyMs?: number; now?: () => number } = {},
  ) {
    this.startedMs = this.now();
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** Whether a report taken now would be sent (exposed for tests). */
  due(p: StepProgress): boolean {
    const now = this.now();
    if (this.inFlight) return false;
    if (now - this.startedMs < (this.opts.firstAfterMs ?? PROGRESS_FIRST_AFTER_MS)) return false;
    if (this.lastSentMs !== undefined && now - this.lastSentMs < (this.opts.everyMs ?? PROGRESS_EVERY_MS)) return false;
    return figures(p) !== this.lastSent;
  }

  offer(p: StepProgress): void {
    if (!this.send || !this.due(p)) return;
    this.lastSentMs = this.now();
    this.lastSent = figures(p);
    this.inFlight = true;
    // Progress is for people: a signal that cannot be sent (server busy, workflow closing) is not the step's failure.
    void this.send(p)
      .catch(() => undefined)
      .finally(() => (this.inFlight = false));
  }
}

/**
 * Heartbeat details: the step's own fields (what older CLIs decode) with the `StepProgress` fields over
 * them. Figures the progress does not know are left out rather than kept from the step's own (a null ETA).
 */
export function progressDetails(progress: StepProgress, own: object = {}): StepProgress & Record<string, unknown> {
  const details: Record<string, unknown> = { ...own, ...progress };
  for (const key of ['percent', 'total', 'ratePerSecond', 'etaSeconds', 'detail'] as const) {
    if (progress[key] === undefined) delete details[key];
  }
  return details as StepProgress & Record<string, unknown>;
}

/**
 * One activity's reporting: `beat(progress, own)` heartbeats the details and offers the progress to the
 * workflow. Outside an activity it does nothing (unit tests, CLI helpers).
 */
export function progressReporter(deps: Pick<ActivityDeps, 'signalWorkflow'> | undefined) {
  let ctx: Context | undefined;
  try {
    ctx = Context.current();
  } catch {
    ctx = undefined;
  }
  const signaller = new ProgressSignaller(deps ? progressSend(deps) : undefined);
  return {
    beat(progress: StepProgress, own?: object): void {
      if (ctx && !ctx.info.isLocal) ctx.heartbeat(progressDetails(progress, own));
      signaller.offer(progress);
    },
  };
}

/** A copy's progress by bytes (the engine's percent: every table in is 100%), its tables in the detail. */
export function copyStepProgress(meter: ProgressMeter, copy: CopyProgress, detail?: string): StepProgress {
  return meter.measure({
    done: copy.bytesDone,
    total: copy.bytesTotal,
    // Before the engine counted its tables, its percent says nothing (no table of none left is "all done").
    ...(copy.tablesTotal > 0 ? { percent: copy.percent } : {}),
    detail: `${copy.tablesDone}/${copy.tablesTotal} tables${detail ? `; ${detail}` : ''}`,
  });
}

/** A verification's reporting by tables fingerprinted (both sides, counts and checksums): one beat per call. */
export function tablesReporter(deps: Pick<ActivityDeps, 'signalWorkflow'> | undefined, step: string) {
  const reporter = progressReporter(deps);
  const meter = new ProgressMeter(step, 'tables');
  return (progress: { tablesDone: number; tablesTotal: number; stage?: string }) =>
    reporter.beat(
      meter.measure({
        done: progress.tablesDone,
        total: progress.tablesTotal,
        detail: `tables counted and checksummed on both sides${progress.stage ? `; ${progress.stage}` : ''}`,
      }),
      progress,
    );
}
