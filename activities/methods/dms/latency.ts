/**
 * CDC latency, the DMS method's lag gate: DMS publishes it to CloudWatch (AWS/DMS
 * CDCLatencySource / CDCLatencyTarget) about once a minute while CDC runs; it is not in any DMS
 * describe answer.
 */
import { GetMetricDataCommand, type MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import { ApplicationFailure } from '@temporalio/common';
import { callAws } from '../../aws/failure';
import { dmsFailure } from './failure';
import { dmsResourceNames, type DmsClients, type DmsMigration } from './resources';
import { findTask } from './task';

export interface DmsTaskRef {
  taskArn: string;
  replicationInstanceIdentifier: string;
  /** The task's own identifier, also tried as the metric dimension (see cdcLatency). */
  taskIdentifier?: string;
}

export interface CdcLatency {
  /** Seconds between a commit on the source and DMS reading it; undefined until DMS published a datapoint. */
  sourceSeconds: number | undefined;
  /** Seconds between a commit on the source and DMS applying it on the target. */
  targetSeconds: number | undefined;
  sourceAt?: string;
  targetAt?: string;
}

function arnResource(arn: string): string {
  return arn.slice(arn.lastIndexOf(':') + 1);
}

/**
 * The latest CDCLatencySource / CDCLatencyTarget datapoints (namespace AWS/DMS, dimensions
 * ReplicationInstanceIdentifier + ReplicationTaskIdentifier) of the last 5 minutes before `now`.
 * DMS's ReplicationTaskIdentifier dimension holds the task's resource id (the last part of its ARN),
 * not the name given at creation; both are queried, and the newest datapoint wins.
 */
export async function cdcLatency(clients: DmsClients, ref: DmsMigration | DmsTaskRef, now: Date = new Date()): Promise<CdcLatency> {
  let task: DmsTaskRef;
  if ('migrationId' in ref) {
    const names = dmsResourceNames(ref);
    const t = await findTask(clients, { id: names.task });
    if (!t?.ReplicationTaskArn) throw ApplicationFailure.nonRetryable(`replication task ${names.task} does not exist`, 'DmsTaskNotFound');
    task = { taskArn: t.ReplicationTaskArn, replicationInstanceIdentifier: names.instance, taskIdentifier: names.task };
  } else {
    task = ref;
  }
  const taskDims = [...new Set([arnResource(task.taskArn), ...(task.taskIdentifier ? [task.taskIdentifier] : [])])];
  const metrics = [
    ['src', 'CDCLatencySource'],
    ['tgt', 'CDCLatencyTarget'],
  ] as const;
  const queries: MetricDataQuery[] = [];
  taskDims.forEach((dim, i) => {
    for (const [key, metricName] of metrics) {
      queries.push({
        Id: `${key}${i}`,
        MetricStat: {
          Metric: {
            Namespace: 'AWS/DMS',
            MetricName: metricName,
            Dimensions: [
              { Name: 'ReplicationInstanceIdentifier', Value: task.replicationInstanceIdentifier },
              { Name: 'ReplicationTaskIdentifier', Value: dim },
            ],
          },
          Period: 60,
          Stat: 'Maximum',
        },
        ReturnData: true,
      });
    }
  });
  const out = await callAws(
    `GetMetricData AWS/DMS CDCLatency* for ${task.taskArn}`,
    () =>
      clients.cloudwatch.send(
        new GetMetricDataCommand({
          StartTime: new Date(now.getTime() - 5 * 60_000),
          EndTime: now,
          ScanBy: 'TimestampDescending',
          MetricDataQueries: queries,
        }),
      ),
    dmsFailure,
  );
  const latest = (key: string): { value: number; at: Date } | undefined => {
    let best: { value: number; at: Date } | undefined;
    for (const r of out.MetricDataResults ?? []) {
      if (!r.Id?.startsWith(key)) continue;
      (r.Timestamps ?? []).forEach((at, i) => {
        const value = r.Values?.[i];
        if (value !== undefined && (!best || at.getTime() > best.at.getTime())) best = { value, at };
      });
    }
    return best;
  };
  const src = latest('src');
  const tgt = latest('tgt');
  return {
    sourceSeconds: src?.value,
    targetSeconds: tgt?.value,
    ...(src ? { sourceAt: src.at.toISOString() } : {}),
    ...(tgt ? { targetAt: tgt.at.toISOString() } : {}),
  };
}
