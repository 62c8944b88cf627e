/**
 * The state of a fleet (carried across continue-as-new) and the pure rules that move it: which database
 * a migration is (and so its child workflow id), the order and the waves, what a child's end means
 * (a result, or a failure carrying a MigrationResult), the failure budget, and the figures of the report.
 *
 * Pure module (bundled into workflow code): no Node APIs, no clock of its own.
 */
import type { MigrationResult } from '../signals';
import type { FleetInput, FleetWave } from './fleet';
import type { SecretRef } from './input';

export type FleetItemState = 'pending' | 'running' | 'completed' | 'rolled-back' | 'failed' | 'cancelled' | 'skipped';
export const ENDED_STATES: readonly FleetItemState[] = ['completed', 'rolled-back', 'failed', 'cancelled', 'skipped'];

/** A database found by discovery: what the template is filled with. */
export interface DiscoveredDatabase {
  app: string;
  addon: string;
  attachment: string;
  plan: string;
  /** Every app the add-on is attached to, with the attachment name. */
  attachments: { app: string; name: string }[];
  sizeBytes?: number;
  /** Why the size could not be measured (the database then counts as size 0 when ordering). */
  sizeError?: string;
}

export interface FleetItem {
  /** The database's identity (its source reference, or the Heroku add-on). */
  database: string;
  /** The child workflow: derived from the database, so one database has one migration at a time. */
  workflowId: string;
  migrationId: string;
  sizeBytes?: number;
  /** Index of its wave in the input's waves. */
  wave: number;
  /** Where its input comes from: the index in `migrations`, or the discovered database (template). */
  entry?: number;
  discovered?: DiscoveredDatabase;
  state: FleetItemState;
  method?: string;
  /** Write-freeze window of the child, in ms. */
  windowMs?: number;
  /** The window exceeded the downtime budget: counted against the failure budget. */
  overBudget?: boolean;
  rowsCopied?: number;
  reason?: string;
  startedAt?: string;
  endedAt?: string;
}

export interface FleetEvent {
  at: string;
  what: string;
}

export interface FleetState {
  fleetId: string;
  startedAt: string;
  items: FleetItem[];
  /** The wave running (index into the input's waves); equal to their number once all passed. */
  wave: number;
  /** Waves approved (approval per-wave), by name. */
  approvals: { wave: string; approver: string; reason?: string; at: string }[];
  paused?: { by: string; reason?: string; at: string };
  cancelled?: { by: string; reason?: string; at: string };
  /** Why no new migration starts any more (failure budget exceeded, a wave failed). */
  halted?: string;
  /** Runs before this one (continue-as-new). */
  runs: number;
  /** The last control events (pause, resume, approvals, budget), at most MAX_EVENTS. */
  events: FleetEvent[];
}

export const MAX_EVENTS = 50;
export const MAX_ITEM_REASON_CHARS = 500;

/** 32-bit FNV-1a as 8 hex digits: a short, stable suffix that keeps derived ids distinct. */
export function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

const slug = (text: string, max: number) =>
  text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, max)
    .replace(/-+$/, '');

/** The database a source reference names: the reference itself (the same reference is the same database). */
export function databaseOfRef(ref: SecretRef): string {
  const r = ref as { env?: string; ssm?: string; secretsManager?: string; database?: string };
  const base = r.env !== undefined ? `env:${r.env}` : r.ssm !== undefined ? `ssm:${r.ssm}` : `secretsManager:${r.secretsManager}`;
  return r.database ? `${base}/${r.database}` : base;
}

/**
 * The child workflow id of a database's migration: the same for every fleet, so a second fleet cannot
 * start a migration of a database whose migration is running (Temporal refuses a running id).
 */
export function migrationWorkflowId(database: string): string {
  return `pgmig-db-${slug(database, 80) || 'database'}-${fnv1a(database)}`;
}

/** A migrationId (63 characters at most) for a database whose input has none. */
export function migrationIdOf(database: string): string {
  return `${slug(database, 54) || 'db'}-${fnv1a(database)}`;
}

/** Sorted (smallest first, stable) and cut into waves: the wave index of each, in the given order. */
export function assignWaves<T extends { sizeBytes?: number; wave: number }>(
  items: T[],
  waves: FleetWave[],
  order: FleetInput['order'],
): T[] {
  const sorted = order === 'as-given' ? [...items] : [...items].sort((a, b) => (a.sizeBytes ?? 0) - (b.sizeBytes ?? 0));
  let next = 0;
  waves.forEach((w, i) => {
    const size = w.size ?? sorted.length - next;
    for (const item of sorted.slice(next, next + size)) item.wave = i;
    next += size;
  });
  // Sizes that add up to fewer than the databases: the rest run in the last wave.
  for (const item of sorted.slice(next)) item.wave = waves.length - 1;
  return sorted;
}

