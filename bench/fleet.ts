/**
 * `npm run bench -- fleet`: N small-database migrations (dump-restore, gates approved by the fleet) as
 * one `migrateFleet` on one worker; completed migrations per hour (first start to last end) and the
 * p50 / p95 / max write-freeze windows, from the fleet's own report. Writes bench/results/fleet.json
 * and fleet.md (with the fleet's chart as fleet.svg).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { renderFleetChart, renderFleetMarkdown } from '../activities/fleet/report';
import type { FleetReport } from '../contract/fleet-report';
import { formatMs } from '../contract/plan';
import type { FleetResult } from '../signals/fleet';
import { migrationStartOptions } from '../signals/task-queue';
import { loadStackEnv, stackUp } from '../stack';
import { createSmallDatabases, dropSmallDatabase, smallDatabaseMigration } from '../stack/small-databases';
import { machine, RESULTS_DIR, writeFormatted, writeResult, type Machine } from './results';
import { withBenchWorker } from './worker';

export interface FleetBenchReport {
  kind: 'fleet';
  machine: Machine;
  databases: number;
  concurrency: number;
  accountsPerDatabase: number;
  outcome: string;
  counts: FleetReport['counts'];
  migrationsPerHour?: number;
  elapsedMs?: number;
  windows: FleetReport['windows'];
  /** Per migration, start to end (ms): p50 and max. */
  durations: { p50?: number; max?: number };
}

export async function benchFleet(opts: { count: number; concurrency: number; accounts: number }): Promise<{
  bench: FleetBenchReport;
  fleet: FleetReport;
}> {
  const load = os.loadavg();
  const started = Date.now();
  await stackUp({ log: () => undefined });
  const env = loadStackEnv();
  const id = `bf${process.pid}`;
  const dir = mkdtempSync(path.join(os.tmpdir(), `pgmig-bench-fleet-`));
  console.log(`creating ${opts.count} small databases (${opts.accounts} accounts, 200 events each) ...`);
  const dbs = await createSmallDatabases(
    env,
    Array.from({ length: opts.count }, (_, i) => `${id}_${i}`),
    { accounts: () => opts.accounts, configDir: dir, refPrefix: 'BENCH_FLEET' },
  );
  try {
    const result = await withBenchWorker(env, async ({ client, taskQueue }) => {
      const handle = await client.workflow.start('migrateFleet', {
        ...migrationStartOptions(taskQueue),
        workflowId: `fleet-bench-${id}`,
        args: [
          {
            fleetId: `bench-${id}`,
            migrations: dbs.map((db) => ({ input: smallDatabaseMigration(db) })),
            waves: [{ name: 'all' }],
            concurrency: opts.concurrency,
            failureBudget: opts.count,
            approval: 'automatic',
            reportDir: path.join(dir, 'report'),
          },
        ],
      });
      console.log(`fleet ${handle.workflowId}: ${opts.count} migrations, concurrency ${opts.concurrency}, one worker ...`);
      return (await handle.result()) as FleetResult;
    });
    const fleet = JSON.parse(readFileSync(result.report!.json, 'utf8')) as FleetReport;
    const durations = fleet.rows.map((r) => r.durationMs ?? 0).sort((a, b) => a - b);
    const bench: FleetBenchReport = {
      kind: 'fleet',
      machine: machine(load, started),
      databases: opts.count,
      concurrency: opts.concurrency,
      accountsPerDatabase: opts.accounts,
      outcome: result.outcome,
      counts: fleet.counts,
      ...(fleet.migrationsPerHour !== undefined ? { migrationsPerHour: fleet.migrationsPerHour } : {}),
      ...(fleet.elapsedMs !== undefined ? { elapsedMs: fleet.elapsedMs } : {}),
      windows: fleet.windows,
      durations: { p50: durations[Math.ceil(durations.length / 2) - 1], max: durations[durations.length - 1] },
    };
    return { bench, fleet };
  } finally {
    for (const db of dbs) await dropSmallDatabase(env, db);
  }
}

export function fleetBenchMarkdown(b: FleetBenchReport, chart: string): string {
  const ms = (v: number | undefined) => (v === undefined ? '-' : formatMs(v));
  const load = b.machine.loadAverage;
  return [
    '## Fleet: small-database migrations per hour (`npm run bench -- fleet`)',
    '',
    `${b.databases} small databases (${b.accountsPerDatabase} + 200 rows each), dump-restore, one \`migrateFleet\` on one worker, concurrency ${b.concurrency}, gates approved by the fleet. ${b.machine.cores} cores (${b.machine.cpuModel}), load average ${load.start.join('/')} at the start, ${load.end.join('/')} at the end (${b.machine.date}).`,
    '',
    '| figure | value |',
    '|---|---|',
    `| outcome | ${b.outcome}: ${b.counts.completed} completed, ${b.counts.failed} failed |`,
    `| completed migrations per hour | **${b.migrationsPerHour ?? '-'}** (goal: at least 300) |`,
    `| first start to last end | ${ms(b.elapsedMs)} |`,
    `| write-freeze window p50 / p95 / max | ${ms(b.windows.p50)} / ${ms(b.windows.p95)} / ${ms(b.windows.max)} |`,
    `| one migration, start to end: p50 / max | ${ms(b.durations.p50)} / ${ms(b.durations.max)} |`,
    '',
    `![write-freeze window per database](${chart})`,
    '',
  ].join('\n');
}

export async function saveFleetBench(bench: FleetBenchReport, fleet: FleetReport): Promise<string[]> {
  const json = await writeResult(bench);
  const svg = path.join(RESULTS_DIR, 'fleet.svg');
  const md = path.join(RESULTS_DIR, 'fleet.md');
  await writeFormatted(svg, renderFleetChart(fleet));
  await writeFormatted(
    md,
    `${fleetBenchMarkdown(bench, 'fleet.svg')}\n<details><summary>the fleet's report</summary>\n\n${renderFleetMarkdown(fleet, 'fleet.svg')}\n</details>\n`,
  );
  return [json, md, svg];
}
