/**
 * Rehearsal schedules: created through the CLI (the real `npm run cli -- schedule create`), fired by
 * a trigger, running a rehearsal that records its scheduled time; paused, it starts nothing on its
 * own; unpaused, it does; a rehearsal cancelled mid-way still tears down; deleted, it is gone.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ScheduleNotFoundError, WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  deleteRehearsalSchedule,
  describeRehearsalSchedule,
  pauseRehearsalSchedule,
  rehearsalRunsOf,
  triggerRehearsalSchedule,
  unpauseRehearsalSchedule,
} from '../../cli/schedules';
import { RehearsalOutcomeKey, rehearsalStatusQuery } from '../../signals/rehearsal';
import { openSandbox, targetTableCount, type Sandbox } from '../helpers/harness';
import { leftovers, rehearsalInput, summaryOf } from '../helpers/rehearsal';
import { readReports } from '../../activities/rehearsal/store';

const run = promisify(execFile);
const repo = path.resolve(__dirname, '../..');

let sandbox: Sandbox;
let scheduleId: string;
let reportRoot: string;
let inputFile: string;
let config: string;

/** The CLI as an operator runs it (tsx), with this sandbox's task queue. */
async function cli(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(path.join(repo, 'node_modules/.bin/tsx'), ['cli/main.ts', ...args], {
    cwd: repo,
    env: { ...process.env, TEMPORAL_TASK_QUEUE: sandbox.taskQueue, TEMPORAL_ADDRESS: sandbox.env.TEMPORAL_ADDRESS },
    timeout: 30_000,
  });
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  sandbox = await openSandbox('schedules');
  scheduleId = `rehearsal-${sandbox.id.replace(/_/g, '-')}`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgmig-schedules-'));
  reportRoot = path.join(dir, 'reports');
  const migrationId = sandbox.input().migrationId!;
  inputFile = path.join(dir, 'rehearsal.json');
  writeFileSync(inputFile, JSON.stringify(rehearsalInput(sandbox, { reportDir: path.join(reportRoot, migrationId) }), null, 2));
  config = sandbox.configText();
});

afterAll(async () => {
  await deleteRehearsalSchedule(sandbox.client, scheduleId).catch(() => undefined);
  await sandbox?.close();
});

