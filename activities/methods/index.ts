/** Every method's activities: the freeze-copy of dump-restore and the replication steps of the others. */
import type { ActivityContext } from '../context';
import { createDumpRestoreActivities } from './dump-restore';
import { createReplicationActivities } from './replication-activities';

export type { ReplicationState } from './method';

export function createMethodActivities(context: ActivityContext) {
  return { ...createDumpRestoreActivities(context), ...createReplicationActivities(context) };
}
