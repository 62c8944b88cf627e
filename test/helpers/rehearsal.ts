/** Helpers of the rehearsal tests: inputs for a sandbox, running a rehearsal, and finding what it left behind. */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { MigrationInputDraft } from '../../contract/input';
import { scratchNames, type RehearsalInputDraft } from '../../contract/rehearsal';
import type { RehearsalReport } from '../../contract/rehearsal-report';
import type { RehearsalSummary } from '../../signals/rehearsal';
import type { StackEnv } from '../../stack';
import { query, type Sandbox } from './harness';

/** Env vars naming the scratch servers: the clusters' superusers (they may CREATE DATABASE, and subscribe). */
export function scratchRefs(sandbox: Sandbox): { target: string; source: string } {
  const target = `TEST_SCRATCH_TARGET_${sandbox.id.toUpperCase()}`;
  const source = `TEST_SCRATCH_SOURCE_${sandbox.id.toUpperCase()}`;
  process.env[target] = sandbox.env.TARGET_ADMIN_URL;
  process.env[source] = sandbox.env.SOURCE_ADMIN_URL;
  return { target, source };
}

/** A logical-snapshot rehearsal of the sandbox's migration, scratch databases on the target cluster. */
export function rehearsalInput(
  sandbox: Sandbox,
  opts: { migration?: Partial<MigrationInputDraft>; reportDir: string; extra?: Partial<RehearsalInputDraft> },
): RehearsalInputDraft {
  const refs = scratchRefs(sandbox);
  return {
    migration: sandbox.input({ downtimeBudget: '10m', gates: { 'go-live': { timeout: '2m', approvers: ['alice'] } }, ...opts.migration }),
    snapshot: { type: 'logical', scratch: { env: refs.target } },
    reportDir: opts.reportDir,
    ...opts.extra,
  };
}

export interface RehearsalRun {
  handle: WorkflowHandle;
  summary: RehearsalSummary;
  /** The workflow failure (a failed rehearsal fails its workflow, after teardown and report). */
  error?: WorkflowFailedError;
  report: RehearsalReport;
}

/** The summary of a closed rehearsal, whether it completed or failed (failures carry it as details). */
export async function summaryOf(handle: WorkflowHandle): Promise<{ summary: RehearsalSummary; error?: WorkflowFailedError }> {
  try {
    return { summary: (await handle.result()) as RehearsalSummary };
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    const details = (err.cause as { details?: unknown[] } | undefined)?.details?.[0] as RehearsalSummary | undefined;
    if (!details) throw err;
    return { summary: details, error: err };
  }
}

export async function runRehearsal(sandbox: Sandbox, input: RehearsalInputDraft): Promise<RehearsalRun> {
  const handle = await sandbox.client.workflow.start('rehearseMigration', {
    taskQueue: sandbox.taskQueue,
    workflowId: `rehearsal-${sandbox.id}-${randomBytes(3).toString('hex')}`,
    args: [input],
  });
  const { summary, error } = await summaryOf(handle);
  const report = JSON.parse(readFileSync(summary.report!.json, 'utf8')) as RehearsalReport;
  return { handle, summary, ...(error ? { error } : {}), report };
}

/** Scratch databases, replication slots and subscriptions of one rehearsal still present on either cluster. */
export async function leftovers(env: StackEnv, rehearsalId: string): Promise<string[]> {
  const names = scratchNames(rehearsalId);
  const dbs = [names.sourceDatabase, names.targetDatabase];
  const replication = `pgmig_rh_${rehearsalId.replace(/[^a-z0-9]/g, '_')}%`;
  const found: string[] = [];
  for (const [cluster, url] of [
    ['source', env.SOURCE_ADMIN_URL],
    ['target', env.TARGET_ADMIN_URL],
  ] as const) {
    for (const r of await query<{ datname: string }>(url, 'SELECT datname FROM pg_database WHERE datname = ANY($1)', [dbs]))
      found.push(`${cluster}: database ${r.datname}`);
    for (const r of await query<{ slot_name: string }>(
      url,
      'SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE $1 OR database = ANY($2)',
      [replication, dbs],
    )) {
      found.push(`${cluster}: slot ${r.slot_name}`);
    }
    for (const r of await query<{ subname: string }>(url, 'SELECT subname FROM pg_subscription WHERE subname LIKE $1', [replication]))
      found.push(`${cluster}: subscription ${r.subname}`);
  }
  return found;
}
