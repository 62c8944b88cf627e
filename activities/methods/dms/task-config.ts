/**
 * The two JSON documents a replication task is created with: the table mappings (which tables it
 * copies) and the task settings (how). Pure functions, so they can be checked without AWS.
 */
import { invalid } from './failure';

export interface DmsTable {
  schema: string;
  name: string;
}

/** One selection rule per table, names exactly as in the catalog (DMS matches them case-sensitively). */
export function buildTableMappings(tables: DmsTable[]): string {
  if (!Array.isArray(tables) || tables.length === 0) throw invalid('tables: at least one table is needed');
  const seen = new Set<string>();
  const rules: object[] = [];
  for (const t of tables) {
    if (!t || typeof t.schema !== 'string' || typeof t.name !== 'string' || !t.schema || !t.name) {
      throw invalid(`tables: each entry needs a non-empty schema and name (got ${JSON.stringify(t)})`);
    }
    // '%' is DMS's wildcard in object locators: a literal one would select other tables too.
    if (t.schema.includes('%') || t.name.includes('%'))
      throw invalid(`tables: ${JSON.stringify(`${t.schema}.${t.name}`)} contains '%', which DMS reads as a wildcard`);
    const key = JSON.stringify([t.schema, t.name]);
    if (seen.has(key)) continue;
    seen.add(key);
    const n = rules.length + 1;
    rules.push({
      'rule-type': 'selection',
      'rule-id': String(n),
      'rule-name': `include-${n}`,
      'object-locator': { 'schema-name': t.schema, 'table-name': t.name },
      'rule-action': 'include',
      filters: [],
    });
  }
  return JSON.stringify({ rules });
}

/** The (schema, table) pairs a table-mapping document includes, in a comparable form. */
export function selectedTables(tableMappings: string): DmsTable[] {
  const doc = JSON.parse(tableMappings) as { rules?: Array<Record<string, unknown>> };
  return (doc.rules ?? [])
    .filter((r) => r['rule-type'] === 'selection' && r['rule-action'] === 'include')
    .map((r) => {
      const loc = r['object-locator'] as { 'schema-name': string; 'table-name': string };
      return { schema: loc['schema-name'], name: loc['table-name'] };
    });
}

export interface TaskSettingsOptions {
  /** Limited LOB mode with this cap (KB) instead of full LOB mode. Larger values are truncated (the task fails instead, see FailTasksOnLobTruncation). */
  limitedLobMaxSizeKb?: number;
  /** Tables loaded in parallel (DMS default 8, max 49). */
  maxFullLoadSubTasks?: number;
}

/**
 * Task settings: the schema is restored before the task starts, so the target tables are left as they
 * are (FullLoadSettings.TargetTablePrepMode DO_NOTHING; DMS keeps that option under FullLoadSettings,
 * not TargetMetadata); row-level validation; task logging (the CloudWatch log group is DMS's own:
 * it cannot be set on create).
 */
export function buildTaskSettings(opts: TaskSettingsOptions = {}): string {
  const lob =
    opts.limitedLobMaxSizeKb !== undefined
      ? { SupportLobs: true, FullLobMode: false, LimitedSizeLobMode: true, LobMaxSize: opts.limitedLobMaxSizeKb }
      : { SupportLobs: true, FullLobMode: true, LimitedSizeLobMode: false, LobChunkSize: 64 };
  return JSON.stringify({
    TargetMetadata: { TargetSchema: '', ...lob },
    FullLoadSettings: {
      TargetTablePrepMode: 'DO_NOTHING',
      CreatePkAfterFullLoad: false,
      StopTaskCachedChangesApplied: false,
      StopTaskCachedChangesNotApplied: false,
      MaxFullLoadSubTasks: opts.maxFullLoadSubTasks ?? 8,
      CommitRate: 10000,
    },
    ValidationSettings: {
      EnableValidation: true,
      ValidationMode: 'ROW_LEVEL',
      ThreadCount: 5,
      FailureMaxCount: 10000,
    },
    Logging: { EnableLogging: true },
  });
}
