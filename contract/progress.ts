/**
 * One shape of progress for every long step (copy, initial copy, catch-up, verification, apply): what
 * activities heartbeat and report to their workflow, what the `status` query holds in `progress`, what
 * the Temporal UI's details and the CLI print.
 */
import { formatBytes, formatMs } from './plan';

export type ProgressUnit = 'bytes' | 'rows' | 'tables' | 'changes' | 'objects' | 'seconds';

export const PROGRESS_UNITS: readonly ProgressUnit[] = ['bytes', 'rows', 'tables', 'changes', 'objects', 'seconds'];

export interface StepProgress {
  /** The step reporting, as in `status.steps[].name` (e.g. `copy`, `initial-copy`, `catch-up`, `verify`). */
  step: string;
  /** 0-100, one decimal; absent when the total is not known. */
  percent?: number;
  done: number;
  total?: number;
  unit: ProgressUnit;
  /** Units per second over the recent past; absent until measurable. */
  ratePerSecond?: number;
  /** Seconds to the end at the current rate; absent when unknown. */
  etaSeconds?: number;
  /** What a person wants beside the figures (`pgcopydb, 2 jobs`, `lag 1.2 s`), at most 200 characters. */
  detail?: string;
  /** ISO time of the measurement (worker clock). */
  at: string;
}

const MAX_STEP = 64;
const MAX_DETAIL = 200;

const finiteAtLeastZero = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** Checks a progress report from an activity: anything malformed or oversized is refused (undefined). */
export function checkProgress(raw: unknown): StepProgress | undefined {
  const p = raw as Partial<StepProgress> | undefined;
  if (!p || typeof p !== 'object') return undefined;
  if (typeof p.step !== 'string' || !p.step || p.step.length > MAX_STEP) return undefined;
  if (!finiteAtLeastZero(p.done)) return undefined;
  if (!PROGRESS_UNITS.includes(p.unit as ProgressUnit)) return undefined;
  if (typeof p.at !== 'string' || p.at.length > 40) return undefined;
  for (const key of ['percent', 'total', 'ratePerSecond', 'etaSeconds'] as const) {
    if (p[key] !== undefined && !finiteAtLeastZero(p[key])) return undefined;
  }
  if (p.percent !== undefined && p.percent > 100) return undefined;
  if (p.detail !== undefined && (typeof p.detail !== 'string' || p.detail.length > MAX_DETAIL)) return undefined;
  const checked: StepProgress = { step: p.step, done: p.done, unit: p.unit as ProgressUnit, at: p.at };
  for (const key of ['percent', 'total', 'ratePerSecond', 'etaSeconds', 'detail'] as const) {
    if (p[key] !== undefined) (checked as unknown as Record<string, unknown>)[key] = p[key];
  }
  return checked;
}

/** `1.2 MB`, `3.5 s`, `1,024 changes`. */
export function formatAmount(value: number, unit: ProgressUnit): string {
  if (unit === 'bytes') return formatBytes(value);
  if (unit === 'seconds') return formatMs(value * 1000);
  return `${Math.round(value).toLocaleString('en-US')} ${unit}`;
}

/** `copy 45.2% (1.2 GB of 2.7 GB, 38.0 MB/s, ETA 41.0 s): pgcopydb, 2 jobs` */
export function describeProgress(p: StepProgress): string {
  const figures = [
    p.total !== undefined ? `${formatAmount(p.done, p.unit)} of ${formatAmount(p.total, p.unit)}` : formatAmount(p.done, p.unit),
  ];
  if (p.ratePerSecond !== undefined) figures.push(`${formatAmount(p.ratePerSecond, p.unit)}/s`);
  figures.push(p.etaSeconds !== undefined ? `ETA ${formatMs(p.etaSeconds * 1000)}` : 'ETA unknown');
  const percent = p.percent !== undefined ? ` ${p.percent.toFixed(1)}%` : '';
  return `${p.step}${percent} (${figures.join(', ')})${p.detail ? `: ${p.detail}` : ''}`;
}

