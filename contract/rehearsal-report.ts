/**
 * The rehearsal report: pure arithmetic over what the rehearsal measured (phase timings that add up
 * to the measured total, the write-freeze window, publishable downtime = window + margin, the
 * budget check, the trend against earlier rehearsals). Shared by the workflow, the report activity,
 * the CLI and the unit tests. Pure module: no Node APIs.
 */
import { durationMs, type MigrationMethod } from './input';
import { formatMs } from './plan';
import type { CompensationRecord, FreezeWindow, GateDecision, StepRecord } from '../signals';

export type RehearsalOutcome = 'running' | 'passed' | 'over-budget' | 'failed' | 'cancelled';

export interface PhaseTiming {
  name: string;
  kind: 'snapshot' | 'migration' | 'undo' | 'teardown' | 'overhead';
  durationMs: number;
  state?: 'completed' | 'failed' | 'running';
  /** The step ran (at least partly) while writes were frozen: the chart marks the window across these segments only. */
  inFreezeWindow?: true;
}

export const OVERHEAD_PHASE = 'orchestration overhead';

/**
 * The phases plus one explicit line for everything between them (workflow tasks, starting the child,
 * gate handling): total - sum of the phases, so the lines add up to the measured total exactly.
 */
export function withOverhead(phases: PhaseTiming[], totalMs: number): PhaseTiming[] {
  const sum = phases.reduce((n, p) => n + p.durationMs, 0);
  return [...phases, { name: OVERHEAD_PHASE, kind: 'overhead', durationMs: totalMs - sum }];
}

/**
 * Whether a step overlaps the write-freeze window. The freeze edges fall inside steps (frozenAt at the
 * end of the freeze step, unfrozenAt inside go-live), so overlap, not containment; a window not yet
 * closed extends to the end.
 */
export function stepInFreezeWindow(step: StepRecord, window: FreezeWindow): boolean {
  if (window.frozenAt === undefined) return false;
  const start = Date.parse(step.startedAt);
  const end = step.endedAt !== undefined ? Date.parse(step.endedAt) : start + (step.durationMs ?? 0);
  return end >= window.frozenAt && (window.unfrozenAt === undefined || start <= window.unfrozenAt);
}

export function sumOfPhases(phases: PhaseTiming[]): number {
  return phases.reduce((n, p) => n + p.durationMs, 0);
}

/** Publishable downtime = rehearsed window + max(marginPercent of the window, minMarginMs), rounded up to a whole ms. */
export function publishableDowntime(
  windowMs: number,
  marginPercent: number,
  minMarginMs: number,
): { marginMs: number; publishableMs: number } {
  const marginMs = Math.max(Math.ceil((windowMs * marginPercent) / 100), minMarginMs);
  return { marginMs, publishableMs: windowMs + marginMs };
}

/** Within budget when the publishable downtime is at most the budget; undefined when there is nothing to compare. */
export function withinBudget(publishableMs: number | undefined, budgetMs: number | undefined): boolean | undefined {
  if (publishableMs === undefined || budgetMs === undefined) return undefined;
  return publishableMs <= budgetMs;
}

export function copyThroughput(bytes: number | undefined, copyMs: number | undefined): number | undefined {
  if (bytes === undefined || copyMs === undefined || copyMs <= 0) return undefined;
  return Math.round((bytes * 1000) / copyMs);
}

/** Steps of the child that move the data: their total is the copy time of the throughput figure. */
export const COPY_STEPS = ['copy', 'initial-copy'] as const;

export interface TrendPoint {
  rehearsalId: string;
  startedAt: string;
  outcome: RehearsalOutcome;
  totalMs: number;
  rehearsedWindowMs?: number;
  publishableDowntimeMs?: number;
}

export interface Trend {
  /** Earlier rehearsals of the same migration found beside this one. */
  previousRehearsals: number;
  /** Of those, the ones that measured a window (completed). */
  comparable: number;
  lastWindowMs?: number;
  deltaVsLastMs?: number;
  medianWindowMs?: number;
  deltaVsMedianMs?: number;
  direction: 'first' | 'faster' | 'slower' | 'steady' | 'no-window';
  summary: string;
}

export function median(values: number[]): number | undefined {
  if (!values.length) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : Math.round((sorted[mid - 1] + sorted[mid]) / 2);
}

