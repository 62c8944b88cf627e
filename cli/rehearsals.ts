/**
 * Rehearsals from the CLI:
 *   rehearse --input rehearsal.json [--workflow-id ID] [--wait]     start one now
 *   rehearsals list [--migration ID] [--dir DIR]                     the stored reports
 *   rehearsals show <rehearsalId|latest> [--migration ID] [--json]   one report (Markdown or JSON)
 *   rehearsals status <workflowId>                                   a running rehearsal's status
 *   rehearsals schema                                                JSON Schema of the input
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import type { Command } from 'commander';
import { z } from 'zod';
import { formatMs } from '../contract/plan';
import { formatProblemLines } from '../contract/problems';
import { checkRehearsalInput, RehearsalInput } from '../contract/rehearsal';
import type { RehearsalReport } from '../contract/rehearsal-report';
import { renderMarkdown } from '../activities/rehearsal/render';
import { defaultReportRoot, readAllReports } from '../activities/rehearsal/store';
import { rehearsalStatusQuery, type RehearsalSummary } from '../signals/rehearsal';
import { migrationStartOptions, taskQueue } from '../signals/task-queue';
import { readJsonFile } from './input-file';
import { temporalClient, uiLink } from './connection';

export async function startRehearsal(client: Client, raw: unknown, opts: { workflowId?: string; taskQueue?: string } = {}) {
  const checked = checkRehearsalInput(raw);
  if (!checked.ok) throw new Error(formatProblemLines(checked.problems, 'rehearsal'));
  const migrationId = checked.input.migration.migrationId ?? 'migration';
  const workflowId =
    opts.workflowId ??
    `rehearsal-${migrationId}-${new Date()
      .toISOString()
      .replace(/[^0-9]/g, '')
      .slice(0, 14)}`;
  return client.workflow.start('rehearseMigration', { ...migrationStartOptions(opts.taskQueue ?? taskQueue()), workflowId, args: [raw] });
}

/** Reports under `root`, newest last, optionally of one migration. */
export async function listReports(opts: { root?: string; migrationId?: string } = {}): Promise<{ dir: string; report: RehearsalReport }[]> {
  const all = await readAllReports(opts.root ?? defaultReportRoot());
  return opts.migrationId ? all.filter((r) => r.report.migrationId === opts.migrationId) : all;
}

/** One report by rehearsal id (or "latest"), with the paths of its files. */
export async function findReport(
  id: string,
  opts: { root?: string; migrationId?: string } = {},
): Promise<{ dir: string; report: RehearsalReport } | undefined> {
  const all = await listReports(opts);
  if (id === 'latest') return all[all.length - 1];
  return all.find((r) => r.report.rehearsalId === id) ?? all.find((r) => r.report.rehearsalId.startsWith(id));
}

export function reportLine(r: RehearsalReport): string {
  const window = r.freezeWindow.rehearsedWindowMs !== undefined ? formatMs(r.freezeWindow.rehearsedWindowMs) : '-';
  const publishable = r.publishableDowntimeMs !== undefined ? formatMs(r.publishableDowntimeMs) : '-';
  const budget = r.budget.value ? `${r.budget.value}${r.budget.withinBudget === false ? ' EXCEEDED' : ''}` : '-';
  const why = r.reasons.length ? `  ${r.reasons[0].slice(0, 100)}` : '';
  return `${r.rehearsalId.padEnd(25)} ${r.migrationId.padEnd(22)} ${r.startedAt.slice(0, 19).replace('T', ' ')}  ${r.outcome.padEnd(11)} ${(r.method ?? '-').padEnd(12)} window ${window.padEnd(8)} publish ${publishable.padEnd(8)} budget ${budget.padEnd(12)} total ${formatMs(r.totalMs)}${why}`;
}

