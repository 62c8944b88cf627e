/** A database inventory as preflight would report it, for the plan's pure tests. */
import type { DatabaseInventory, TableInventory } from '../../contract/plan';

export function inventory(overrides: Partial<DatabaseInventory> = {}): DatabaseInventory {
  return {
    serverVersion: '15.4',
    serverVersionNum: 150004,
    database: 'db',
    currentUser: 'app',
    isSuperuser: false,
    ownsDatabase: true,
    encoding: 'UTF8',
    sizeBytes: 100 * 1024 * 1024,
    walLevel: 'logical',
    maxConnections: 100,
    connectionsInUse: 5,
    tables: [],
    sequences: [],
    extensions: ['plpgsql'],
    availableExtensions: ['plpgsql', 'citext'],
    largeObjects: 0,
    preparedTransactions: 0,
    schemas: ['public'],
    userObjects: 0,
    readOnlySettings: [],
    canReplicate: true,
    canSubscribe: true,
    maxReplicationSlots: 10,
    replicationSlotsUsed: 0,
    maxWalSenders: 10,
    walSendersUsed: 0,
    walBytesPerSecond: 0,
    identityColumns: 0,
    generatedColumns: 0,
    ...overrides,
  };
}

/** A table as preflight would report it (`rows` estimated rows of 100 bytes each). */
export const tableInventory = (schema: string, name: string, rows: number, extra: Partial<TableInventory> = {}): TableInventory => ({
  schema,
  name,
  estimatedRows: rows,
  bytes: rows * 100,
  hasPrimaryKey: true,
  unlogged: false,
  partitioned: false,
  isPartition: false,
  replicaIdentity: 'd',
  owner: 'app',
  ...extra,
});
