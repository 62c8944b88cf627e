/**
 * The operator's CLI: `npm run cli -- <command>`.
 *   start --input file.json [--workflow-id ID] [--follow] [--auto-approve]
 *   approve|reject <workflowId> --approver NAME [--gate G] [--reason TEXT] [--signal]
 *   rollback <workflowId> --approver NAME [--reason TEXT]      (during the hold)
 *   status <workflowId> [--json]      list [--awaiting]      watch <workflowId>
 *   report <workflowId> [--out DIR]   (Markdown + SVG timeline of a closed migration)
 *   demo [--auto-approve] [--scale N] [--jobs N]
 *   schema                            (JSON Schema of the migration input)
 *   fleet start|status|pause|resume|cancel|approve-wave|report   (cli/fleet.ts)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { Command } from 'commander';
import { z } from 'zod';
import { checkMigrationInput, formatProblemLines, MigrationInput, type CopyEngine, type MigrationMethod } from '../contract/input';
import { renderMigrationMarkdown, renderMigrationTimeline } from '../activities/report/migration';
import { checkDecision, checkRollback } from '../contract/messages';
import { approveSignal, approveUpdate, rejectSignal, rejectUpdate, rollbackUpdate, type ApprovalPayload } from '../signals';
import { AwaitingGateKey, MigrationOutcomeKey, MigrationPhaseKey, WritesFrozenKey } from '../signals/search-attributes';
import { migrationStartOptions, taskQueue } from '../signals/task-queue';
import { loadLocalEnv, temporalClient, uiLink } from './connection';
import { runDemo } from './demo';
import { followMigration } from './follow';
import { queryStatus, reachability, searchAttributeText, type Reachable } from './inspect';
import { closedResult, printClosed } from './summary';
import { statusLines } from './status-view';
import { readJsonFile } from './input-file';
import { registerFleetCommands } from './fleet';
import { registerRehearsalCommands } from './rehearsals';
import { registerScheduleCommands } from './schedules';

export const program = new Command('pgmig').description('Durable PostgreSQL migrations on Temporal');
const defaultApprover = process.env.USER ?? os.userInfo().username;

/**
 * `status` and `watch` of a migration no worker can answer for: a closed one answers from its result
 * and search attributes; a running one without a worker is said to be so. Returns the exit code.
 */
async function answerWithoutWorker(
  handle: WorkflowHandle,
  reach: Exclude<Reachable, { state: 'running' }>,
  json: boolean,
): Promise<number> {
  if (reach.state === 'no-worker') {
    console.error(reach.message);
    return 1;
  }
  const closed = await closedResult(handle);
  if (json) {
    const searchAttributes = Object.fromEntries(reach.description.typedSearchAttributes.getAll().map((p) => [p.key.name, p.value]));
    console.log(JSON.stringify({ workflowStatus: reach.description.status.name, searchAttributes, ...closed }, null, 2));
    return 0;
  }
  console.log(`${handle.workflowId}  ${reach.description.status.name}  ${searchAttributeText(reach.description)}`.trimEnd());
  return printClosed(closed, handle.workflowId, console.log);
}

/** `start --follow` and `watch`: follow the migration at the terminal, then its summary; returns the exit code. */
async function followToTheEnd(handle: WorkflowHandle, autoApprove: boolean): Promise<number> {
  await followMigration(handle, { autoApprove, approver: defaultApprover, print: console.log, redraw: !!process.stdout.isTTY });
  return printClosed(await closedResult(handle), handle.workflowId, console.log);
}

program
  .command('start')
  .description('validate an input file and start migrateDatabase')
  .requiredOption('--input <file>', 'migration input JSON')
  .option('--workflow-id <id>', 'workflow id (default: the input migrationId, else generated)')
  .option('--follow', 'follow progress until the workflow closes')
  .option('--auto-approve', 'approve the go-live gate as soon as it opens (implies --follow)')
  .action(async (opts: { input: string; workflowId?: string; follow?: boolean; autoApprove?: boolean }) => {
    let raw: unknown;
    try {
      raw = readJsonFile(opts.input);
    } catch (err) {
      console.error((err as Error).message);
      process.exitCode = 2;
      return;
    }
    // Validate here too: a literal URL with a password must be refused before it reaches history.
    const checked = checkMigrationInput(raw);
    if (!checked.ok) {
      console.error(formatProblemLines(checked.problems));
      process.exitCode = 2;
      return;
    }
    const client = await temporalClient();
    const workflowId = opts.workflowId ?? checked.input.migrationId ?? `migration-${Date.now()}`;
    const handle = await client.workflow.start('migrateDatabase', {
      ...migrationStartOptions(taskQueue(), checked.input),
      workflowId,
      args: [raw],
    });
    console.log(`started ${workflowId}\n${uiLink(workflowId, handle.firstExecutionRunId)}`);
    if (opts.follow || opts.autoApprove) {
      process.exitCode = await followToTheEnd(handle, !!opts.autoApprove);
    }
  });

