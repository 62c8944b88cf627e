/**
 * Deleting everything the DMS method created, for compensation and after go-live. Order matters:
 * endpoints and the instance cannot be deleted while a task uses them.
 */
import {
  DeleteEndpointCommand,
  DeleteReplicationInstanceCommand,
  DeleteReplicationTaskCommand,
} from '@aws-sdk/client-database-migration-service';
import { awsErrorName } from '../../aws/failure';
import { pollUntil, type PollOptions } from '../../aws/poll';
import { findEndpoint } from './endpoints';
import { dmsFailure } from './failure';
import { findInstance, INSTANCE_WAIT } from './instance';
import { dmsResourceNames, type DmsClients, type DmsMigration } from './resources';
import { findTask, stopTask } from './task';

export interface DmsDeleted {
  /** ARNs this call deleted; absent = it was already gone (or being deleted). */
  task?: string;
  sourceEndpoint?: string;
  targetEndpoint?: string;
  replicationInstance?: string;
  /** The task was running and this call stopped it. */
  stoppedTask: boolean;
}

/**
 * Stops the task if it runs (waiting until stopped), deletes it (waiting until it is gone: endpoints
 * and instance cannot be deleted while a task uses them), then the endpoints and the replication
 * instance. Idempotent: what is already gone is skipped; everything gone is success. The instance is
 * left `deleting` (billing stops; AWS finishes within minutes), not waited for.
 */
export async function stopAndDelete(clients: DmsClients, m: DmsMigration, opts: PollOptions = {}): Promise<DmsDeleted> {
  const names = dmsResourceNames(m);
  const deleted: DmsDeleted = { stoppedTask: false };

  const task = await findTask(clients, { id: names.task });
  if (task?.ReplicationTaskArn && task.Status !== 'deleting') {
    const arn = task.ReplicationTaskArn;
    deleted.stoppedTask = (await stopTask(clients, arn, opts)).stopped;
    await pollUntil(
      `replication task ${names.task} (deleting)`,
      async () => {
        const t = await findTask(clients, { id: names.task });
        if (!t) return { done: true, value: undefined };
        if (t.Status === 'deleting') return { done: false, status: 'deleting' };
        try {
          await clients.dms.send(new DeleteReplicationTaskCommand({ ReplicationTaskArn: arn }));
          deleted.task = arn;
        } catch (err) {
          if (awsErrorName(err) === 'ResourceNotFoundFault') return { done: true, value: undefined };
          if (awsErrorName(err) !== 'InvalidResourceStateFault') throw dmsFailure(`DeleteReplicationTask ${arn}`, err);
        }
        return { done: false, status: t.Status ?? 'unknown' };
      },
      opts,
    );
  } else if (task) {
    await pollUntil(
      `replication task ${names.task} (deleting)`,
      async () => {
        const t = await findTask(clients, { id: names.task });
        return t ? { done: false, status: t.Status ?? 'deleting' } : { done: true, value: undefined };
      },
      opts,
    );
  }

  for (const [key, id] of [
    ['sourceEndpoint', names.source],
    ['targetEndpoint', names.target],
  ] as const) {
    const e = await findEndpoint(clients, id);
    if (!e?.EndpointArn || e.Status === 'deleting') continue;
    try {
      await clients.dms.send(new DeleteEndpointCommand({ EndpointArn: e.EndpointArn }));
      deleted[key] = e.EndpointArn;
    } catch (err) {
      if (awsErrorName(err) !== 'ResourceNotFoundFault') throw dmsFailure(`DeleteEndpoint ${id}`, err);
    }
  }

  await pollUntil(
    `replication instance ${names.instance} (deleting)`,
    async () => {
      const i = await findInstance(clients, names.instance);
      if (!i?.ReplicationInstanceArn || i.ReplicationInstanceStatus === 'deleting') return { done: true, value: undefined };
      try {
        await clients.dms.send(new DeleteReplicationInstanceCommand({ ReplicationInstanceArn: i.ReplicationInstanceArn }));
        deleted.replicationInstance = i.ReplicationInstanceArn;
        return { done: true, value: undefined };
      } catch (err) {
        if (awsErrorName(err) === 'ResourceNotFoundFault') return { done: true, value: undefined };
        // Still creating, or another task still uses it: try again next round.
        if (awsErrorName(err) === 'InvalidResourceStateFault') return { done: false, status: i.ReplicationInstanceStatus ?? 'unknown' };
        throw dmsFailure(`DeleteReplicationInstance ${names.instance}`, err);
      }
    },
    opts,
    INSTANCE_WAIT,
  );

  return deleted;
}