/**
 * This rehearsal's window against the earlier ones (chronological order not required): the change
 * against the last comparable one and against their median. Within max(5 %, 50 ms) of the median is steady.
 */
export function computeTrend(current: TrendPoint, previous: TrendPoint[]): Trend {
  const earlier = previous
    .filter((p) => p.rehearsalId !== current.rehearsalId && p.startedAt <= current.startedAt)
    .sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  const comparable = earlier.filter((p) => p.rehearsedWindowMs !== undefined);
  const base = { previousRehearsals: earlier.length, comparable: comparable.length };
  if (current.rehearsedWindowMs === undefined) {
    return { ...base, direction: 'no-window', summary: `no window measured in this rehearsal (${earlier.length} earlier rehearsal(s))` };
  }
  if (!comparable.length) {
    return {
      ...base,
      direction: 'first',
      summary: earlier.length
        ? `first measured window (${earlier.length} earlier rehearsal(s) measured none)`
        : 'first rehearsal of this migration',
    };
  }
  const last = comparable[comparable.length - 1].rehearsedWindowMs!;
  const med = median(comparable.map((p) => p.rehearsedWindowMs!))!;
  const deltaVsLastMs = current.rehearsedWindowMs - last;
  const deltaVsMedianMs = current.rehearsedWindowMs - med;
  const tolerance = Math.max(med * 0.05, 50);
  const direction = Math.abs(deltaVsMedianMs) <= tolerance ? 'steady' : deltaVsMedianMs < 0 ? 'faster' : 'slower';
  const signed = (v: number) => `${v >= 0 ? '+' : '-'}${formatMs(Math.abs(v))}`;
  return {
    ...base,
    lastWindowMs: last,
    deltaVsLastMs,
    medianWindowMs: med,
    deltaVsMedianMs,
    direction,
    summary: `${direction}: window ${formatMs(current.rehearsedWindowMs)}, ${signed(deltaVsLastMs)} vs the last rehearsal, ${signed(deltaVsMedianMs)} vs the median of ${comparable.length}`,
  };
}

export interface SnapshotSummary {
  type: 'logical' | 'rds-snapshot';
  /** Human description, without secrets (references only). */
  description: string;
  sizeBytes?: number;
  details?: Record<string, string | number>;
}

export interface TeardownRecord extends CompensationRecord {
  /** What was dropped / deleted. */
  done?: string[];
}

export interface ChildMeasurements {
  workflowId: string;
  outcome: 'completed' | 'rolled-back' | 'failed' | 'cancelled';
  reason?: string;
  steps: StepRecord[];
  compensations: CompensationRecord[];
  decisions: GateDecision[];
  freezeWindow: FreezeWindow;
  verification: 'passed' | 'failed' | 'not-run';
  rowsCopied?: number;
  tables?: number;
  replication?: { lagBytes?: number | null; lagSeconds?: number | null; caughtUp?: boolean };
}

export interface RehearsalMeasurements {
  rehearsalId: string;
  migrationId: string;
  workflowId: string;
  runId: string;
  startedAtMs: number;
  endedAtMs: number;
  scheduledAt?: string;
  scheduleId?: string;
  snapshot: SnapshotSummary;
  snapshotMs?: number;
  method?: MigrationMethod;
  methodReason?: string;
  child?: ChildMeasurements;
  teardown: TeardownRecord[];
  teardownMs: number;
  /** A failure outside the child (snapshot, setup), with where it happened. */
  failure?: { phase: string; message: string };
  cancelled: boolean;
  downtimeBudget?: string;
  marginPercent: number;
  minMarginMs: number;
  deviations: string[];
}

