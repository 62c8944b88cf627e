/**
 * The activities of `migrateDatabase`, built from injected clients (`createActivities(deps)`), one
 * factory per concern, so secrets and connections stay on the worker. Every activity takes secret
 * *references*, resolves them inside, and lets no resolved value escape in a result, heartbeat or error.
 */
import { createAppControlActivities } from './app-control';
import { createConfigActivities } from './config-sinks/activities';
import { createActivityContext, type ActivityDeps } from './context';
import { createDatabaseActivities } from './database/activities';
import { createFleetActivities } from './fleet';
import { createLeaseActivities } from './database/lease';
import { createRoleActivities } from './database/role-activities';
import { createHoldActivities } from './hold';
import { createMethodActivities } from './methods';
import { redactingActivities } from './secrets';
import { createTrafficActivities } from './traffic';

export type { ActivityDeps, CdcArgs } from './context';
export type { FreezeArgs, UnfreezeArgs } from './database/activities';
export type { LeaseArgs } from './database/lease';
export type { ReverseArgs } from './hold';
export type { ReplicationState } from './methods';

export function createActivities(deps: ActivityDeps) {
  const context = createActivityContext(deps);
  return redactingActivities({
    ...createDatabaseActivities(context),
    ...createLeaseActivities(context),
    ...createRoleActivities(context),
    ...createMethodActivities(context),
    ...createConfigActivities(context),
    ...createHoldActivities(context),
    ...createAppControlActivities(deps),
    ...createTrafficActivities(deps),
    ...createFleetActivities(deps),
  });
}

export type MigrationActivities = ReturnType<typeof createActivities>;