for (const approved of [true, false]) {
  const name = approved ? 'approve' : 'reject';
  program
    .command(`${name} <workflowId>`)
    .description(`${name} a gate (the open one unless --gate names another)`)
    .option('--approver <name>', 'who decides', defaultApprover)
    .option('--gate <gate>', 'gate name (cutover, go-live)')
    .option('--reason <text>', 'why')
    .option('--signal', 'send as a Signal (no answer) instead of an Update')
    .action(async (workflowId: string, opts: { approver: string; gate?: string; reason?: string; signal?: boolean }) => {
      const payload: ApprovalPayload = {
        approver: opts.approver,
        ...(opts.gate ? { gate: opts.gate } : {}),
        ...(opts.reason ? { reason: opts.reason } : {}),
      };
      // The workflow's own check (contract/messages.ts): refused here, nothing is sent.
      const shape = checkDecision(payload);
      if (!shape.ok) {
        console.error(`refused before sending: ${shape.problem}`);
        process.exitCode = 2;
        return;
      }
      const client = await temporalClient();
      const handle = client.workflow.getHandle(workflowId);
      if (opts.signal) {
        await handle.signal(approved ? approveSignal : rejectSignal, payload);
        console.log(`signal ${name} sent; check \`status\` for whether it was accepted`);
        return;
      }
      try {
        const decision = await handle.executeUpdate(approved ? approveUpdate : rejectUpdate, { args: [payload] });
        console.log(`${decision.gate}: ${decision.approved ? 'approved' : 'rejected'} by ${decision.approver} at ${decision.decidedAt}`);
      } catch (err) {
        console.error(`refused: ${(err as { cause?: Error }).cause?.message ?? (err as Error).message}`);
        process.exitCode = 1;
      }
    });
}

program
  .command('rollback <workflowId>')
  .description('during the hold (reverse replication on): switch the application back to the source, losing nothing')
  .option('--approver <name>', 'who asks (a go-live approver when the gate names them)', defaultApprover)
  .option('--reason <text>', 'why')
  .action(async (workflowId: string, opts: { approver: string; reason?: string }) => {
    const shape = checkRollback({ approver: opts.approver, ...(opts.reason ? { reason: opts.reason } : {}) });
    if (!shape.ok) {
      console.error(`refused before sending: ${shape.problem}`);
      process.exitCode = 2;
      return;
    }
    const client = await temporalClient();
    try {
      const answer = await client.workflow.getHandle(workflowId).executeUpdate(rollbackUpdate, { args: [shape.payload] });
      console.log(`rollback requested at ${answer.requestedAt}; follow it with \`status ${workflowId}\``);
    } catch (err) {
      console.error(`refused: ${(err as { cause?: Error }).cause?.message ?? (err as Error).message}`);
      process.exitCode = 1;
    }
  });

program
  .command('status <workflowId>')
  .description(
    "a migration at a glance: phase, method, write-freeze window, gate, the running step's progress (percent, rate, ETA), the last steps, the outcome; a closed one's summary (no worker needed)",
  )
  .option('--json', 'print the whole status query (plan, inventory, every step and decision) as JSON')
  .action(async (workflowId: string, opts: { json?: boolean }) => {
    const client = await temporalClient();
    const handle = client.workflow.getHandle(workflowId);
    const reach = await reachability(client, handle);
    if (reach.state !== 'running') {
      process.exitCode = await answerWithoutWorker(handle, reach, !!opts.json);
      return;
    }
    const status = await queryStatus(handle);
    if (opts.json) {
      console.log(JSON.stringify(status, null, 2));
      return;
    }
    for (const line of statusLines(status, workflowId)) console.log(line);
    console.log(uiLink(workflowId));
  });

program
  .command('watch <workflowId>')
  .description('follow a running migration (and answer its gate at the terminal); a summary when it closes')
  .option('--auto-approve', 'approve the gate when it opens')
  .action(async (workflowId: string, opts: { autoApprove?: boolean }) => {
    const client = await temporalClient();
    const handle = client.workflow.getHandle(workflowId);
    const reach = await reachability(client, handle);
    if (reach.state !== 'running') {
      process.exitCode = await answerWithoutWorker(handle, reach, false);
      return;
    }
    process.exitCode = await followToTheEnd(handle, !!opts.autoApprove);
  });