describe('rehearsal schedules', () => {
  it('are created through the CLI: interval spec, overlap skip, paused', async () => {
    const out = await cli(
      'schedule',
      'create',
      '--input',
      inputFile,
      '--id',
      scheduleId,
      '--interval',
      '2s',
      '--paused',
      '--note',
      'test schedule',
    );
    expect(out.stdout).toContain(`created schedule ${scheduleId} (paused)`);
    const d = await describeRehearsalSchedule(sandbox.client, scheduleId);
    expect(d.state.paused).toBe(true);
    expect(d.policies.overlap).toBe('SKIP');
    expect(d.spec.intervals?.[0]?.every).toBe(2_000);
    expect(d.action).toMatchObject({ type: 'startWorkflow', workflowType: 'rehearseMigration', taskQueue: sandbox.taskQueue });
    const bad = await cli('schedule', 'create', '--input', inputFile, '--id', `${scheduleId}-bad`, '--interval', 'soon').catch(
      (e: { stderr: string; code: number }) => e,
    );
    expect((bad as { code: number }).code).toBe(2);
    expect((bad as { stderr: string }).stderr).toMatch(/--interval: must be a positive duration/);
  });

  it('fires when triggered (even paused) and runs a rehearsal that records its scheduled time', async () => {
    await triggerRehearsalSchedule(sandbox.client, scheduleId);
    const first = await waitFor(
      'the triggered run',
      async () => (await describeRehearsalSchedule(sandbox.client, scheduleId)).info.recentActions[0],
    );
    const handle = sandbox.client.workflow.getHandle(first.action.workflow.workflowId, first.action.workflow.firstExecutionRunId);
    const { summary, error } = await summaryOf(handle);
    expect(error).toBeUndefined();
    expect(summary).toMatchObject({ outcome: 'passed', verdict: 'pass' });
    // TemporalScheduledStartTime is kept to the second
    expect(Math.abs(Date.parse(summary.scheduledAt!) - first.scheduledAt.getTime())).toBeLessThan(1_000);
    const [report] = await readReports(summary.report!.dir);
    expect(report).toMatchObject({ scheduledAt: summary.scheduledAt, scheduleId });
    expect((await handle.describe()).typedSearchAttributes.get(RehearsalOutcomeKey)).toBe('passed');
    expect(await targetTableCount(sandbox)).toBe(0);
    expect(sandbox.configText()).toBe(config);
    expect(await leftovers(sandbox.env, report.rehearsalId)).toEqual([]);
    const runs = await waitFor('the run in visibility', async () => {
      const r = await rehearsalRunsOf(sandbox.client, scheduleId);
      return r.length === 1 && r[0].outcome === 'passed' ? r : undefined;
    });
    expect(runs[0]).toMatchObject({ workflowId: first.action.workflow.workflowId, status: 'COMPLETED', outcome: 'passed' });
  });

  it('starts nothing on its own while paused', async () => {
    const before = await describeRehearsalSchedule(sandbox.client, scheduleId);
    expect(before.state.paused).toBe(true);
    await new Promise((r) => setTimeout(r, 5_000)); // 2.5 intervals
    const after = await describeRehearsalSchedule(sandbox.client, scheduleId);
    expect(after.state.paused).toBe(true);
    expect(after.info.numActionsTaken).toBe(before.info.numActionsTaken);
    expect(after.info.recentActions).toHaveLength(1);
  });

  it('runs on its interval once unpaused; a run cancelled mid-way still tears down', async () => {
    await unpauseRehearsalSchedule(sandbox.client, scheduleId);
    expect((await describeRehearsalSchedule(sandbox.client, scheduleId)).state.paused).toBe(false);
    const second = await waitFor(
      'a run on the interval',
      async () => (await describeRehearsalSchedule(sandbox.client, scheduleId)).info.recentActions[1],
      10_000,
    );
    await pauseRehearsalSchedule(sandbox.client, scheduleId, 'enough');
    const handle = sandbox.client.workflow.getHandle(second.action.workflow.workflowId, second.action.workflow.firstExecutionRunId);
    // Cancelled while the migration runs: the migration undoes its steps, then the rehearsal tears down.
    const status = await waitFor('the run to reach the migration', async () => {
      const s = await handle.query(rehearsalStatusQuery).catch(() => undefined);
      // The phase is set just before the child starts: wait for the child too, so the cancel reaches a running migration.
      return s?.phase === 'migrating' && s.childWorkflowId ? s : undefined;
    });
    await handle.cancel();
    const error = await handle.result().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect((error as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    const final = await handle.query(rehearsalStatusQuery);
    expect(final.outcome).toBe('cancelled');
    expect(final.teardown.length).toBeGreaterThan(0);
    expect(final.teardown.every((t) => t.state === 'completed')).toBe(true);
    expect((await handle.describe()).typedSearchAttributes.get(RehearsalOutcomeKey)).toBe('cancelled');
    expect(await leftovers(sandbox.env, status.rehearsalId)).toEqual([]);
    expect(await targetTableCount(sandbox)).toBe(0);
    expect(sandbox.configText()).toBe(config);
    const reports = await readReports(final.report!.dir);
    const report = reports.find((r) => r.rehearsalId === status.rehearsalId)!;
    expect(report).toMatchObject({
      outcome: 'cancelled',
      reasons: ['the rehearsal was cancelled'],
      childWorkflowId: status.childWorkflowId,
    });
    const child = await sandbox.client.workflow.getHandle(status.childWorkflowId!).describe();
    expect(child.status.name).toBe('CANCELLED');
    expect(report.compensations.every((c) => c.state === 'completed')).toBe(true);
  });

  it('are listed, and their reports are listed and shown, by the CLI', async () => {
    const list = await cli('schedule', 'list');
    expect(list.stdout).toMatch(new RegExp(`${scheduleId}\\s+PAUSED\\s+every 2s`));
    const reports = await cli('rehearsals', 'list', '--dir', reportRoot);
    expect(reports.stdout).toMatch(/passed/);
    expect(reports.stdout).toMatch(/cancelled/);
    const shown = await cli('rehearsals', 'show', 'latest', '--dir', reportRoot);
    expect(shown.stdout).toMatch(/# Rehearsal .*: CANCELLED/);
  });

  it('are deleted through the CLI', async () => {
    const out = await cli('schedule', 'delete', scheduleId);
    expect(out.stdout).toContain(`${scheduleId} deleted`);
    await expect(describeRehearsalSchedule(sandbox.client, scheduleId)).rejects.toBeInstanceOf(ScheduleNotFoundError);
  });
});
