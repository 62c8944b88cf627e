/**
 * Names of the triggers method's objects for one migration and one direction (`forward`: capture on
 * the source, apply to the target; `reverse`: capture on the target, apply to the source, for a
 * rollback during the hold).
 *
 * Capture side: one schema per migration and direction holding the change log, its id sequence, the
 * table registry (how each captured table is keyed) and the trigger function; on every captured table
 * four triggers named after that schema.
 * Apply side: one apply-state row in table `_pgmig.<base>_apply` (the marker schema, which
 * inventories, verification and dumps already treat as the migration's own).
 */
import type { TableInventory } from '../../../contract/plan';
import { qname } from '../../database/pg';
import { fitName, shortHash } from '../../names';
import { MARKER_SCHEMA, replicationNames } from '../cdc/marker';
import type { TableRef } from './keys';

export type CaptureDirection = 'forward' | 'reverse';

/** How every capture schema and trigger name starts. */
export const CAPTURE_NAME_PREFIX = '_pgmig_cap_';

/**
 * Every name is [a-z0-9_], so it is a valid unquoted identifier and its length in bytes is its length
 * in characters. The base stays within 50 so that the longest derived name (`<base>_apply`) fits
 * PostgreSQL's 63 bytes. The readable part keeps what it can of the id; a hash of the full id is added
 * whenever that part lost information (characters replaced, case folded, cut), so two ids never share
 * a name.
 */
export function captureNames(migrationId: string, direction: CaptureDirection) {
  const readable = `${CAPTURE_NAME_PREFIX}${direction === 'forward' ? 'f' : 'r'}_${migrationId.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`;
  const base = fitName(readable, 50, { id: migrationId, separator: '_', always: !/^[a-z0-9_]*$/.test(migrationId) });
  return {
    schema: base,
    /** The change log: one row per captured statement and chunk of rows. */
    log: qname(base, 'log'),
    logSequence: qname(base, 'log_id_seq'),
    /** One row per captured table: its key as the capture recorded it (what the applier matches rows by). */
    registry: qname(base, 'tables'),
    /**
     * The trigger functions (SECURITY DEFINER), one per table and operation, each with its statement
     * written in: PL/pgSQL keeps the plan of a static statement, where a statement passed as an argument
     * would be parsed and planned again at every write (measured: about a third of the source's TPS).
     */
    functionFor: (rel: string, op: 'i' | 'u' | 'd' | 't') => qname(base, `c_${shortHash(rel, 12)}_${op}`),
    /** Names of the four triggers on each captured table (all start with `triggerPrefix`). */
    triggerPrefix: `${base}_`,
    triggers: { insert: `${base}_i`, update: `${base}_u`, delete: `${base}_d`, truncate: `${base}_t` },
    /** On the apply side: watermark, copy snapshot, mode. */
    applyState: qname(MARKER_SCHEMA, `${base}_apply`),
    applyStateTable: `${base}_apply`,
  };
}

export type CaptureNames = ReturnType<typeof captureNames>;

/** The migration's cutover marker table: capture it with the user's tables (the drain waits for its row). */
export function markerTableRef(migrationId: string): TableRef {
  return { schema: MARKER_SCHEMA, name: replicationNames(migrationId).markerTable };
}

/** The tables captured on either side: partition trees at their root (the capture expands them), and the cutover marker. */
export function capturedTables(migrationId: string, tables: Pick<TableInventory, 'schema' | 'name' | 'isPartition'>[]): TableRef[] {
  return [...tables.filter((t) => !t.isPartition).map((t) => ({ schema: t.schema, name: t.name })), markerTableRef(migrationId)];
}
