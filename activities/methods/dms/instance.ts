/**
 * The replication instance: the EC2 machine DMS runs the task on. Creating one takes 5-15 minutes
 * on AWS, so its waits poll slowly and long, and report progress for the activity to heartbeat.
 */
import {
  CreateReplicationInstanceCommand,
  DescribeReplicationInstancesCommand,
  type ReplicationInstance,
} from '@aws-sdk/client-database-migration-service';
import { ApplicationFailure } from '@temporalio/common';
import { awsErrorName } from '../../aws/failure';
import { pollUntil, type PollOptions } from '../../aws/poll';
import { dmsFailure, invalid } from './failure';
import { describeOne, dmsResourceNames, resourceTags, type DmsClients, type DmsMigration } from './resources';

/** Waits on an instance being created or deleted: both take minutes on AWS. */
export const INSTANCE_WAIT = { intervalMs: 15_000, timeoutMs: 40 * 60_000 };

/** The replication instance of this identifier, or undefined when there is none. */
export async function findInstance(clients: DmsClients, identifier: string): Promise<ReplicationInstance | undefined> {
  return describeOne(`DescribeReplicationInstances ${identifier}`, async () => {
    const out = await clients.dms.send(
      new DescribeReplicationInstancesCommand({ Filters: [{ Name: 'replication-instance-id', Values: [identifier] }] }),
    );
    return out.ReplicationInstances?.find((i) => i.ReplicationInstanceIdentifier === identifier);
  });
}

export interface ReplicationInstanceSpec extends PollOptions {
  instanceClass?: string;
  /** GB. */
  allocatedStorage?: number;
  multiAz?: boolean;
  /** Needed (or a NAT gateway) to reach Heroku Postgres over the internet. AWS's default: true. */
  publiclyAccessible?: boolean;
  replicationSubnetGroupIdentifier?: string;
  vpcSecurityGroupIds?: string[];
  engineVersion?: string;
}

/** Statuses a replication instance does not leave by itself. */
const INSTANCE_BROKEN = new Set([
  'failed',
  'storage-full',
  'incompatible-credentials',
  'incompatible-network',
  'inaccessible-encryption-credentials',
]);

/**
 * Creates the replication instance (or finds the one a previous attempt created) and waits until it
 * is `available`: 5-15 minutes on AWS, so pass `onProgress` to heartbeat.
 */
export async function ensureReplicationInstance(clients: DmsClients, m: DmsMigration, spec: ReplicationInstanceSpec = {}): Promise<string> {
  const id = dmsResourceNames(m).instance;
  const instanceClass = spec.instanceClass ?? 'dms.t3.medium';
  const allocatedStorage = spec.allocatedStorage ?? 50;
  if (!/^dms\.[a-z0-9]+\.[a-z0-9]+$/.test(instanceClass))
    throw invalid(`instanceClass '${instanceClass}' is not a DMS instance class (e.g. dms.t3.medium)`);
  if (!Number.isInteger(allocatedStorage) || allocatedStorage < 5 || allocatedStorage > 6144) {
    throw invalid(`allocatedStorage must be a whole number of GB between 5 and 6144 (got ${allocatedStorage})`);
  }
  const resource = `replication instance ${id}`;
  let existing = await findInstance(clients, id);
  if (existing?.ReplicationInstanceStatus === 'deleting') {
    await pollUntil(
      `${resource} (being deleted)`,
      async () => {
        const i = await findInstance(clients, id);
        return i ? { done: false, status: i.ReplicationInstanceStatus ?? 'deleting' } : { done: true, value: undefined };
      },
      spec,
      INSTANCE_WAIT,
    );
    existing = undefined;
  }
  if (!existing?.ReplicationInstanceArn) {
    try {
      await clients.dms.send(
        new CreateReplicationInstanceCommand({
          ReplicationInstanceIdentifier: id,
          ReplicationInstanceClass: instanceClass,
          AllocatedStorage: allocatedStorage,
          MultiAZ: spec.multiAz ?? false,
          ...(spec.publiclyAccessible !== undefined ? { PubliclyAccessible: spec.publiclyAccessible } : {}),
          ...(spec.replicationSubnetGroupIdentifier ? { ReplicationSubnetGroupIdentifier: spec.replicationSubnetGroupIdentifier } : {}),
          ...(spec.vpcSecurityGroupIds?.length ? { VpcSecurityGroupIds: spec.vpcSecurityGroupIds } : {}),
          ...(spec.engineVersion ? { EngineVersion: spec.engineVersion } : {}),
          Tags: resourceTags(m, 'instance'),
        }),
      );
    } catch (err) {
      // ResourceAlreadyExistsFault: a concurrent attempt created it; the wait below finds it.
      if (awsErrorName(err) !== 'ResourceAlreadyExistsFault')
        throw dmsFailure(`CreateReplicationInstance ${id} (${instanceClass}, ${allocatedStorage} GB)`, err);
    }
  }
  return pollUntil(
    resource,
    async () => {
      const i = await findInstance(clients, id);
      if (!i?.ReplicationInstanceArn) return { done: false, status: 'not listed yet' };
      const status = i.ReplicationInstanceStatus ?? 'unknown';
      if (status === 'available') return { done: true, value: i.ReplicationInstanceArn };
      if (INSTANCE_BROKEN.has(status)) {
        throw ApplicationFailure.nonRetryable(
          `${resource} is '${status}'; delete it (stopAndDelete) and check its subnet group, security groups and storage`,
          'DmsInstanceFailed',
        );
      }
      return { done: false, status };
    },
    spec,
    INSTANCE_WAIT,
  );
}
