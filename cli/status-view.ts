/**
 * `status <workflowId>` for a person: a few lines (phase, method, the write-freeze window, the gate,
 * the running step's progress with percent, rate and ETA, the last steps, the outcome). The whole status
 * (plan, inventory, every step) is behind `--json`.
 */
import { formatMs } from '../contract/plan';
import { describeProgress, progressBar, type StepProgress } from '../contract/progress';
import type { MigrationStatus } from '../signals';

/** How many of the latest steps the compact view shows. */
export const LAST_STEPS = 5;

const clock = (ms: number) => new Date(ms).toISOString().slice(11, 19);

/** The progress in one line: a bar when the percent is known, then percent, amounts, rate, ETA and detail. */
export function progressLine(p: StepProgress): string {
  return `${p.percent !== undefined ? `${progressBar(p.percent)} ` : ''}${describeProgress(p)}`;
}

function windowLine(status: MigrationStatus, nowMs: number): string {
  const fw = status.freezeWindow;
  const estimate = status.plan ? `; estimated ${formatMs(status.plan.estimatedDowntimeMs)}` : '';
  if (fw.frozenAt !== undefined && fw.unfrozenAt === undefined) {
    return `writes     FROZEN since ${clock(fw.frozenAt)} UTC (${formatMs(nowMs - fw.frozenAt)}${estimate})`;
  }
  if (fw.durationMs !== undefined) {
    const gate = fw.gateWaitMs !== undefined ? `, of which ${formatMs(fw.gateWaitMs)} at the go-live gate` : '';
    return `writes     frozen for ${formatMs(fw.durationMs)}${gate}`;
  }
  const refusing = [!status.sides.sourceWritable && 'source', !status.sides.targetWritable && 'target'].filter(Boolean);
  return `writes     ${refusing.length ? `refused by the ${refusing.join(' and ')}` : 'not frozen'}${estimate ? ` (window${estimate})` : ''}`;
}

/** The compact view's lines; `nowMs` (the time the status was read) measures how long writes have been frozen. */
export function statusLines(status: MigrationStatus, workflowId: string, nowMs: number = Date.now()): string[] {
  const lines = [
    `${status.migrationId}  ${status.phase}${status.method ? `  (${status.method})` : ''}${status.outcome ? `  outcome ${status.outcome}` : ''}`,
  ];
  if (status.error) lines.push(`error      ${status.error}`);
  lines.push(windowLine(status, nowMs));
  const gate = status.pendingGate;
  if (gate) {
    const who = gate.approvers?.length ? ` by ${gate.approvers.join(', ')}` : '';
    lines.push(`gate       ${gate.gate} open until ${gate.deadline}${who}`);
    lines.push(`           npm run cli -- approve ${workflowId} --gate ${gate.gate} --approver <your name>   (or reject)`);
  }
  if (status.progress) lines.push(`progress   ${progressLine(status.progress)}`);
  if (status.replication && !status.progress) {
    const r = status.replication;
    const lag = [
      r.lagChanges != null && `${r.lagChanges} changes`,
      r.lagBytes != null && `${r.lagBytes} bytes`,
      r.lagSeconds != null && `${r.lagSeconds} s`,
    ]
      .filter(Boolean)
      .join(', ');
    lines.push(
      `replication ${r.tablesReady ?? '?'}/${r.tablesTotal ?? '?'} tables ready${lag ? `, lag ${lag}` : ''}${r.caughtUp ? ', caught up' : ''}`,
    );
  }
  if (status.verification)
    lines.push(`verify     ${status.verification.state}${status.verification.detail ? `: ${status.verification.detail}` : ''}`);
  const blockers = status.plan?.blockers ?? [];
  for (const b of blockers) lines.push(`BLOCKER    ${b}`);
  const shown = status.steps.slice(-LAST_STEPS);
  lines.push(`steps      ${status.steps.length > shown.length ? `last ${shown.length} of ${status.steps.length}` : `${shown.length}`}`);
  for (const s of shown) {
    const took = s.durationMs !== undefined ? formatMs(s.durationMs) : '...';
    const note = s.error ? `  ${s.error}` : s.detail ? `  ${s.detail}` : '';
    lines.push(`  ${s.state.padEnd(9)} ${s.name.padEnd(22)} ${took}${note}`);
  }
  for (const d of status.decisions.slice(-2)) {
    lines.push(`decision   ${d.gate}: ${d.approved ? 'go' : 'no-go'} by ${d.approver} (${d.via})${d.reason ? ` ${d.reason}` : ''}`);
  }
  if (status.refusedDecisions.length) lines.push(`refused    ${status.refusedDecisions.length} signal(s): see --json`);
  const undone = status.compensations;
  if (undone.length) {
    const failed = undone.filter((c) => c.state === 'failed');
    lines.push(
      `undo       ${undone.length} step(s)${failed.length ? `, FAILED: ${failed.map((c) => `${c.step}${c.error ? ` (${c.error})` : ''}`).join('; ')}` : ', all completed'}`,
    );
  }
  const warnings = status.plan?.warnings.length ?? 0;
  if (warnings) lines.push(`plan       ${warnings} warning(s); the plan, inventory and every step: status ${workflowId} --json`);
  else lines.push(`more       status ${workflowId} --json`);
  return lines;
}