export interface RehearsalReport {
  version: 1;
  rehearsalId: string;
  migrationId: string;
  workflowId: string;
  runId: string;
  childWorkflowId?: string;
  startedAt: string;
  endedAt: string;
  scheduledAt?: string;
  scheduleId?: string;
  outcome: Exclude<RehearsalOutcome, 'running'>;
  verdict: 'pass' | 'fail';
  /** Why the verdict is fail (empty on pass). */
  reasons: string[];
  notes: string[];
  failure?: { phase: string; message: string };
  method?: MigrationMethod;
  methodReason?: string;
  snapshot: SnapshotSummary;
  /** Wall time of the whole rehearsal (snapshot, migration, teardown), workflow clock. */
  totalMs: number;
  /** Adds up to totalMs exactly (the overhead line is the remainder). */
  phases: PhaseTiming[];
  freezeWindow: { durationMs?: number; gateWaitMs?: number; rehearsedWindowMs?: number; basis: string };
  copy: { bytes?: number; ms?: number; bytesPerSecond?: number; basis: string };
  lagAtCutover?: { bytes?: number | null; seconds?: number | null; basis: string };
  verification: 'passed' | 'failed' | 'not-run';
  rowsCopied?: number;
  margin: { percent: number; minMs: number; appliedMs?: number };
  publishableDowntimeMs?: number;
  budget: { value?: string; ms?: number; withinBudget?: boolean };
  trend?: Trend;
  approvals: GateDecision[];
  compensations: CompensationRecord[];
  teardown: TeardownRecord[];
}

