/**
 * What a task reports about itself, one sample per call (the caller polls): status, full-load
 * statistics, and per-table counters and validation state.
 */
import { DescribeTableStatisticsCommand, type TableStatistics } from '@aws-sdk/client-database-migration-service';
import { ApplicationFailure } from '@temporalio/common';
import { redact } from '../../secrets';
import { dmsFailure } from './failure';
import type { DmsClients } from './resources';
import { findTask } from './task';

export interface DmsTableProgress {
  schema: string;
  name: string;
  /** DMS's TableState, e.g. "Before load", "Full load", "Table completed", "Table error". */
  state?: string;
  inserts: number;
  updates: number;
  deletes: number;
  ddls: number;
  fullLoadRows: number;
  fullLoadErrorRows: number;
  /** e.g. "Not enabled", "Pending records", "Validated", "Mismatched records", "No primary key". */
  validationState?: string;
  validationPendingRecords: number;
  validationFailedRecords: number;
  validationSuspendedRecords: number;
}

export interface DmsTaskProgress {
  status: string;
  fullLoadProgressPercent: number;
  tablesLoaded: number;
  tablesLoading: number;
  tablesQueued: number;
  tablesErrored: number;
  fullLoadComplete: boolean;
  elapsedMs?: number;
  stopReason?: string;
  lastFailureMessage?: string;
  tables: DmsTableProgress[];
  /** Why `tables` is empty when DescribeTableStatistics could not be read (e.g. moto does not implement it). */
  tablesUnavailable?: string;
}

async function tableStatistics(clients: DmsClients, taskArn: string): Promise<TableStatistics[]> {
  const out: TableStatistics[] = [];
  let marker: string | undefined;
  do {
    const page = await clients.dms.send(
      new DescribeTableStatisticsCommand({ ReplicationTaskArn: taskArn, MaxRecords: 500, Marker: marker }),
    );
    out.push(...(page.TableStatistics ?? []));
    marker = page.Marker;
  } while (marker);
  return out;
}

/** One progress sample: task status and statistics, and per-table counters and validation state. */
export async function taskProgress(clients: DmsClients, taskArn: string): Promise<DmsTaskProgress> {
  const task = await findTask(clients, { arn: taskArn });
  if (!task) throw ApplicationFailure.nonRetryable(`replication task ${taskArn} does not exist`, 'DmsTaskNotFound');
  const stats = task.ReplicationTaskStats ?? {};
  let tables: DmsTableProgress[] = [];
  let tablesUnavailable: string | undefined;
  try {
    tables = (await tableStatistics(clients, taskArn)).map((t) => ({
      schema: t.SchemaName ?? '',
      name: t.TableName ?? '',
      state: t.TableState,
      inserts: t.Inserts ?? 0,
      updates: t.Updates ?? 0,
      deletes: t.Deletes ?? 0,
      ddls: t.Ddls ?? 0,
      fullLoadRows: t.FullLoadRows ?? 0,
      fullLoadErrorRows: t.FullLoadErrorRows ?? 0,
      validationState: t.ValidationState,
      validationPendingRecords: t.ValidationPendingRecords ?? 0,
      validationFailedRecords: t.ValidationFailedRecords ?? 0,
      validationSuspendedRecords: t.ValidationSuspendedRecords ?? 0,
    }));
  } catch (err) {
    // A task that has never run has no statistics yet (InvalidResourceStateFault on AWS); a failure
    // here must not hide the task-level progress, so it is reported beside it.
    tablesUnavailable = dmsFailure(`DescribeTableStatistics ${taskArn}`, err).message;
  }
  const status = task.Status ?? 'unknown';
  const percent = stats.FullLoadProgressPercent ?? 0;
  const loading = stats.TablesLoading ?? 0;
  const queued = stats.TablesQueued ?? 0;
  const errored = stats.TablesErrored ?? 0;
  const fullLoadComplete =
    (status === 'running' || status === 'stopped') &&
    task.ReplicationTaskStartDate != null &&
    percent >= 100 &&
    loading === 0 &&
    queued === 0 &&
    errored === 0 &&
    !tables.some((t) => t.state === 'Table error' || t.state === 'Before load' || t.state === 'Full load');
  return {
    status,
    fullLoadProgressPercent: percent,
    tablesLoaded: stats.TablesLoaded ?? 0,
    tablesLoading: loading,
    tablesQueued: queued,
    tablesErrored: errored,
    fullLoadComplete,
    ...(stats.ElapsedTimeMillis !== undefined ? { elapsedMs: stats.ElapsedTimeMillis } : {}),
    ...(task.StopReason ? { stopReason: redact(task.StopReason) } : {}),
    ...(task.LastFailureMessage ? { lastFailureMessage: redact(task.LastFailureMessage) } : {}),
    tables,
    ...(tablesUnavailable ? { tablesUnavailable } : {}),
  };
}
