/**
 * The AWS DMS method's calls to AWS (full-load-and-cdc), as plain functions over injected SDK
 * clients, so activities wrap them with heartbeats and cancellation, and tests run them against a
 * real HTTP server (moto). This module is their public API; the method's steps are built on it.
 *
 *  - resources.ts: clients, resource names and tags (idempotency rests on the names)
 *  - endpoints.ts, instance.ts, task.ts: create (or find again), start, stop
 *  - task-config.ts: table mappings and task settings
 *  - progress.ts, latency.ts: task statistics, and CDC latency from CloudWatch
 *  - teardown.ts: stop and delete everything
 *
 * Errors no retry can fix (bad input, access denied, invalid parameters, quota) are thrown as
 * non-retryable ApplicationFailures; everything else is retryable. No password appears in a
 * result, failure or progress report.
 */
export {
  ensureEndpoints,
  type DmsSecretsManagerConnection,
  type DmsSslMode,
  type EnsuredEndpoints,
  type EnsureEndpointsInput,
} from './endpoints';
export { dmsFailure } from './failure';
export { ensureReplicationInstance, type ReplicationInstanceSpec } from './instance';
export { cdcLatency, type CdcLatency, type DmsTaskRef } from './latency';
export { taskProgress, type DmsTableProgress, type DmsTaskProgress } from './progress';
export { dmsResourceNames, type DmsClients, type DmsMigration, type DmsResourceNames } from './resources';
export { findTaskArn, ensureTask, startTask, stopTask, type StartTaskResult, type TaskSpec } from './task';
export { buildTableMappings, buildTaskSettings, selectedTables, type DmsTable, type TaskSettingsOptions } from './task-config';
export { stopAndDelete, type DmsDeleted } from './teardown';