export function buildReport(m: RehearsalMeasurements): RehearsalReport {
  const totalMs = m.endedAtMs - m.startedAtMs;
  const child = m.child;
  const phases: PhaseTiming[] = [];
  if (m.snapshotMs !== undefined)
    phases.push({
      name: 'snapshot',
      kind: 'snapshot',
      durationMs: m.snapshotMs,
      state: m.failure?.phase === 'snapshot' ? 'failed' : 'completed',
    });
  for (const s of child?.steps ?? [])
    phases.push({
      name: s.name,
      kind: 'migration',
      durationMs: s.durationMs ?? 0,
      state: s.state,
      ...(stepInFreezeWindow(s, child?.freezeWindow ?? {}) ? { inFreezeWindow: true as const } : {}),
    });
  for (const c of child?.compensations ?? [])
    phases.push({ name: `undo ${c.step}`, kind: 'undo', durationMs: c.durationMs, state: c.state });
  phases.push({
    name: 'teardown',
    kind: 'teardown',
    durationMs: m.teardownMs,
    state: m.teardown.some((t) => t.state === 'failed') ? 'failed' : 'completed',
  });

  const reasons: string[] = [];
  const notes = [...m.deviations];
  if (m.cancelled) reasons.push('the rehearsal was cancelled');
  if (m.failure) reasons.push(`${m.failure.phase} failed: ${m.failure.message}`);
  if (child && child.outcome !== 'completed' && !m.cancelled) {
    const failedStep = child.steps.find((s) => s.state === 'failed');
    if (child.outcome === 'rolled-back') reasons.push(`the migration rolled back: ${child.reason ?? 'no reason given'}`);
    else if (child.outcome === 'failed')
      reasons.push(
        `the migration failed${failedStep ? ` at step ${failedStep.name}` : ''}: ${child.reason ?? failedStep?.error ?? 'no reason given'}`,
      );
  }
  if (child?.verification === 'failed')
    reasons.push('verification failed (row counts / checksums differ between the snapshot and the scratch target)');
  const failedUndos = child?.compensations.filter((c) => c.state === 'failed') ?? [];
  if (failedUndos.length)
    reasons.push(`the migration's compensation failed: ${failedUndos.map((c) => `${c.step} (${c.error})`).join(', ')}`);
  const failedTeardown = m.teardown.filter((t) => t.state === 'failed');
  if (failedTeardown.length)
    reasons.push(`teardown incomplete, scratch resources may be left: ${failedTeardown.map((t) => `${t.step} (${t.error})`).join(', ')}`);

  const fw = child?.freezeWindow ?? {};
  const rehearsedWindowMs =
    child?.outcome === 'completed' && fw.durationMs !== undefined ? fw.durationMs - (fw.gateWaitMs ?? 0) : undefined;
  const budgetMs = m.downtimeBudget ? durationMs(m.downtimeBudget) : undefined;
  const margin = rehearsedWindowMs !== undefined ? publishableDowntime(rehearsedWindowMs, m.marginPercent, m.minMarginMs) : undefined;
  const within = withinBudget(margin?.publishableMs, budgetMs);
  const measured = reasons.length === 0;
  if (measured && within === false) {
    reasons.push(
      `publishable downtime ${formatMs(margin!.publishableMs)} (rehearsed window ${formatMs(rehearsedWindowMs!)} + margin ${formatMs(margin!.marginMs)}) exceeds downtimeBudget ${m.downtimeBudget}`,
    );
  }
  if (measured && budgetMs === undefined)
    notes.push('the migration input has no downtimeBudget: nothing to compare the publishable downtime with');

  const copySteps = child?.steps.filter((s) => (COPY_STEPS as readonly string[]).includes(s.name) && s.state === 'completed') ?? [];
  const copyMs = copySteps.length ? copySteps.reduce((n, s) => n + (s.durationMs ?? 0), 0) : undefined;
  const bytes = m.snapshot.sizeBytes;
  const cdc = m.method !== undefined && m.method !== 'dump-restore';

  const outcome: RehearsalReport['outcome'] = m.cancelled
    ? 'cancelled'
    : !measured
      ? 'failed'
      : within === false
        ? 'over-budget'
        : 'passed';
  return {
    version: 1,
    rehearsalId: m.rehearsalId,
    migrationId: m.migrationId,
    workflowId: m.workflowId,
    runId: m.runId,
    ...(child ? { childWorkflowId: child.workflowId } : {}),
    startedAt: new Date(m.startedAtMs).toISOString(),
    endedAt: new Date(m.endedAtMs).toISOString(),
    ...(m.scheduledAt ? { scheduledAt: m.scheduledAt } : {}),
    ...(m.scheduleId ? { scheduleId: m.scheduleId } : {}),
    outcome,
    verdict: outcome === 'passed' ? 'pass' : 'fail',
    reasons,
    notes,
    ...(m.failure ? { failure: m.failure } : {}),
    ...(m.method ? { method: m.method } : {}),
    ...(m.methodReason ? { methodReason: m.methodReason } : {}),
    snapshot: m.snapshot,
    totalMs,
    phases: withOverhead(phases, totalMs),
    freezeWindow: {
      ...(fw.durationMs !== undefined ? { durationMs: fw.durationMs } : {}),
      ...(fw.gateWaitMs !== undefined ? { gateWaitMs: fw.gateWaitMs } : {}),
      ...(rehearsedWindowMs !== undefined ? { rehearsedWindowMs } : {}),
      basis:
        'from the source freeze (writes refused, probe write rejected) to go-live on the target, measured by the activities; the go-live gate wait is subtracted (approved ahead of time here)',
    },
    copy: {
      ...(bytes !== undefined ? { bytes } : {}),
      ...(copyMs !== undefined ? { ms: copyMs } : {}),
      ...(copyThroughput(bytes, copyMs) !== undefined ? { bytesPerSecond: copyThroughput(bytes, copyMs) } : {}),
      basis: `snapshot database size (pg_database_size) / duration of the ${cdc ? 'initial-copy' : 'copy'} step`,
    },
    ...(cdc
      ? {
          lagAtCutover: {
            ...(child?.replication ? { bytes: child.replication.lagBytes ?? null, seconds: child.replication.lagSeconds ?? null } : {}),
            basis: 'replication lag at the last poll before the cutover gate (status.replication)',
          },
        }
      : {}),
    verification: child?.verification ?? 'not-run',
    ...(child?.rowsCopied !== undefined ? { rowsCopied: child.rowsCopied } : {}),
    margin: { percent: m.marginPercent, minMs: m.minMarginMs, ...(margin ? { appliedMs: margin.marginMs } : {}) },
    ...(margin ? { publishableDowntimeMs: margin.publishableMs } : {}),
    budget: {
      ...(m.downtimeBudget ? { value: m.downtimeBudget } : {}),
      ...(budgetMs !== undefined ? { ms: budgetMs } : {}),
      ...(within !== undefined ? { withinBudget: within } : {}),
    },
    approvals: child?.decisions ?? [],
    compensations: child?.compensations ?? [],
    teardown: m.teardown,
  };
}

export function trendPoint(report: RehearsalReport): TrendPoint {
  return {
    rehearsalId: report.rehearsalId,
    startedAt: report.startedAt,
    outcome: report.outcome,
    totalMs: report.totalMs,
    ...(report.freezeWindow.rehearsedWindowMs !== undefined ? { rehearsedWindowMs: report.freezeWindow.rehearsedWindowMs } : {}),
    ...(report.publishableDowntimeMs !== undefined ? { publishableDowntimeMs: report.publishableDowntimeMs } : {}),
  };
}
