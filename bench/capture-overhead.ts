/**
 * What the triggers method's capture costs the source: pgbench throughput on the same database without
 * the capture and with it (installCapture on every table, as the method's `start` does; removeCapture
 * after each run with it, which drops the change log too). After a short warm-up (not reported), the
 * runs alternate in rounds ordered A-B, B-A, A-B, ... so that drift over the run (caches, bloat, other
 * load on the machine) weighs on both sides alike. Nothing applies the log meanwhile: it only grows.
 */
import type { Client } from 'pg';
import { connect } from '../activities/database/pg';
import { listTables } from '../activities/database/inventory';
import { installCapture, removeCapture } from '../activities/methods/triggers/capture';
import type { TableRef } from '../activities/methods/triggers/keys';
import { captureNames } from '../activities/methods/triggers/names';
import { runPgbench, type PgbenchOptions, type PgbenchResult } from './pgbench';

export interface OverheadRun extends PgbenchResult {
  capture: boolean;
  /** With the capture: the change log after the run, its rows and its size on disk. */
  logRows?: number;
  logBytes?: number;
}

export interface CaptureOverhead {
  /** In the order they ran. */
  runs: OverheadRun[];
  tablesCaptured: number;
  /** Mean TPS with the capture / mean TPS without. */
  ratio: number;
  /** With / without within each round: the spread of the ratio. */
  roundRatios: number[];
}

/** The tables the triggers method captures: every user table, partition trees at their root. */
export async function capturedTableRefs(client: Client): Promise<TableRef[]> {
  return (await listTables(client)).filter((t) => !t.isPartition).map((t) => ({ schema: t.schema, name: t.name }));
}

const meanTps = (runs: OverheadRun[]) => runs.reduce((n, r) => n + r.tps, 0) / runs.length;

export async function benchCaptureOverhead(
  opts: PgbenchOptions & { migrationId: string; rounds: number; warmUpSeconds: number },
): Promise<CaptureOverhead> {
  const { migrationId, rounds, warmUpSeconds, ...pgbench } = opts;
  const names = captureNames(migrationId, 'forward');
  const source = await connect(opts.url, { label: 'source', applicationName: 'pgmig-bench-capture' });
  try {
    const tables = await capturedTableRefs(source);
    const withCapture = async (): Promise<OverheadRun> => {
      await installCapture(source, { migrationId, direction: 'forward', tables, policy: 'replica-identity-full' });
      try {
        const result = await runPgbench(pgbench);
        const log = await source.query<{ n: string; bytes: string }>(
          `SELECT (SELECT count(*) FROM ${names.log})::text AS n, pg_total_relation_size($1::regclass)::text AS bytes`,
          [names.log],
        );
        return { ...result, capture: true, logRows: Number(log.rows[0].n), logBytes: Number(log.rows[0].bytes) };
      } finally {
        await removeCapture(source, migrationId, 'forward');
      }
    };
    const withoutCapture = async (): Promise<OverheadRun> => ({ ...(await runPgbench(pgbench)), capture: false });

    await runPgbench({ ...pgbench, seconds: warmUpSeconds });
    const runs: OverheadRun[] = [];
    const roundRatios: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const pair = round % 2 === 0 ? [await withoutCapture(), await withCapture()] : [await withCapture(), await withoutCapture()];
      runs.push(...pair);
      const [on, off] = [pair.find((r) => r.capture) as OverheadRun, pair.find((r) => !r.capture) as OverheadRun];
      roundRatios.push(on.tps / off.tps);
    }
    return {
      runs,
      tablesCaptured: tables.length,
      ratio: meanTps(runs.filter((r) => r.capture)) / meanTps(runs.filter((r) => !r.capture)),
      roundRatios,
    };
  } finally {
    await source.end().catch(() => undefined);
  }
}
