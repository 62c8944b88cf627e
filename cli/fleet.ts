/**
 * Fleets from the CLI (`migrateFleet`, workflow id `fleet-<fleetId>`):
 *   fleet start --input fleet.json                  validate and start
 *   fleet status <fleetId> [--json]                 waves, counts, budget, running and failed migrations
 *   fleet pause|resume|cancel <fleetId> [--by NAME] [--reason TEXT]
 *   fleet approve-wave <fleetId> --wave NAME [--approver NAME] [--reason TEXT]
 *   fleet report <fleetId> [--out DIR]              JSON, Markdown and SVG chart, from the fleet's items
 *   fleet schema                                    JSON Schema of the input
 */
import os from 'node:os';
import type { Client } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import type { Command } from 'commander';
import { z } from 'zod';
import { checkFleetControl, checkFleetInput, checkWaveApproval, FleetInput, type FleetControlPayload } from '../contract/fleet';
import { buildFleetReport } from '../contract/fleet-report';
import type { FleetItem } from '../contract/fleet-state';
import { formatProblemLines } from '../contract/problems';
import { formatMs } from '../contract/plan';
import { fleetReportDir, writeFleetReportFiles } from '../activities/fleet/report';
import {
  approveWaveUpdate,
  cancelFleetUpdate,
  fleetStatusQuery,
  pauseFleetUpdate,
  resumeFleetUpdate,
  type FleetResult,
  type FleetStatus,
} from '../signals/fleet';
import { migrationStartOptions, taskQueue } from '../signals/task-queue';
import { temporalClient, uiLink } from './connection';
import { readJsonFile } from './input-file';

const defaultUser = process.env.USER ?? os.userInfo().username;

export const fleetWorkflowId = (fleetId: string) => `fleet-${fleetId}`;

/** Starts a fleet after checking its input here (a pasted secret never reaches history). */
export async function startFleet(client: Client, raw: unknown, queue = taskQueue()) {
  const checked = checkFleetInput(raw);
  if (!checked.ok) throw new Error(formatProblemLines(checked.problems, 'fleet'));
  return client.workflow.start('migrateFleet', {
    ...migrationStartOptions(queue),
    workflowId: fleetWorkflowId(checked.input.fleetId),
    args: [raw],
  });
}

