/**
 * The full-load-and-cdc replication task: created (or found again) from the endpoints and the
 * instance, started, stopped. Its progress and its CDC latency are read in progress.ts and
 * latency.ts.
 */
import {
  CreateReplicationTaskCommand,
  DescribeReplicationTasksCommand,
  StartReplicationTaskCommand,
  StopReplicationTaskCommand,
  type ReplicationTask,
} from '@aws-sdk/client-database-migration-service';
import { ApplicationFailure } from '@temporalio/common';
import { awsErrorName } from '../../aws/failure';
import { pollUntil, type PollOptions } from '../../aws/poll';
import { redact } from '../../secrets';
import { dmsFailure, invalid } from './failure';
import { describeOne, dmsResourceNames, resourceTags, type DmsClients, type DmsMigration } from './resources';
import { buildTableMappings, buildTaskSettings, selectedTables, type DmsTable, type TaskSettingsOptions } from './task-config';

/** The task of this identifier (the name given at creation) or ARN, or undefined when there is none. */
export async function findTask(clients: DmsClients, filter: { id: string } | { arn: string }): Promise<ReplicationTask | undefined> {
  const [name, value] = 'id' in filter ? ['replication-task-id', filter.id] : ['replication-task-arn', filter.arn];
  return describeOne(`DescribeReplicationTasks ${value}`, async () => {
    const out = await clients.dms.send(new DescribeReplicationTasksCommand({ Filters: [{ Name: name, Values: [value] }] }));
    return out.ReplicationTasks?.find((t) =>
      'id' in filter ? t.ReplicationTaskIdentifier === filter.id : t.ReplicationTaskArn === filter.arn,
    );
  });
}

/** The ARN of this migration's task (the workflow passes the migration id, not ARNs). */
export async function findTaskArn(clients: DmsClients, m: DmsMigration): Promise<string> {
  const task = await findTask(clients, { id: dmsResourceNames(m).task });
  if (!task?.ReplicationTaskArn) {
    throw ApplicationFailure.nonRetryable(
      `DMS task ${dmsResourceNames(m).task} does not exist; was replication started?`,
      'DmsTaskMissing',
    );
  }
  return task.ReplicationTaskArn;
}

export interface TaskSpec extends PollOptions, TaskSettingsOptions {
  sourceEndpointArn: string;
  targetEndpointArn: string;
  replicationInstanceArn: string;
  tables: DmsTable[];
  /** Wait until the task is `ready` (default). moto never moves a task out of `creating`: see the tests. */
  waitForReady?: boolean;
}

/** A task in one of these has been created and can be started, is running, or has run. */
const TASK_SETTLED = new Set(['ready', 'running', 'starting', 'stopped', 'stopping']);

function taskFailure(resource: string, task: ReplicationTask): ApplicationFailure {
  const reason = task.LastFailureMessage ? `: ${redact(task.LastFailureMessage)}` : '';
  return ApplicationFailure.nonRetryable(`${resource} failed${reason}`, 'DmsTaskFailed');
}

/** Creates the full-load-and-cdc task (or finds the one a previous attempt created) and waits until it is `ready`. */
export async function ensureTask(clients: DmsClients, m: DmsMigration, spec: TaskSpec): Promise<string> {
  const id = dmsResourceNames(m).task;
  for (const k of ['sourceEndpointArn', 'targetEndpointArn', 'replicationInstanceArn'] as const) {
    if (typeof spec?.[k] !== 'string' || !spec[k].startsWith('arn:')) throw invalid(`${k} must be an ARN`);
  }
  const tableMappings = buildTableMappings(spec.tables);
  const resource = `replication task ${id}`;
  let existing = await findTask(clients, { id });
  if (existing?.Status === 'deleting') {
    await pollUntil(
      `${resource} (being deleted)`,
      async () => {
        const t = await findTask(clients, { id });
        return t ? { done: false, status: t.Status ?? 'deleting' } : { done: true, value: undefined };
      },
      spec,
    );
    existing = undefined;
  }
  if (existing) {
    const wrong = (['sourceEndpointArn', 'targetEndpointArn', 'replicationInstanceArn'] as const).find(
      (k) =>
        existing[(k.charAt(0).toUpperCase() + k.slice(1)) as 'SourceEndpointArn' | 'TargetEndpointArn' | 'ReplicationInstanceArn'] !==
        spec[k],
    );
    const sameTables =
      existing.TableMappings === undefined ||
      JSON.stringify(
        selectedTables(existing.TableMappings)
          .map((t) => [t.schema, t.name])
          .sort(),
      ) ===
        JSON.stringify(
          selectedTables(tableMappings)
            .map((t) => [t.schema, t.name])
            .sort(),
        );
    if (wrong || !sameTables) {
      throw ApplicationFailure.nonRetryable(
        `${resource} already exists with a different ${wrong ?? 'table selection'}; delete it (stopAndDelete) or use another migrationId`,
        'DmsTaskConflict',
      );
    }
  } else {
    try {
      await clients.dms.send(
        new CreateReplicationTaskCommand({
          ReplicationTaskIdentifier: id,
          SourceEndpointArn: spec.sourceEndpointArn,
          TargetEndpointArn: spec.targetEndpointArn,
          ReplicationInstanceArn: spec.replicationInstanceArn,
          MigrationType: 'full-load-and-cdc',
          TableMappings: tableMappings,
          ReplicationTaskSettings: buildTaskSettings(spec),
          Tags: resourceTags(m, 'task'),
        }),
      );
    } catch (err) {
      if (awsErrorName(err) !== 'ResourceAlreadyExistsFault') throw dmsFailure(`CreateReplicationTask ${id}`, err);
    }
  }
  return pollUntil(
    resource,
    async () => {
      const t = await findTask(clients, { id });
      if (!t?.ReplicationTaskArn) return { done: false, status: 'not listed yet' };
      const status = t.Status ?? 'unknown';
      if (status === 'failed') throw taskFailure(resource, t);
      if (spec.waitForReady === false || TASK_SETTLED.has(status)) return { done: true, value: t.ReplicationTaskArn };
      return { done: false, status };
    },
    spec,
  );
}