program
  .command('report <workflowId>')
  .description("write a closed migration's report: Markdown and an SVG timeline of its steps with the write-freeze window marked")
  .option('--out <dir>', 'directory to write report.md and timeline.svg into', 'reports/<workflowId>')
  .action(async (workflowId: string, opts: { out: string }) => {
    const client = await temporalClient();
    const closed = await closedResult(client.workflow.getHandle(workflowId));
    if (!closed.result) {
      console.error(`no report: ${workflowId} has no migration result (${closed.failure ?? 'still running?'})`);
      process.exitCode = 1;
      return;
    }
    const dir = opts.out.replace('<workflowId>', workflowId);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'report.md'), renderMigrationMarkdown(closed.result, 'timeline.svg'));
    writeFileSync(path.join(dir, 'timeline.svg'), renderMigrationTimeline(closed.result));
    console.log(`${path.join(dir, 'report.md')}\n${path.join(dir, 'timeline.svg')}`);
  });

program
  .command('list')
  .description('list migrations: state, outcome or phase, WRITES FROZEN, the gate they await, and how to get the report of a closed one')
  .option('--awaiting', 'only migrations waiting for an approval')
  .option('--frozen', 'only migrations whose application cannot write right now')
  .action(async (opts: { awaiting?: boolean; frozen?: boolean }) => {
    const client = await temporalClient();
    const query = `WorkflowType = 'migrateDatabase'${opts.awaiting ? ' AND AwaitingApproval = true' : ''}${opts.frozen ? " AND ExecutionStatus = 'Running' AND WritesFrozen = true" : ''}`;
    for await (const wf of client.workflow.list({ query })) {
      const sa = wf.typedSearchAttributes;
      const open = wf.status.name === 'RUNNING';
      const state = open ? (sa.get(MigrationPhaseKey) ?? '') : (sa.get(MigrationOutcomeKey) ?? wf.status.name.toLowerCase());
      const gate = sa.get(AwaitingGateKey);
      const notes = [
        ...(open && sa.get(WritesFrozenKey) ? ['WRITES FROZEN'] : []),
        ...(gate ? [`awaiting ${gate}`] : []),
        ...(!open && sa.get(MigrationOutcomeKey) ? [`report: npm run cli -- report ${wf.workflowId}`] : []),
      ];
      console.log(
        `${wf.workflowId.padEnd(32)} ${wf.status.name.padEnd(11)} ${state.padEnd(18)} ${notes.join(', ')}  ${uiLink(wf.workflowId, wf.runId)}`,
      );
    }
  });

program
  .command('schema')
  .description('print the JSON Schema of the migrateDatabase input')
  .action(() => console.log(JSON.stringify(z.toJSONSchema(MigrationInput, { io: 'input', unrepresentable: 'any' }), null, 2)));

program
  .command('demo')
  .description('run a complete migration of the demo dataset on the local stack')
  .option('--auto-approve', 'approve the go-live gate without asking')
  .option('--scale <n>', 'demo dataset scale (100,000 bulk rows per unit)', '2')
  .option('--jobs <n>', 'parallel jobs of the copy and the verification', '2')
  .option('--copy-engine <engine>', "dump-restore's copy: auto (pgcopydb where installed), pgcopydb or pg-dump", 'auto')
  .option(
    '--method <method>',
    'auto, dump-restore, logical, pgcopydb or triggers (a Heroku-like source: its role has no REPLICATION)',
    'auto',
  )
  .option('--approver <name>', 'name recorded for the approval', defaultApprover)
  .action(async (opts: { autoApprove?: boolean; scale: string; jobs: string; approver: string; method: string; copyEngine: string }) => {
    if (!['auto', 'pgcopydb', 'pg-dump'].includes(opts.copyEngine)) {
      console.error(`--copy-engine: "${opts.copyEngine}" is not one of auto, pgcopydb, pg-dump`);
      process.exitCode = 2;
      return;
    }
    process.exitCode = await runDemo({
      autoApprove: !!opts.autoApprove,
      method: opts.method as MigrationMethod | 'auto',
      scale: Number(opts.scale),
      jobs: Number(opts.jobs),
      copyEngine: opts.copyEngine as CopyEngine,
      approver: opts.approver,
    });
  });

registerRehearsalCommands(program);
registerScheduleCommands(program);
registerFleetCommands(program);

// Run as the CLI; imported (the help-text test), it only builds the commands.
if (require.main === module) {
  loadLocalEnv();
  program.parseAsync().catch((err) => {
    console.error((err as Error).message);
    process.exit(1);
  });
}
