/**
 * Follows a running migration: prints each step as it completes, copy progress from the activity
 * heartbeats, and at the go-live gate either approves (--auto-approve) or asks the person at the
 * terminal. Returns when the workflow closes.
 */
import { createInterface } from 'node:readline/promises';
import { defaultPayloadConverter, type WorkflowHandle } from '@temporalio/client';
import { describeCopyProgress, formatBytes, formatMs } from '../contract/plan';
import { approveUpdate, rejectUpdate, type MigrationStatus } from '../signals';
import { NoWorkerAnswer, queryStatus } from './inspect';

export interface FollowOptions {
  autoApprove: boolean;
  approver: string;
  /** Where lines go (the demo and tests capture them). */
  print: (line: string) => void;
  pollMs?: number;
}

async function heartbeatLine(handle: WorkflowHandle): Promise<string | undefined> {
  const description = await handle.describe();
  for (const activity of description.raw.pendingActivities ?? []) {
    const payload = activity.heartbeatDetails?.payloads?.[0];
    if (!payload) continue;
    const line = heartbeatText(
      activity.activityType?.name ?? 'activity',
      defaultPayloadConverter.fromPayload<Record<string, number | string>>(payload),
    );
    if (line) return line;
  }
  return undefined;
}

type Progress = Parameters<typeof describeCopyProgress>[0];

/** One line for a pending activity's last heartbeat details, by their shape. */
export function heartbeatText(name: string, d: Record<string, number | string>): string | undefined {
  // The triggers method's copy and apply (copyAndApply): the copy's percent, rate and ETA, then the apply's lag.
  const copy = (d as { copy?: Progress }).copy;
  if (copy) return `  ${name}: ${describeCopyProgress(copy)}`;
  // The freeze-copy (copyAndVerify): the engine's percent, rate and ETA, and the tables verified so far.
  if ('engine' in d && 'percent' in d) {
    const p = d as unknown as Progress & { engine: string; stage: string; tablesVerified: number };
    return `  ${name}: ${p.engine} ${describeCopyProgress(p)}, ${p.tablesVerified}/${p.tablesTotal} tables verified${p.stage === 'copying' ? '' : ` (${p.stage})`}`;
  }
  // pgcopydb's copy of a slot's snapshot (snapshotCopy): its percent, rate and ETA, and pgcopydb's current step.
  if ('percent' in d && 'bytesTotal' in d)
    return `  ${name}: ${describeCopyProgress(d as unknown as Progress)}${d.stage ? ` (${d.stage})` : ''}`;
  if ('pendingChanges' in d) return `  ${name}: ${d.stage}, lag ${d.pendingChanges} changes, ${Number(d.lagSeconds).toFixed(1)} s`;
  if ('stage' in d && 'tablesTotal' in d) {
    return `  ${name}: ${d.stage} ${d.tablesDone}/${d.tablesTotal} tables${Number(d.dumpBytes) ? `, dump ${formatBytes(Number(d.dumpBytes))}` : ''}, ${formatMs(Number(d.elapsedMs))}${Number(d.attempt) > 1 ? ` (attempt ${d.attempt})` : ''}`;
  }
  if ('tablesDone' in d) return `  ${name}: ${d.tablesDone}/${d.tablesTotal} tables`;
  return undefined;
}

async function ask(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

export async function followMigration(handle: WorkflowHandle, opts: FollowOptions): Promise<MigrationStatus | undefined> {
  const printedSteps = new Set<string>();
  let lastPhase = '';
  let lastBeat = '';
  const asked = new Set<string>();
  let unanswered = false;
  if (opts.autoApprove) {
    // Approve ahead of time: the gate then opens the moment verification and smoke tests pass,
    // so writes are not held frozen for a polling interval (or a person) at the gate.
    for (const gate of ['cutover', 'go-live']) {
      // A dump-restore has no cutover gate: its validator says so, and that is fine here.
      const decision = await handle
        .executeUpdate(approveUpdate, { args: [{ approver: opts.approver, gate, reason: '--auto-approve' }] })
        .catch(() => undefined);
      if (decision)
        opts.print(
          `  gate ${gate}: approved ahead of time by ${decision.approver} (--auto-approve); it applies once its automatic checks pass`,
        );
    }
  }
  for (;;) {
    let status: MigrationStatus | undefined;
    try {
      status = await queryStatus(handle);
      unanswered = false;
    } catch (err) {
      status = undefined; // the first workflow task has not run yet, or the worker is gone
      // Said once, not every poll: the workflow goes on when a worker comes back.
      if (err instanceof NoWorkerAnswer && !unanswered) opts.print(`  ${err.message}; waiting for one`);
      unanswered = err instanceof NoWorkerAnswer;
    }
    if (status) {
      if (status.phase !== lastPhase) {
        lastPhase = status.phase;
        opts.print(`- ${status.phase}`);
      }
      for (const step of status.steps) {
        const key = `${step.name}:${step.startedAt}`;
        if (step.state !== 'running' && !printedSteps.has(key)) {
          printedSteps.add(key);
          opts.print(
            `  ${step.state === 'completed' ? 'ok    ' : 'FAILED'} ${step.name.padEnd(20)} ${formatMs(step.durationMs ?? 0)}${step.error ? `  ${step.error}` : step.detail ? `  ${step.detail}` : ''}`,
          );
        }
      }
      if (status.pendingGate && !opts.autoApprove && !asked.has(status.pendingGate.gate)) {
        asked.add(status.pendingGate.gate);
        const gate = status.pendingGate.gate;
        // CDC methods report catalog differences without failing on them: the approver decides knowing them.
        if (gate === 'go-live') for (const d of status.catalogDifferences ?? []) opts.print(`  catalog: ${d}`);
        if (process.stdin.isTTY) {
          const question =
            gate === 'cutover'
              ? `  gate cutover is open (replication caught up; the application still writes). Freeze writes and cut over? [y/N] `
              : `  gate go-live is open (smoke tests passed, writes are frozen). Go live? [y/N] `;
          const go = await ask(question);
          const update = go ? approveUpdate : rejectUpdate;
          await handle.executeUpdate(update, { args: [{ approver: opts.approver, gate, reason: 'answered at the terminal' }] });
          opts.print(`  gate ${gate}: ${go ? 'approved' : 'rejected'} by ${opts.approver}`);
        } else {
          opts.print(
            `  gate ${gate} is open until ${status.pendingGate.deadline}: decide with \`npm run cli -- approve ${handle.workflowId} --gate ${gate} --approver <your name>\` (or \`reject\` with the same options)`,
          );
        }
      }
    }
    const beat = await heartbeatLine(handle).catch(() => undefined);
    if (beat && beat !== lastBeat) {
      lastBeat = beat;
      opts.print(beat);
    }
    const { status: wfStatus } = await handle.describe();
    if (wfStatus.name !== 'RUNNING') {
      return queryStatus(handle).catch(() => status);
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 300));
  }
}