/** Duplicate databases in a fleet: [index, index of the first] pairs. */
export function duplicateDatabases(databases: string[]): [number, number][] {
  const first = new Map<string, number>();
  const dups: [number, number][] = [];
  databases.forEach((d, i) => {
    const seen = first.get(d);
    if (seen === undefined) first.set(d, i);
    else dups.push([i, seen]);
  });
  return dups;
}

/** What a child's end says: its outcome, the result when it has one, and the reason. */
export interface ChildEnd {
  state: Exclude<FleetItemState, 'pending' | 'running' | 'skipped'>;
  result?: MigrationResult;
  reason?: string;
}

function isMigrationResult(v: unknown): v is MigrationResult {
  const r = v as MigrationResult | undefined;
  return !!r && typeof r === 'object' && typeof r.outcome === 'string' && Array.isArray(r.steps);
}

/** The message at the bottom of a failure's cause chain (an ActivityFailure says only "Activity task failed"). */
export function deepestMessage(err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined;
  while (e && e.cause && (e.cause as { message?: string }).message) e = e.cause;
  return e?.message ?? String(err);
}

/**
 * A child's end from its result, or from its failure: a failure whose cause chain carries a
 * MigrationResult as details[0] (MigrationFailed, or a rolled-back migration ended as a typed failure)
 * counts by that result's outcome; a cancellation is `cancelled`; anything else `failed` with its message.
 */
export function childEnd(outcome: { result: unknown } | { error: unknown }): ChildEnd {
  if ('result' in outcome) {
    const r = outcome.result;
    if (isMigrationResult(r)) return { state: r.outcome, result: r, ...(r.reason ? { reason: r.reason } : {}) };
    return { state: 'failed', reason: 'the child returned no migration result' };
  }
  let e = outcome.error as { cause?: unknown; details?: unknown[]; name?: string; message?: string } | undefined;
  let cancelled = false;
  while (e) {
    if (e.name === 'CancelledFailure') cancelled = true;
    const first = e.details?.[0];
    if (isMigrationResult(first)) {
      return { state: first.outcome, result: first, reason: first.reason ?? e.message ?? deepestMessage(outcome.error) };
    }
    e = e.cause as typeof e;
  }
  if (cancelled) return { state: 'cancelled', reason: 'cancelled' };
  return { state: 'failed', reason: deepestMessage(outcome.error) };
}

/** Whether an item counts against the failure budget: failed, rolled back, or over the downtime budget. */
export const countsAgainstBudget = (item: FleetItem) => item.state === 'failed' || item.state === 'rolled-back' || !!item.overBudget;

export function budgetUsed(items: FleetItem[]): number {
  return items.filter(countsAgainstBudget).length;
}

/** Records a child's end on its item. */
export function recordEnd(item: FleetItem, end: ChildEnd, endedAt: string, downtimeBudgetMs?: number): void {
  item.state = end.state;
  item.endedAt = endedAt;
  if (end.result) {
    item.method = end.result.method;
    if (end.result.freezeWindow.durationMs !== undefined) item.windowMs = end.result.freezeWindow.durationMs;
    item.rowsCopied = end.result.rowsCopied;
  }
  if (end.reason && end.state !== 'completed') item.reason = clipText(end.reason, MAX_ITEM_REASON_CHARS);
  if (end.state === 'completed' && downtimeBudgetMs !== undefined && item.windowMs !== undefined && item.windowMs > downtimeBudgetMs) {
    item.overBudget = true;
    item.reason = `write-freeze window ${item.windowMs} ms exceeded the downtime budget of ${downtimeBudgetMs} ms`;
  }
}

export function clipText(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}... (${text.length} characters)` : text;
}

export function pushEvent(state: FleetState, at: string, what: string): void {
  state.events.push({ at, what: clipText(what, MAX_ITEM_REASON_CHARS) });
  if (state.events.length > MAX_EVENTS) state.events.splice(0, state.events.length - MAX_EVENTS);
}

export function countByState(items: FleetItem[]): Record<FleetItemState, number> {
  const counts: Record<FleetItemState, number> = {
    pending: 0,
    running: 0,
    completed: 0,
    'rolled-back': 0,
    failed: 0,
    cancelled: 0,
    skipped: 0,
  };
  for (const i of items) counts[i.state]++;
  return counts;
}

/** Nearest-rank percentile of ascending `sorted` (undefined when empty). */
export function percentile(sorted: number[], p: number): number | undefined {
  if (!sorted.length) return undefined;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}
