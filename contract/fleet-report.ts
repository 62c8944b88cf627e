/**
 * A fleet's report, from its items: per database method, window and outcome; p50 / p95 / max of the
 * write-freeze windows of the completed migrations; completed migrations per hour (first start to last
 * end); failures with their reasons. Built by the workflow's report activity and by the CLI alike.
 *
 * Pure module.
 */
import { countByState, percentile, type FleetItem, type FleetItemState } from './fleet-state';

export interface FleetReportRow {
  database: string;
  workflowId: string;
  wave: string;
  sizeBytes?: number;
  method?: string;
  outcome: FleetItemState;
  windowMs?: number;
  overBudget?: boolean;
  durationMs?: number;
  startedAt?: string;
  endedAt?: string;
  reason?: string;
}

export interface FleetReport {
  version: 1;
  fleetId: string;
  outcome: string;
  reason?: string;
  generatedAt: string;
  counts: Record<FleetItemState, number>;
  total: number;
  /** Write-freeze windows of the completed migrations (ms). */
  windows: { count: number; p50?: number; p95?: number; max?: number; mean?: number };
  /** First child start to last child end. */
  elapsedMs?: number;
  /** Completed migrations per hour over `elapsedMs`. */
  migrationsPerHour?: number;
  rows: FleetReportRow[];
  failures: { database: string; workflowId: string; outcome: FleetItemState; reason: string }[];
}

export function buildFleetReport(args: {
  fleetId: string;
  outcome: string;
  reason?: string;
  items: FleetItem[];
  waveNames: string[];
  generatedAt: string;
}): FleetReport {
  const { items } = args;
  const rows: FleetReportRow[] = items.map((i) => {
    const start = i.startedAt ? Date.parse(i.startedAt) : undefined;
    const end = i.endedAt ? Date.parse(i.endedAt) : undefined;
    return {
      database: i.database,
      workflowId: i.workflowId,
      wave: args.waveNames[i.wave] ?? String(i.wave),
      ...(i.sizeBytes !== undefined ? { sizeBytes: i.sizeBytes } : {}),
      ...(i.method ? { method: i.method } : {}),
      outcome: i.state,
      ...(i.windowMs !== undefined ? { windowMs: i.windowMs } : {}),
      ...(i.overBudget ? { overBudget: true } : {}),
      ...(start !== undefined && end !== undefined ? { durationMs: end - start } : {}),
      ...(i.startedAt ? { startedAt: i.startedAt } : {}),
      ...(i.endedAt ? { endedAt: i.endedAt } : {}),
      ...(i.reason ? { reason: i.reason } : {}),
    };
  });
  const windows = items
    .filter((i) => i.state === 'completed' && i.windowMs !== undefined)
    .map((i) => i.windowMs!)
    .sort((a, b) => a - b);
  const starts = items.filter((i) => i.startedAt).map((i) => Date.parse(i.startedAt!));
  const ends = items.filter((i) => i.endedAt && i.startedAt).map((i) => Date.parse(i.endedAt!));
  const elapsedMs = starts.length && ends.length ? Math.max(...ends) - Math.min(...starts) : undefined;
  const counts = countByState(items);
  return {
    version: 1,
    fleetId: args.fleetId,
    outcome: args.outcome,
    ...(args.reason ? { reason: args.reason } : {}),
    generatedAt: args.generatedAt,
    counts,
    total: items.length,
    windows: {
      count: windows.length,
      ...(windows.length
        ? {
            p50: percentile(windows, 50),
            p95: percentile(windows, 95),
            max: windows[windows.length - 1],
            mean: Math.round(windows.reduce((a, b) => a + b, 0) / windows.length),
          }
        : {}),
    },
    ...(elapsedMs !== undefined ? { elapsedMs } : {}),
    ...(elapsedMs ? { migrationsPerHour: Math.round((counts.completed / (elapsedMs / 3_600_000)) * 10) / 10 } : {}),
    rows,
    failures: items
      .filter((i) => i.state === 'failed' || i.state === 'rolled-back' || i.overBudget)
      .map((i) => ({ database: i.database, workflowId: i.workflowId, outcome: i.state, reason: i.reason ?? '(no reason recorded)' })),
  };
}
