/**
 * One shape of progress for every long step (copy, initial copy, catch-up, verification, apply): what
 * activities heartbeat and report to their workflow, what the `status` query holds in `progress`, what
 * the Temporal UI's details and the CLI print.
 */
import { formatBytes, formatMs } from './plan';

export type ProgressUnit = 'bytes' | 'rows' | 'tables' | 'changes' | 'objects';

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
  if (!['bytes', 'rows', 'tables', 'changes', 'objects'].includes(p.unit as string)) return undefined;
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

function amount(value: number, unit: ProgressUnit): string {
  return unit === 'bytes' ? formatBytes(value) : `${Math.round(value).toLocaleString('en-US')} ${unit}`;
}

/** `copy 45.2% (1.2 GB of 2.7 GB, 38.0 MB/s, ETA 41.0 s): pgcopydb, 2 jobs` */
export function describeProgress(p: StepProgress): string {
  const figures = [p.total !== undefined ? `${amount(p.done, p.unit)} of ${amount(p.total, p.unit)}` : amount(p.done, p.unit)];
  if (p.ratePerSecond !== undefined) figures.push(`${amount(p.ratePerSecond, p.unit)}/s`);
  figures.push(p.etaSeconds !== undefined ? `ETA ${formatMs(p.etaSeconds * 1000)}` : 'ETA unknown');
  const percent = p.percent !== undefined ? ` ${p.percent.toFixed(1)}%` : '';
  return `${p.step}${percent} (${figures.join(', ')})${p.detail ? `: ${p.detail}` : ''}`;
}

/** A text progress bar for a terminal: `[#########-----------] 45.2%`. */
export function progressBar(percent: number, width = 20): string {
  const filled = Math.max(0, Math.min(width, Math.round((percent / 100) * width)));
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${percent.toFixed(1)}%`;
}