export interface StartTaskResult {
  status: string;
  /** The StartReplicationTaskType used, or undefined when the task was already running. */
  startType?: 'start-replication' | 'resume-processing';
  alreadyRunning: boolean;
}

const TASK_RUNNING = new Set(['running', 'starting']);

/**
 * Starts the task (`start-replication` the first time, `resume-processing` after a stop) and waits
 * until it is `running`. Idempotent: a running or starting task is left alone. Whether the task can
 * start is left to DMS: a task that is not `ready` yet is refused with InvalidResourceStateFault,
 * which becomes a retryable failure.
 */
export async function startTask(
  clients: DmsClients,
  taskArn: string,
  opts: PollOptions & { waitForRunning?: boolean } = {},
): Promise<StartTaskResult> {
  const resource = `replication task ${taskArn}`;
  const describe = async (): Promise<ReplicationTask> => {
    const t = await findTask(clients, { arn: taskArn });
    if (!t) throw ApplicationFailure.nonRetryable(`${resource} does not exist`, 'DmsTaskNotFound');
    return t;
  };
  const waitRunning = async (): Promise<string> =>
    opts.waitForRunning === false
      ? ((await describe()).Status ?? 'unknown')
      : pollUntil(
          resource,
          async () => {
            const t = await describe();
            const status = t.Status ?? 'unknown';
            if (status === 'running') return { done: true, value: status };
            if (status === 'failed') throw taskFailure(resource, t);
            if (status === 'stopped') {
              throw ApplicationFailure.retryable(
                `${resource} stopped right after starting${t.StopReason ? ` (${redact(t.StopReason)})` : ''}`,
                'DmsTaskStopped',
              );
            }
            return { done: false, status };
          },
          opts,
        );

  let task = await describe();
  if (TASK_RUNNING.has(task.Status ?? '')) return { status: await waitRunning(), alreadyRunning: true };
  if (task.Status === 'stopping') {
    task = await pollUntil(
      `${resource} (stopping)`,
      async () => {
        const t = await describe();
        return t.Status === 'stopping' ? { done: false, status: 'stopping' } : { done: true, value: t };
      },
      opts,
    );
  }
  const startType = task.ReplicationTaskStartDate ? 'resume-processing' : 'start-replication';
  try {
    await clients.dms.send(new StartReplicationTaskCommand({ ReplicationTaskArn: taskArn, StartReplicationTaskType: startType }));
  } catch (err) {
    if (awsErrorName(err) !== 'InvalidResourceStateFault') throw dmsFailure(`StartReplicationTask ${taskArn}`, err);
    const now = await describe();
    if (TASK_RUNNING.has(now.Status ?? '')) return { status: await waitRunning(), alreadyRunning: true };
    throw ApplicationFailure.retryable(
      `${resource} is '${now.Status}' and cannot start yet: ${redact(String((err as Error).message))}`,
      'DmsTaskNotStartable',
    );
  }
  return { status: await waitRunning(), startType, alreadyRunning: false };
}

/** Stops a running task and waits until it has stopped. A task that is not running is left as it is. */
export async function stopTask(
  clients: DmsClients,
  taskArn: string,
  opts: PollOptions = {},
): Promise<{ status: string; stopped: boolean }> {
  let stopped = false;
  const status = await pollUntil(
    `replication task ${taskArn} (stopping)`,
    async () => {
      const t = await findTask(clients, { arn: taskArn });
      if (!t) return { done: true, value: 'gone' };
      const s = t.Status ?? 'unknown';
      if (s === 'running') {
        try {
          await clients.dms.send(new StopReplicationTaskCommand({ ReplicationTaskArn: taskArn }));
          stopped = true;
        } catch (err) {
          // Not stoppable in this state (e.g. still starting) or already stopping: look again next round.
          if (awsErrorName(err) !== 'InvalidResourceStateFault' && awsErrorName(err) !== 'ResourceNotFoundFault')
            throw dmsFailure(`StopReplicationTask ${taskArn}`, err);
        }
        return { done: false, status: 'stop requested' };
      }
      if (s === 'starting' || s === 'stopping') return { done: false, status: s };
      return { done: true, value: s };
    },
    opts,
  );
  return { status, stopped };
}
