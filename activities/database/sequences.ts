/**
 * Sequence reconciliation: every sequence on the target is set to at least the source's value and at
 * least the maximum of the column it feeds (serial and identity columns alike), so the first insert
 * after cutover cannot collide. A dump already carries sequence values; CDC methods do not, and the
 * same step covers both.
 */
import type { Client } from 'pg';
import { listSequences } from './inventory';
import { qi, qname } from './pg';

export interface SequenceReconciliation {
  sequence: string;
  sourceValue: number | null;
  targetColumnMax: number | null;
  setTo: number | null;
}

async function columnMax(client: Client, owner: { schema: string; table: string; column: string }): Promise<number | null> {
  const res = await client.query(`SELECT max(${qi(owner.column)})::text AS m FROM ${qname(owner.schema, owner.table)}`);
  return res.rows[0].m === null ? null : Number(res.rows[0].m);
}

export async function reconcileSequences(source: Client, target: Client): Promise<SequenceReconciliation[]> {
  const sourceValues = new Map((await listSequences(source)).map((s) => [`${s.schema}.${s.name}`, s.lastValue]));
  await target.query('SET default_transaction_read_only = off');
  const out: SequenceReconciliation[] = [];
  for (const seq of await listSequences(target)) {
    const key = `${seq.schema}.${seq.name}`;
    const sourceValue = sourceValues.get(key) ?? null;
    const targetColumnMax = seq.ownedBy ? await columnMax(target, seq.ownedBy) : null;
    const wanted = Math.max(sourceValue ?? -Infinity, targetColumnMax ?? -Infinity);
    const setTo = Number.isFinite(wanted) ? wanted : null;
    if (setTo !== null) await target.query('SELECT setval($1::regclass, $2::bigint, true)', [qname(seq.schema, seq.name), setTo]);
    out.push({ sequence: key, sourceValue, targetColumnMax, setTo });
  }
  return out;
}

export interface SequenceCheck {
  sequence: string;
  lastValue: number | null;
  columnMax: number | null;
  ok: boolean;
}

/** After reconciliation: the next value of each owned sequence is above every existing id. */
export async function checkSequencesAhead(target: Client): Promise<SequenceCheck[]> {
  const out: SequenceCheck[] = [];
  for (const seq of await listSequences(target)) {
    if (!seq.ownedBy) continue;
    const max = await columnMax(target, seq.ownedBy);
    out.push({
      sequence: `${seq.schema}.${seq.name}`,
      lastValue: seq.lastValue,
      columnMax: max,
      ok: max === null || (seq.lastValue ?? 0) >= max,
    });
  }
  return out;
}