export function registerRehearsalCommands(program: Command, connect: () => Promise<Client> = temporalClient): void {
  program
    .command('rehearse')
    .description('start rehearseMigration now with the rehearsal input of a JSON file')
    .requiredOption('--input <file>', 'rehearsal input JSON (see examples/rehearsal-demo.json)')
    .option('--workflow-id <id>', 'workflow id (default rehearsal-<migrationId>-<time>)')
    .option('--wait', 'wait for the rehearsal and print its report')
    .action(async (opts: { input: string; workflowId?: string; wait?: boolean }) => {
      try {
        const raw = readJsonFile(opts.input);
        const client = await connect();
        const handle = await startRehearsal(client, raw, { ...(opts.workflowId ? { workflowId: opts.workflowId } : {}) });
        console.log(`started ${handle.workflowId}\n${uiLink(handle.workflowId, handle.firstExecutionRunId)}`);
        if (!opts.wait) return;
        let summary: RehearsalSummary | undefined;
        try {
          summary = (await handle.result()) as RehearsalSummary;
        } catch (err) {
          const details =
            err instanceof WorkflowFailedError
              ? ((err.cause as { details?: unknown[] } | undefined)?.details?.[0] as RehearsalSummary | undefined)
              : undefined;
          console.log(
            `rehearsal failed: ${err instanceof WorkflowFailedError ? (err.cause?.message ?? err.message) : (err as Error).message}`,
          );
          summary = details;
          process.exitCode = 1;
        }
        if (summary?.report && existsSync(summary.report.markdown)) console.log(`\n${readFileSync(summary.report.markdown, 'utf8')}`);
        if (summary?.report) console.log(`report: ${summary.report.markdown}\nchart:  ${summary.report.chart}`);
        if (summary && summary.verdict === 'fail' && !process.exitCode) process.exitCode = 3;
      } catch (err) {
        console.error((err as Error).message);
        process.exitCode = process.exitCode || 2;
      }
    });

  const rehearsals = program.command('rehearsals').description('rehearsal reports: list, show; status of a running rehearsal');
  rehearsals
    .command('list')
    .description('list the rehearsal reports kept on disk, oldest first')
    .option('--migration <id>', 'only this migration')
    .option('--dir <dir>', `report root (default ${path.relative(process.cwd(), defaultReportRoot()) || '.'}; PGMIG_REHEARSAL_DIR)`)
    .action(async (opts: { migration?: string; dir?: string }) => {
      const rows = await listReports({
        ...(opts.dir ? { root: opts.dir } : {}),
        ...(opts.migration ? { migrationId: opts.migration } : {}),
      });
      if (!rows.length) {
        console.log(`no rehearsal reports under ${opts.dir ?? defaultReportRoot()}`);
        return;
      }
      for (const { report } of rows) console.log(reportLine(report));
    });

  rehearsals
    .command('show <rehearsalId>')
    .description('print one report ("latest" for the newest); --json for the raw report')
    .option('--migration <id>', 'only this migration')
    .option('--dir <dir>', 'report root')
    .option('--json', 'the JSON report')
    .action(async (id: string, opts: { migration?: string; dir?: string; json?: boolean }) => {
      const found = await findReport(id, {
        ...(opts.dir ? { root: opts.dir } : {}),
        ...(opts.migration ? { migrationId: opts.migration } : {}),
      });
      if (!found) {
        console.error(`no rehearsal report ${id} under ${opts.dir ?? defaultReportRoot()}`);
        process.exitCode = 1;
        return;
      }
      if (opts.json) {
        console.log(JSON.stringify(found.report, null, 2));
        return;
      }
      const md = path.join(found.dir, `${found.report.rehearsalId}.md`);
      console.log(existsSync(md) ? readFileSync(md, 'utf8') : renderMarkdown(found.report));
      console.log(
        `files: ${md}\n       ${path.join(found.dir, `${found.report.rehearsalId}.json`)}\n       ${path.join(found.dir, 'phases.svg')}`,
      );
      console.log(uiLink(found.report.workflowId, found.report.runId));
    });

  rehearsals
    .command('schema')
    .description('print the JSON Schema of the rehearseMigration input (schemas/rehearsal-input.schema.json)')
    .action(() => console.log(JSON.stringify(z.toJSONSchema(RehearsalInput, { io: 'input', unrepresentable: 'any' }), null, 2)));

  rehearsals
    .command('status <workflowId>')
    .description("a running rehearsal's phase and steps")
    .option('--json', 'the raw status')
    .action(async (workflowId: string, opts: { json?: boolean }) => {
      const client = await connect();
      const status = await client.workflow.getHandle(workflowId).query(rehearsalStatusQuery);
      if (opts.json) {
        console.log(JSON.stringify(status, null, 2));
        return;
      }
      console.log(
        `${status.rehearsalId} of ${status.migrationId}: ${status.phase}, ${status.outcome}${status.scheduledAt ? ` (scheduled for ${status.scheduledAt})` : ''}`,
      );
      if (status.childWorkflowId) console.log(`migration: ${status.childWorkflowId}  (npm run cli -- status ${status.childWorkflowId})`);
      for (const t of status.teardown)
        console.log(`  teardown ${t.step}: ${t.state}${t.done ? ` ${t.done.join('; ')}` : ''}${t.error ? ` ${t.error}` : ''}`);
      for (const r of status.reasons ?? []) console.log(`  why: ${r}`);
      if (status.report) console.log(`report: ${status.report.markdown}`);
      console.log(uiLink(workflowId));
    });
}
