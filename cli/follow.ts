/**
 * Follows a running migration: prints each step as it completes, the running step's progress (percent,
 * rate, ETA) from the activity heartbeats as a bar redrawn in place on a terminal or plain lines otherwise,
 * and at the go-live gate either approves (--auto-approve) or asks the person at the
 * terminal. Returns when the workflow closes.
 */
import { createInterface } from 'node:readline/promises';
import { defaultPayloadConverter, type WorkflowHandle } from '@temporalio/client';
import { describeCopyProgress, formatBytes, formatMs } from '../contract/plan';
import { checkProgress, describeProgress, progressBar, type StepProgress } from '../contract/progress';
import { approveUpdate, rejectUpdate, type MigrationStatus } from '../signals';
import { NoWorkerAnswer, queryStatus } from './inspect';

export interface FollowOptions {
  autoApprove: boolean;
  approver: string;
  /** Where lines go (the demo and tests capture them). */
  print: (line: string) => void;
  /** Progress as a bar redrawn in place on stdout (a terminal); plain lines through `print` otherwise. */
  redraw?: boolean;
  pollMs?: number;
}

/** The first pending activity's heartbeat that says something: its line, and its progress when it carries one. */
async function heartbeatLine(handle: WorkflowHandle): Promise<{ name: string; text: string; progress?: StepProgress } | undefined> {
  const description = await handle.describe();
  for (const activity of description.raw.pendingActivities ?? []) {
    const payload = activity.heartbeatDetails?.payloads?.[0];
    if (!payload) continue;
    const name = activity.activityType?.name ?? 'activity';
    const details = defaultPayloadConverter.fromPayload<Record<string, number | string>>(payload);
    const text = heartbeatText(name, details);
    if (text) return { name, text, progress: checkProgress(details) };
  }
  return undefined;
}

/** How often plain lines (not a terminal) repeat the same step's progress. */
export const PLAIN_PROGRESS_EVERY_MS = 5_000;

/**
 * Where follow's lines go: progress redrawn in place on one line of a terminal (`redraw`), or as plain
 * lines at most every `PLAIN_PROGRESS_EVERY_MS` per step otherwise; any other line first ends the bar.
 */
export function progressPrinter(
  print: (line: string) => void,
  redraw: boolean,
  write: (s: string) => void = (s) => void process.stdout.write(s),
  now: () => number = Date.now,
) {
  let drawn = false;
  let last: { key: string; at: number; text: string } | undefined;
  const clear = () => {
    if (drawn) write('\r\x1b[K');
    drawn = false;
  };
  return {
    /** A progress report of activity `name`: `text` is its line without a bar. */
    progress(name: string, text: string, progress?: StepProgress): void {
      if (redraw) {
        const bar = progress?.percent !== undefined ? `${progressBar(progress.percent)} ` : '';
        const width = Math.max(40, (process.stdout.columns ?? 120) - 1);
        write(`\r${`  ${name} ${bar}${progress ? describeProgress(progress) : text.trim()}`.slice(0, width)}\x1b[K`);
        drawn = true;
        return;
      }
      const key = `${name}/${progress?.step ?? ''}`;
      if (last && last.text === text) return;
      if (last && last.key === key && now() - last.at < PLAIN_PROGRESS_EVERY_MS) return;
      last = { key, at: now(), text };
      print(text);
    },
    line(text: string): void {
      clear();
      print(text);
    },
    clear,
  };
}

type Progress = Parameters<typeof describeCopyProgress>[0];

/** One line for a pending activity's last heartbeat details, by their shape. */
export function heartbeatText(name: string, d: Record<string, number | string>): string | undefined {
  // Every long step's progress now (activities/progress.ts): percent, rate, ETA and what the step adds.
  const progress = checkProgress(d);
  if (progress) return `  ${name}: ${describeProgress(progress)}`;
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
  const out = progressPrinter(opts.print, !!opts.redraw);
  const printedSteps = new Set<string>();
  let lastPhase = '';
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
        out.line(
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
      if (err instanceof NoWorkerAnswer && !unanswered) out.line(`  ${err.message}; waiting for one`);
      unanswered = err instanceof NoWorkerAnswer;
    }
    if (status) {
      if (status.phase !== lastPhase) {
        lastPhase = status.phase;
        out.line(`- ${status.phase}`);
      }
      for (const step of status.steps) {
        const key = `${step.name}:${step.startedAt}`;
        if (step.state !== 'running' && !printedSteps.has(key)) {
          printedSteps.add(key);
          out.line(
            `  ${step.state === 'completed' ? 'ok    ' : 'FAILED'} ${step.name.padEnd(20)} ${formatMs(step.durationMs ?? 0)}${step.error ? `  ${step.error}` : step.detail ? `  ${step.detail}` : ''}`,
          );
        }
      }
      if (status.pendingGate && !opts.autoApprove && !asked.has(status.pendingGate.gate)) {
        asked.add(status.pendingGate.gate);
        const gate = status.pendingGate.gate;
        // CDC methods report catalog differences without failing on them: the approver decides knowing them.
        if (gate === 'go-live') for (const d of status.catalogDifferences ?? []) out.line(`  catalog: ${d}`);
        if (process.stdin.isTTY) {
          const question =
            gate === 'cutover'
              ? `  gate cutover is open (replication caught up; the application still writes). Freeze writes and cut over? [y/N] `
              : `  gate go-live is open (smoke tests passed, writes are frozen). Go live? [y/N] `;
          out.clear();
          const go = await ask(question);
          const update = go ? approveUpdate : rejectUpdate;
          await handle.executeUpdate(update, { args: [{ approver: opts.approver, gate, reason: 'answered at the terminal' }] });
          out.line(`  gate ${gate}: ${go ? 'approved' : 'rejected'} by ${opts.approver}`);
        } else {
          out.line(
            `  gate ${gate} is open until ${status.pendingGate.deadline}: decide with \`npm run cli -- approve ${handle.workflowId} --gate ${gate} --approver <your name>\` (or \`reject\` with the same options)`,
          );
        }
      }
    }
    const beat = await heartbeatLine(handle).catch(() => undefined);
    if (beat) out.progress(beat.name, beat.text, beat.progress);
    const { status: wfStatus } = await handle.describe();
    if (wfStatus.name !== 'RUNNING') {
      out.clear();
      return queryStatus(handle).catch(() => status);
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 300));
  }
}
