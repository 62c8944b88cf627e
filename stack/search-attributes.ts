/**
 * Custom search attributes of the migration workflows, name -> Temporal type.
 *
 * The local stack registers them on the dev server (`temporal server start-dev
 * --search-attribute NAME=TYPE`, plus `temporal operator search-attribute create` for
 * an existing database file, where start-dev silently skips new ones); docker-compose.yml
 * repeats them. Keep this file free of imports so workflow code can use it too.
 */
export const SEARCH_ATTRIBUTES = {
  MigrationPhase: 'Keyword',
  MigrationMethod: 'Keyword',
  AwaitingApproval: 'Bool',
  AwaitingGate: 'Keyword',
  MigrationOutcome: 'Keyword',
  RehearsalOutcome: 'Keyword',
  /** True while the source or the target refuses writes (the write-freeze window). */
  WritesFrozen: 'Bool',
  /** Who may decide the gate awaited now (absent: anyone). */
  GateApprovers: 'KeywordList',
  /** The fleet (migrateFleet) a migration belongs to. */
  FleetId: 'Keyword',
} as const;

export type SearchAttributeName = keyof typeof SEARCH_ATTRIBUTES;
export type SearchAttributeType = (typeof SEARCH_ATTRIBUTES)[SearchAttributeName];
