/**
 * How the DMS method's resources are named, tagged and looked up. Every resource is named from the
 * migration id (`pgmig-<id>-source`, `-target`, `-instance`, `-task`), so each `ensure*` is
 * idempotent: a retry after a crash finds what the previous attempt created by its identifier and
 * continues (waits for it) instead of creating a second one.
 */
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import type { DatabaseMigrationServiceClient, Tag } from '@aws-sdk/client-database-migration-service';
import { awsErrorName } from '../../aws/failure';
import { fitName } from '../../names';
import { redact } from '../../secrets';
import { dmsFailure, invalid } from './failure';

export interface DmsClients {
  dms: DatabaseMigrationServiceClient;
  cloudwatch: CloudWatchClient;
}

export interface DmsMigration {
  /** Names every resource: `pgmig-<migrationId>-source`, `-target`, `-instance`, `-task`. */
  migrationId: string;
}

export interface DmsResourceNames {
  source: string;
  target: string;
  instance: string;
  task: string;
}

/** DMS caps replication instance identifiers at 63 characters; `-instance` is the longest suffix. */
const MAX_BASE = 63 - '-instance'.length;

/**
 * Deterministic DMS identifiers for a migration. DMS identifiers must start with a letter, hold only
 * ASCII letters, digits and single hyphens, and not end with a hyphen; DMS stores instance
 * identifiers in lower case. A migration id that does not fit as is (too long, upper case, `--`)
 * gets a short hash of the original appended, so two migrations never share resources.
 */
export function dmsResourceNames(m: DmsMigration): DmsResourceNames {
  const id = m?.migrationId;
  if (typeof id !== 'string' || !/^[A-Za-z0-9-]+$/.test(id) || !/[A-Za-z0-9]/.test(id)) {
    throw invalid(`migrationId must be letters, digits and dashes (got ${JSON.stringify(redact(String(id)))})`);
  }
  const slug = id.toLowerCase().replace(/-+/g, '-').replace(/^-|-$/g, '');
  // A slug that lost information (case, doubled dashes) is hashed even when it fits; a hyphen the cut leaves at the end is dropped.
  const base = fitName(`pgmig-${slug}`, MAX_BASE, { id, separator: '-', hashLength: 8, always: slug !== id, trimSeparators: true });
  return { source: `${base}-source`, target: `${base}-target`, instance: `${base}-instance`, task: `${base}-task` };
}

/** Tags on every resource, so an operator can find (and bill) what a migration left behind. */
export function resourceTags(m: DmsMigration, component: string): Tag[] {
  return [
    { Key: 'pgmig:migration-id', Value: m.migrationId },
    { Key: 'pgmig:component', Value: component },
  ];
}

/**
 * A describe call filtered to one resource. "Not found" is an empty answer: AWS raises
 * ResourceNotFoundFault when a filter matches nothing, moto returns an empty list.
 */
export async function describeOne<T>(action: string, describe: () => Promise<T | undefined>): Promise<T | undefined> {
  try {
    return await describe();
  } catch (err) {
    if (awsErrorName(err) === 'ResourceNotFoundFault') return undefined;
    throw dmsFailure(action, err);
  }
}
