/**
 * The query and search attributes of `rehearseMigration`, shared by the workflow, the CLI and tests.
 * Its `status` query answers a RehearsalStatus (a migration's answers a MigrationStatus).
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery } from '@temporalio/workflow';
import type { RehearsalOutcome, RehearsalReport, SnapshotSummary, TeardownRecord, Trend } from '../contract/rehearsal-report';

/** Registered by the stack (stack/search-attributes.ts): running, passed, over-budget, failed, cancelled. */
export const RehearsalOutcomeKey = defineSearchAttributeKey('RehearsalOutcome', SearchAttributeType.KEYWORD);
/** Set by Temporal on workflows a Schedule starts. */
export const ScheduledStartTimeKey = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);
export const ScheduledByIdKey = defineSearchAttributeKey('TemporalScheduledById', SearchAttributeType.KEYWORD);

export type RehearsalPhase = 'snapshot' | 'migrating' | 'tearing-down' | 'reporting' | 'done';

export interface ReportFiles {
  dir: string;
  json: string;
  markdown: string;
  chart: string;
}

export interface RehearsalStatus {
  rehearsalId: string;
  migrationId: string;
  phase: RehearsalPhase;
  startedAt: string;
  scheduledAt?: string;
  scheduleId?: string;
  childWorkflowId?: string;
  snapshot?: SnapshotSummary;
  teardown: TeardownRecord[];
  outcome: RehearsalOutcome;
  reasons?: string[];
  report?: ReportFiles;
  reportError?: string;
}

export const rehearsalStatusQuery = defineQuery<RehearsalStatus>('status');

/** What `rehearseMigration` returns (and carries as details when it fails). */
export interface RehearsalSummary {
  rehearsalId: string;
  migrationId: string;
  outcome: Exclude<RehearsalOutcome, 'running'>;
  verdict: 'pass' | 'fail';
  reasons: string[];
  totalMs: number;
  rehearsedWindowMs?: number;
  publishableDowntimeMs?: number;
  budget?: string;
  withinBudget?: boolean;
  trend?: Trend;
  report?: ReportFiles;
  reportError?: string;
  scheduledAt?: string;
}

export function summaryOf(report: RehearsalReport, files?: ReportFiles, reportError?: string): RehearsalSummary {
  return {
    rehearsalId: report.rehearsalId,
    migrationId: report.migrationId,
    outcome: report.outcome,
    verdict: report.verdict,
    reasons: report.reasons,
    totalMs: report.totalMs,
    ...(report.freezeWindow.rehearsedWindowMs !== undefined ? { rehearsedWindowMs: report.freezeWindow.rehearsedWindowMs } : {}),
    ...(report.publishableDowntimeMs !== undefined ? { publishableDowntimeMs: report.publishableDowntimeMs } : {}),
    ...(report.budget.value ? { budget: report.budget.value } : {}),
    ...(report.budget.withinBudget !== undefined ? { withinBudget: report.budget.withinBudget } : {}),
    ...(report.trend ? { trend: report.trend } : {}),
    ...(files ? { report: files } : {}),
    ...(reportError ? { reportError } : {}),
    ...(report.scheduledAt ? { scheduledAt: report.scheduledAt } : {}),
  };
}