/** What the fleet knows now: its status (a worker answers, also after it closed), else its result. */
async function fleetState(fleetId: string): Promise<{ status?: FleetStatus; result?: FleetResult }> {
  const handle = (await temporalClient()).workflow.getHandle(fleetWorkflowId(fleetId));
  try {
    return { status: await handle.query(fleetStatusQuery) };
  } catch (err) {
    const description = await handle.describe();
    if (description.status.name === 'COMPLETED') return { result: (await handle.result()) as FleetResult };
    throw new Error(`${handle.workflowId} (${description.status.name}) did not answer: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Sends an Update to a fleet after the workflow's own check of its payload (refused here, nothing is
 * sent); prints the answer, or the refusal. Sets the exit code.
 */
async function sendChecked<P, R>(
  fleetId: string,
  payload: P,
  check: (raw: unknown) => { ok: true } | { ok: false; problem: string },
  update: UpdateDefinition<R, [P]>,
  describe: (answer: R) => string,
): Promise<void> {
  const shape = check(payload);
  if (!shape.ok) {
    console.error(`refused before sending: ${shape.problem}`);
    process.exitCode = 2;
    return;
  }
  try {
    const handle = (await temporalClient()).workflow.getHandle(fleetWorkflowId(fleetId));
    console.log(describe(await handle.executeUpdate(update, { args: [payload] })));
  } catch (err) {
    console.error(`refused: ${(err as { cause?: Error }).cause?.message ?? (err as Error).message}`);
    process.exitCode = 1;
  }
}

function itemLine(i: FleetItem): string {
  const window = i.windowMs !== undefined ? `window ${formatMs(i.windowMs)}` : '';
  return `  ${i.state.padEnd(11)} ${i.database.padEnd(40)} ${(i.method ?? '').padEnd(12)} ${window}${i.reason ? `  ${i.reason.slice(0, 160)}` : ''}`;
}

export function printFleetStatus(s: FleetStatus, print: (line: string) => void): void {
  const c = s.counts;
  print(`fleet ${s.fleetId}: ${s.phase}${s.outcome ? ` (${s.outcome})` : ''}, run ${s.run}`);
  print(`  waves: ${s.waves.map((w) => `${w.name} ${w.size} ${w.state}`).join(' | ')}`);
  print(
    `  ${c.completed} completed, ${c.running} running, ${c.pending} pending, ${c.failed} failed, ${c['rolled-back']} rolled back, ${c.cancelled} cancelled, ${c.skipped} not started`,
  );
  print(`  failure budget: ${s.failureBudget.used} used of ${s.failureBudget.allowed}${s.failureBudget.exceeded ? ' (EXCEEDED)' : ''}`);
  if (s.paused) print(`  PAUSED by ${s.paused.by} at ${s.paused.at}${s.paused.reason ? `: ${s.paused.reason}` : ''}`);
  if (s.halted) print(`  HALTED: ${s.halted}`);
  if (s.cancelled) print(`  CANCELLED by ${s.cancelled.by} at ${s.cancelled.at}`);
  for (const i of s.items.filter((x) => x.state === 'running' || x.state === 'failed' || x.state === 'rolled-back')) print(itemLine(i));
  if (s.report) print(`  report: ${s.report.markdown}`);
}

export function registerFleetCommands(program: Command): void {
  const fleet = program
    .command('fleet')
    .description('many migrations as one fleet (migrateFleet): start, status, pause, resume, cancel, approve-wave, report');

  fleet
    .command('start')
    .description('validate a fleet input file and start migrateFleet (workflow id fleet-<fleetId>)')
    .requiredOption('--input <file>', 'fleet input JSON (migrations, or discovery + template)')
    .action(async (opts: { input: string }) => {
      try {
        const client = await temporalClient();
        const handle = await startFleet(client, readJsonFile(opts.input));
        console.log(`started ${handle.workflowId}\n${uiLink(handle.workflowId, handle.firstExecutionRunId)}`);
      } catch (err) {
        console.error((err as Error).message);
        process.exitCode = 2;
      }
    });

  fleet
    .command('status <fleetId>')
    .description("a fleet's waves, counts, failure budget, and its running and failed migrations")
    .option('--json', 'print the whole status (every migration) as JSON')
    .action(async (fleetId: string, opts: { json?: boolean }) => {
      const { status, result } = await fleetState(fleetId);
      if (opts.json) {
        console.log(JSON.stringify(status ?? result, null, 2));
        return;
      }
      if (status) printFleetStatus(status, console.log);
      else if (result) {
        console.log(`fleet ${result.fleetId}: ${result.outcome}${result.reason ? `: ${result.reason}` : ''}`);
        for (const i of result.items) console.log(itemLine(i));
      }
    });

  const controls: [string, string, UpdateDefinition<unknown, [FleetControlPayload]>][] = [
    ['pause', 'stop starting new migrations (running ones go on)', pauseFleetUpdate],
    ['resume', 'start new migrations again after a pause', resumeFleetUpdate],
    ['cancel', 'start no more migrations and cancel the running ones (they undo their steps)', cancelFleetUpdate],
  ];
  for (const [name, description, update] of controls) {
    fleet
      .command(`${name} <fleetId>`)
      .description(description)
      .option('--by <name>', 'who asks (recorded in the fleet)', defaultUser)
      .option('--reason <text>', 'why')
      .action(async (fleetId: string, opts: { by: string; reason?: string }) => {
        const payload: FleetControlPayload = { by: opts.by, ...(opts.reason ? { reason: opts.reason } : {}) };
        await sendChecked(fleetId, payload, checkFleetControl, update, (answer) => `${name}: ${JSON.stringify(answer)}`);
      });
  }

  fleet
    .command('approve-wave <fleetId>')
    .description("approve a wave of a fleet with approval per-wave (its migrations' gates are approved in your name)")
    .requiredOption('--wave <name>', 'the wave approved')
    .option('--approver <name>', 'who approves', defaultUser)
    .option('--reason <text>', 'why')
    .action(async (fleetId: string, opts: { wave: string; approver: string; reason?: string }) => {
      const payload = { approver: opts.approver, wave: opts.wave, ...(opts.reason ? { reason: opts.reason } : {}) };
      await sendChecked(
        fleetId,
        payload,
        checkWaveApproval,
        approveWaveUpdate,
        (a) => `wave ${a.wave} approved by ${a.approver} at ${a.at}`,
      );
    });

  fleet
    .command('schema')
    .description('print the JSON Schema of the migrateFleet input (each migration: see `schema`)')
    .action(() => console.log(JSON.stringify(z.toJSONSchema(FleetInput, { io: 'input', unrepresentable: 'any' }), null, 2)));

  fleet
    .command('report <fleetId>')
    .description("the fleet's report now (running or closed): fleet.json, fleet.md and windows.svg")
    .option('--out <dir>', 'directory of the files (default .stack/fleets/<fleetId>)')
    .action(async (fleetId: string, opts: { out?: string }) => {
      const { status, result } = await fleetState(fleetId);
      const items = status?.items ?? result?.items ?? [];
      const waveNames = status ? status.waves.map((w) => w.name) : [];
      const report = buildFleetReport({
        fleetId,
        outcome: status ? (status.outcome ?? status.phase) : result!.outcome,
        ...((status?.halted ?? result?.reason) ? { reason: status?.halted ?? result?.reason } : {}),
        items,
        waveNames,
        generatedAt: new Date().toISOString(),
      });
      const files = await writeFleetReportFiles(report, opts.out ?? fleetReportDir(fleetId));
      const w = report.windows;
      console.log(
        `${report.counts.completed}/${report.total} completed, ${report.counts.failed} failed; window p50 ${w.p50 ?? '-'} ms, p95 ${w.p95 ?? '-'} ms, max ${w.max ?? '-'} ms; ${report.migrationsPerHour ?? '-'} migrations/h`,
      );
      console.log(`report: ${files.markdown}\nchart:  ${files.chart}\njson:   ${files.json}`);
    });
}
