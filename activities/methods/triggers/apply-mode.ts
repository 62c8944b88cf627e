/**
 * How the apply side treats its own triggers and foreign keys while changes arrive. In `replica` mode
 * (session_replication_role = replica: superusers, and roles granted SET on it, as RDS's rds_superuser)
 * ordinary triggers and foreign-key checks do not fire: the changes are applied as the source made them
 * (its cascades arrive as changes of their own). In `origin` mode they fire; changes are applied in the
 * order the source made them, so foreign keys hold, and the caller may disable the user's triggers on
 * the tables it owns with the helpers below (a trigger that writes elsewhere would otherwise write twice).
 */
import type { Client } from 'pg';
import { qi, qname } from '../../database/pg';
import type { TableRef } from './keys';
import { CAPTURE_NAME_PREFIX } from './names';

export type ApplyMode = 'replica' | 'origin';

/** Sets session_replication_role = replica when the role may; `origin` when it may not. */
export async function enterReplicaMode(client: Client): Promise<ApplyMode> {
  try {
    await client.query('SET session_replication_role = replica');
    return 'replica';
  } catch (err) {
    if ((err as { code?: string }).code === '42501') return 'origin';
    throw err;
  }
}

export interface DisabledTrigger {
  schema: string;
  table: string;
  trigger: string;
  /** pg_trigger.tgenabled before: O (origin and local), A (always), R (replica). */
  enabled: 'O' | 'A' | 'R';
}

const ENABLE: Record<DisabledTrigger['enabled'], string> = { O: 'ENABLE TRIGGER', A: 'ENABLE ALWAYS TRIGGER', R: 'ENABLE REPLICA TRIGGER' };

/**
 * Disables the enabled user triggers (not foreign-key or other internal ones, not the capture's) of
 * `tables` that the connected role owns, and returns them, for `enableUserTriggers`. Triggers of a
 * partitioned table are disabled on it (which reaches its partitions), not one partition at a time.
 */
export async function disableUserTriggers(client: Client, tables: TableRef[]): Promise<DisabledTrigger[]> {
  const res = await client.query<DisabledTrigger>(
    `SELECT DISTINCT n.nspname AS schema, c.relname AS table, t.tgname AS trigger, t.tgenabled AS enabled
       FROM unnest($1::text[], $2::text[]) AS w(schema, name)
       JOIN pg_namespace n ON n.nspname = w.schema
       JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w.name
       JOIN pg_trigger t ON t.tgrelid = c.oid
      WHERE NOT t.tgisinternal AND t.tgparentid = 0 AND t.tgenabled <> 'D'
        AND NOT starts_with(t.tgname, $3) AND pg_has_role(c.relowner, 'USAGE')
      ORDER BY 1, 2, 3`,
    [tables.map((t) => t.schema), tables.map((t) => t.name), CAPTURE_NAME_PREFIX],
  );
  for (const t of res.rows) await client.query(`ALTER TABLE ${qname(t.schema, t.table)} DISABLE TRIGGER ${qi(t.trigger)}`);
  return res.rows;
}

/** Gives the triggers `disableUserTriggers` returned their previous state back; returns what it changed. */
export async function enableUserTriggers(client: Client, triggers: DisabledTrigger[]): Promise<string[]> {
  const changed: string[] = [];
  for (const t of triggers) {
    const still = await client.query(`SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2 AND tgenabled = 'D'`, [
      qname(t.schema, t.table),
      t.trigger,
    ]);
    if (!still.rowCount) continue;
    await client.query(`ALTER TABLE ${qname(t.schema, t.table)} ${ENABLE[t.enabled]} ${qi(t.trigger)}`);
    changed.push(`${t.schema}.${t.table}: ${t.trigger}`);
  }
  return changed;
}