/** A text progress bar for a terminal: `[#########-----------] 45.2%`. */
export function progressBar(percent: number, width = 20): string {
  const filled = Math.max(0, Math.min(width, Math.round((percent / 100) * width)));
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${percent.toFixed(1)}%`;
}

/** What was done by when (epoch ms): the samples a rate is measured over. */
export interface ProgressSample {
  atMs: number;
  done: number;
}

/** How far back the rate looks: recent enough to follow a change of pace, long enough to be steady. */
export const RATE_WINDOW_MS = 10_000;
/** A rate over less time than this is noise: none is given before. */
export const RATE_MIN_SPAN_MS = 1_000;

/**
 * Units per second from the oldest sample in the last `windowMs` to the newest (at least `minSpanMs`
 * apart); undefined when there is not enough to measure, or when the work went backwards.
 */
export function rateOver(samples: ProgressSample[], windowMs = RATE_WINDOW_MS, minSpanMs = RATE_MIN_SPAN_MS): number | undefined {
  const last = samples[samples.length - 1];
  if (!last) return undefined;
  const first = samples.find((s) => last.atMs - s.atMs <= windowMs) ?? last;
  const span = last.atMs - first.atMs;
  if (span < minSpanMs) return undefined;
  const rate = ((last.done - first.done) / span) * 1000;
  return rate >= 0 ? round(rate, 1) : undefined;
}

/** Seconds until `remaining` is done at `rate`: 0 when nothing remains, undefined when the rate is unknown or nil. */
export function etaFor(remaining: number, rate: number | undefined): number | undefined {
  if (remaining <= 0) return 0;
  if (rate === undefined || rate <= 0) return undefined;
  return Math.round(remaining / rate);
}

/** 0-100 with one decimal; undefined without a total; 100 for an empty total. */
export function percentOf(done: number, total: number | undefined): number | undefined {
  if (total === undefined) return undefined;
  if (total <= 0) return 100;
  return Math.min(100, Math.max(0, round((done / total) * 100, 1)));
}

const round = (v: number, decimals: number) => Math.round(v * 10 ** decimals) / 10 ** decimals;

/**
 * Measures one step's progress as it goes: each `measure` takes what is done (and of what total) and
 * gives the step's `StepProgress`, its rate over the last `RATE_WINDOW_MS`, its ETA at that rate.
 */
export class ProgressMeter {
  private samples: ProgressSample[] = [];

  constructor(
    readonly step: string,
    readonly unit: ProgressUnit,
    private readonly now: () => number = Date.now,
  ) {}

  measure(m: {
    done: number;
    total?: number;
    detail?: string;
    /** When the engine knows better than `done / total` (e.g. every table in although the sizes were estimates). */
    percent?: number;
    /** What is left, when it is not `total - done` (the lag above the threshold). */
    remaining?: number;
  }): StepProgress {
    const atMs = this.now();
    const done = Math.max(0, m.done);
    this.samples.push({ atMs, done });
    // Only what the rate can still look at (and the one before it, for a full window).
    while (this.samples.length > 2 && atMs - this.samples[1].atMs > RATE_WINDOW_MS) this.samples.shift();
    const percent = m.percent ?? percentOf(done, m.total);
    const ratePerSecond = rateOver(this.samples);
    const remaining = m.remaining ?? (m.total !== undefined ? Math.max(0, m.total - done) : undefined);
    const etaSeconds = remaining === undefined ? undefined : percent === 100 ? 0 : etaFor(remaining, ratePerSecond);
    const p: StepProgress = { step: this.step, done, unit: this.unit, at: new Date(atMs).toISOString() };
    if (percent !== undefined) p.percent = Math.min(100, Math.max(0, round(percent, 1)));
    if (m.total !== undefined) p.total = Math.max(0, m.total);
    if (ratePerSecond !== undefined) p.ratePerSecond = ratePerSecond;
    if (etaSeconds !== undefined) p.etaSeconds = etaSeconds;
    if (m.detail) p.detail = m.detail.slice(0, MAX_DETAIL);
    return p;
  }
}

/**
 * A wait for replication lag to fall (catch-up): the lag when the wait began is the total, the part of it
 * gone is what is done, the rate is how fast the lag falls, the ETA when it reaches the threshold. A lag
 * that grows past its start becomes the new start.
 */
export class LagMeter {
  private readonly meter: ProgressMeter;
  private start: number | undefined;

  constructor(step: string, unit: ProgressUnit, startLag?: number, now?: () => number) {
    this.meter = new ProgressMeter(step, unit, now);
    this.start = startLag;
  }

  /** The lag the wait began with (carried across the workflow's successive waits). */
  get startLag(): number | undefined {
    return this.start;
  }

  measure(lag: number, threshold: number, detail?: string): StepProgress {
    const current = Math.max(0, lag);
    if (this.start === undefined || current > this.start) this.start = current;
    const done = this.start - current;
    const caughtUp = current <= threshold;
    return this.meter.measure({
      done,
      total: this.start,
      remaining: Math.max(0, current - threshold),
      ...(caughtUp ? { percent: 100 } : {}),
      detail: detail ?? `lag ${formatAmount(current, this.meter.unit)}`,
    });
  }
}
