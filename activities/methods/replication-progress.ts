/**
 * The progress of a wait for replication (the `initial-copy` and `catch-up` steps of the CDC methods),
 * from each state a method's watch reports: while tables are still copied, the copy (bytes, where the
 * method counts them, else tables ready); then the lag (changes, bytes or seconds, as the method measures
 * it), as the part of the lag at the start of the step's wait that is gone, the rate it falls at, the time
 * until it is under the threshold.
 */
import { formatAmount, LagMeter, ProgressMeter, type ProgressUnit, type StepProgress } from '../../contract/progress';
import { formatBytes } from '../../contract/plan';
import { copyStepProgress } from '../progress';
import type { ReplicationState, WatchArgs } from './method';

/** The lag a method reports and the threshold it is held to, in the unit it is measured in. */
export function lagOf(state: ReplicationState, args: WatchArgs): { lag: number; unit: ProgressUnit; threshold: number } | undefined {
  if (state.lagChanges !== undefined && state.lagChanges !== null) {
    return { lag: state.lagChanges, unit: 'changes', threshold: args.maxLagChanges ?? 1_000 };
  }
  if (state.lagBytes !== null) return { lag: state.lagBytes, unit: 'bytes', threshold: args.maxLagBytes };
  if (state.lagSeconds !== undefined && state.lagSeconds !== null) {
    return { lag: state.lagSeconds, unit: 'seconds', threshold: args.maxLagSeconds ?? 5 };
  }
  return undefined;
}

function lagText(state: ReplicationState): string {
  const parts: string[] = [];
  if (state.lagChanges !== undefined && state.lagChanges !== null) parts.push(`${state.lagChanges} changes`);
  if (state.lagBytes !== null) parts.push(formatBytes(state.lagBytes));
  if (state.lagSeconds !== undefined && state.lagSeconds !== null) parts.push(`${state.lagSeconds} s`);
  return parts.length ? `lag ${parts.join(', ')}` : 'lag not known yet';
}

export class ReplicationProgress {
  private readonly step: 'initial-copy' | 'catch-up' | undefined;
  private readonly meters = new Map<string, ProgressMeter>();
  private lagMeter: LagMeter | undefined;

  constructor(private readonly args: WatchArgs) {
    this.step = args.progressStep;
  }

  private meter(step: string, unit: ProgressUnit): ProgressMeter {
    const key = `${step}/${unit}`;
    let meter = this.meters.get(key);
    if (!meter) this.meters.set(key, (meter = new ProgressMeter(step, unit)));
    return meter;
  }

  /** The lag the step's wait began with, once measured (the workflow carries it to the next call). */
  get lagAtStart(): number | undefined {
    return this.lagMeter?.startLag ?? this.args.lagAtStart;
  }

  measure(state: ReplicationState): StepProgress {
    const copying = state.tablesTotal === 0 || state.tablesReady < state.tablesTotal;
    // Histories from before progressStep: the step is told by the state.
    const step = this.step ?? (copying ? 'initial-copy' : 'catch-up');
    const errors = state.errors?.messages.length ? `; ${state.errors.messages.length} replication error(s), see status` : '';
    if (step === 'initial-copy') {
      if (state.copy) return copyStepProgress(this.meter(step, 'bytes'), state.copy, `${lagText(state)}${errors}`);
      return this.meter(step, 'tables').measure({
        done: state.tablesReady,
        ...(state.tablesTotal > 0 ? { total: state.tablesTotal } : {}),
        detail: `tables ready; ${lagText(state)}${errors}`,
      });
    }
    const lag = lagOf(state, this.args);
    if (!lag) {
      return this.meter(step, 'tables').measure({
        done: state.tablesReady,
        total: state.tablesTotal,
        detail: `${lagText(state)}${errors}`,
      });
    }
    this.lagMeter ??= new LagMeter(step, lag.unit, this.args.lagAtStart);
    return this.lagMeter.measure(
      lag.lag,
      lag.threshold,
      `${lagText(state)} (caught up under ${formatAmount(lag.threshold, lag.unit)})${errors}`,
    );
  }
}
