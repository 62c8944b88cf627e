/**
 * What the Temporal UI shows of a migration: a one-line summary for the start (source -> target, method,
 * budget) and the current details in Markdown, rewritten whenever the status changes. A person opening
 * the workflow sees at once whether writes are frozen and since when, which gate waits for whom and the
 * exact command to decide it, the progress of the long step, and the last undo. Pure: workflow code.
 */
import { describeRef, type SecretRef } from '../../contract/input';
import { formatMs } from '../../contract/plan';
import { describeProgress } from '../../contract/progress';
import type { MigrationStatus } from '../../signals';

export interface DetailsContext {
  workflowId: string;
  source: string;
  target: string;
  /** The input's downtimeBudget, when it has one. */
  budgetMs?: number;
}

/** HH:MM:SS UTC of an epoch-ms or ISO time. */
export function clockTime(at: number | string): string {
  return `${new Date(at).toISOString().slice(11, 19)} UTC`;
}

/** Whether the database the application uses refuses its writes now (the write-freeze window). */
export function writesFrozen(status: MigrationStatus): boolean {
  const { freezeWindow, sides } = status;
  if (freezeWindow.frozenAt !== undefined && freezeWindow.unfrozenAt === undefined) return true;
  return sides.application === 'source' ? !sides.sourceWritable : !sides.targetWritable;
}

function frozenBanner(status: MigrationStatus, ctx: DetailsContext, since: number, now: number): string[] {
  // Clock times, not an elapsed count: the details are rewritten on changes only, and a gate may wait long.
  let budget = 'No downtime budget set.';
  if (ctx.budgetMs !== undefined) {
    const over = clockTime(since + ctx.budgetMs);
    budget =
      now - since > ctx.budgetMs
        ? `**Over the ${formatMs(ctx.budgetMs)} budget since ${over}.**`
        : `Budget ${formatMs(ctx.budgetMs)}: exceeded at ${over}.`;
  }
  const { sides } = status;
  const state = (writable: boolean) => (writable ? 'writable' : 'READ-ONLY');
  return [
    `## WRITES FROZEN since ${clockTime(since)}`,
    `${budget} The application points at the ${sides.application}; source ${state(sides.sourceWritable)}, target ${state(sides.targetWritable)}.`,
  ];
}

function gateLines(status: MigrationStatus, ctx: DetailsContext): string[] {
  const gate = status.pendingGate;
  if (!gate) return [];
  const who = gate.approvers?.length ? gate.approvers.join(', ') : 'anyone';
  const approver = gate.approvers?.length === 1 ? gate.approvers[0] : '<your name>';
  return [
    `### Waiting for the ${gate.gate} gate`,
    `Opened ${clockTime(gate.openedAt)}; **no decision by ${clockTime(gate.deadline)} means no-go** (everything is undone). May decide: ${who}.`,
    [
      '```',
      `npm run cli -- approve ${ctx.workflowId} --gate ${gate.gate} --approver ${approver}`,
      `npm run cli -- reject ${ctx.workflowId} --gate ${gate.gate} --approver ${approver} --reason "<why>"`,
      '```',
    ].join('\n'),
    `Or here: Send an Update \`approve\` (or \`reject\`) with \`{"approver": "${approver}", "gate": "${gate.gate}"}\`.`,
  ];
}

function replicationLine(status: MigrationStatus): string[] {
  const r = status.replication;
  if (!r || status.freezeWindow.frozenAt !== undefined) return [];
  const parts: string[] = [];
  if (r.tablesTotal) parts.push(`${r.tablesReady ?? 0}/${r.tablesTotal} tables ready`);
  if (r.lagSeconds !== undefined && r.lagSeconds !== null) parts.push(`lag ${r.lagSeconds.toFixed(1)} s`);
  if (r.lagChanges !== undefined && r.lagChanges !== null) parts.push(`${r.lagChanges} changes to apply`);
  if (r.caughtUp) parts.push('caught up');
  if (r.errors) parts.push('**errors: see status**');
  return parts.length ? [`**Replication:** ${parts.join(', ')} (at ${clockTime(r.updatedAt)})`] : [];
}

function compensationLine(status: MigrationStatus): string[] {
  const last = status.compensations[status.compensations.length - 1];
  if (!last) return [];
  const failed = status.compensations.filter((c) => c.state === 'failed').length;
  return [
    `**Last undo:** ${last.step} ${last.state} (${formatMs(last.durationMs)})${last.error ? `: ${last.error}` : ''}; ${status.compensations.length} run${failed ? `, **${failed} FAILED**` : ''}`,
  ];
}

function endLines(status: MigrationStatus, ctx: DetailsContext): string[] {
  if (!status.outcome) return [];
  const window = status.freezeWindow.durationMs !== undefined ? `; write freeze ${formatMs(status.freezeWindow.durationMs)}` : '';
  const label = status.outcome === 'completed' ? 'WENT LIVE' : status.outcome === 'rolled-back' ? 'ROLLED BACK' : 'FAILED';
  return [
    `## ${label}${window}`,
    ...(status.error ? [status.error] : []),
    `Report (Markdown + timeline): \`npm run cli -- report ${ctx.workflowId}\``,
  ];
}

/** The Markdown of the Temporal UI's current details. `frozenSince`: when writes froze, if they are frozen. */
export function renderDetails(
  status: MigrationStatus,
  ctx: DetailsContext,
  frozenSince: number | undefined,
  now: number,
  note?: string,
): string {
  const running = status.steps.filter((s) => s.state === 'running').map((s) => s.name);
  const head = `**${status.phase}**${note ? `: ${note}` : ''} · ${status.method ?? 'method not chosen yet'} · ${ctx.source} → ${ctx.target}`;
  const lines = [
    ...(frozenSince !== undefined ? frozenBanner(status, ctx, frozenSince, now) : []),
    head,
    ...(running.length ? [`**Running:** ${running.join(', ')}`] : []),
    ...(status.progress ? [`**Progress:** ${describeProgress(status.progress)}`] : []),
    ...replicationLine(status),
    ...(status.verification
      ? [`**Verification:** ${status.verification.state}${status.verification.detail ? `: ${status.verification.detail}` : ''}`]
      : []),
    ...gateLines(status, ctx),
    ...compensationLine(status),
    ...endLines(status, ctx),
  ];
  return lines.join('\n\n');
}

/** The details' fixed part, from the input (references only). */
export function detailsContext(
  input: { source: { url: SecretRef }; target: { url: SecretRef } },
  workflowId: string,
  budgetMs: number | undefined,
): DetailsContext {
  return {
    workflowId,
    source: describeRef(input.source.url),
    target: describeRef(input.target.url),
    ...(budgetMs !== undefined ? { budgetMs } : {}),
  };
}
