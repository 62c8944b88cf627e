/**
 * rehearseMigration on the real stack: a logical snapshot (pg_dump of the sandbox's source into
 * scratch databases), the migration as a child against them, teardown and the report.
 * The real target stays empty, the real config file byte-identical, the real source untouched, and
 * no scratch database, replication slot or subscription survives: not after a pass, not after a
 * migration that failed midway, not when the migration's own compensation could not drop its
 * replication.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stagingDir } from '../../activities/rehearsal';
import { AUTOMATIC_APPROVER } from '../../contract/rehearsal';
import { OVERHEAD_PHASE, sumOfPhases } from '../../contract/rehearsal-report';
import { statusQuery } from '../../signals';
import { RehearsalOutcomeKey } from '../../signals/rehearsal';
import {
  failingAfter,
  historyText,
  openSandbox,
  recordHistory,
  readOnlySettings,
  sourceWritable,
  targetTableCount,
  type Sandbox,
} from '../helpers/harness';
import { leftovers, rehearsalInput, runRehearsal, scratchRefs, type RehearsalRun } from '../helpers/rehearsal';

let sandbox: Sandbox;
let reportDir: string;
let before: { config: string; sourceSettings: string[] };
let passed: RehearsalRun;

beforeAll(async () => {
  sandbox = await openSandbox('rehearsal');
  reportDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgmig-rehearsal-reports-')), sandbox.input().migrationId!);
  before = { config: sandbox.configText(), sourceSettings: await readOnlySettings(sandbox.sourceAdminUrl) };
  passed = await runRehearsal(sandbox, rehearsalInput(sandbox, { reportDir }));
});

afterAll(async () => {
  await sandbox?.close();
});

async function expectProductionUntouched(): Promise<void> {
  expect(await targetTableCount(sandbox)).toBe(0);
  expect(sandbox.configText()).toBe(before.config);
  expect(await sourceWritable(sandbox)).toBe(true);
  expect(await readOnlySettings(sandbox.sourceAdminUrl)).toEqual(before.sourceSettings);
}

describe('a rehearsal of the demo migration (dump-restore on a logical snapshot)', () => {
  it('passes, with phase timings that add up to the measured total', () => {
    const { report, summary } = passed;
    expect(summary).toMatchObject({ outcome: 'passed', verdict: 'pass', reasons: [] });
    expect(report.method).toBe('dump-restore');
    expect(sumOfPhases(report.phases)).toBe(report.totalMs);
    const overhead = report.phases.find((p) => p.name === OVERHEAD_PHASE)!;
    expect(overhead.durationMs).toBeGreaterThanOrEqual(0);
    expect(overhead.durationMs).toBeLessThan(report.totalMs / 2);
    expect(report.phases.map((p) => p.name)).toEqual([
      'snapshot',
      'preflight',
      'freeze-source',
      'copy',
      'reconcile-sequences',
      'replay-roles',
      'freeze-target',
      'swap-config',
      'smoke-test',
      'go-live',
      'release-config',
      'teardown',
      OVERHEAD_PHASE,
    ]);
    console.log(
      `rehearsal ${report.rehearsalId}: total ${report.totalMs} ms (${report.phases.map((p) => `${p.name} ${p.durationMs}`).join(', ')}); window ${report.freezeWindow.rehearsedWindowMs} ms; publishable ${report.publishableDowntimeMs} ms; copy ${report.copy.bytesPerSecond} B/s`,
    );
  });

  it('reports the window, publishable downtime, throughput, verification and budget', () => {
    const { report } = passed;
    const window = report.freezeWindow.rehearsedWindowMs!;
    expect(window).toBeGreaterThan(0);
    expect(report.publishableDowntimeMs).toBe(window + Math.ceil(window * 0.5));
    expect(report.budget).toEqual({ value: '10m', ms: 600_000, withinBudget: true });
    expect(report.copy.bytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(report.copy.bytesPerSecond).toBeGreaterThan(0);
    expect(report.verification).toBe('passed');
    expect(report.rowsCopied).toBeGreaterThan(100_000);
    expect(report.lagAtCutover).toBeUndefined();
    expect(report.trend?.direction).toBe('first');
    expect(report.notes.join('\n')).toMatch(/approver lists are not applied/);
  });

  it('records the approvals as automatic, in the migration itself', async () => {
    const { report } = passed;
    expect(report.approvals).toHaveLength(1);
    expect(report.approvals[0]).toMatchObject({ gate: 'go-live', approved: true, approver: AUTOMATIC_APPROVER, via: 'signal' });
    expect(report.approvals[0].reason).toMatch(/granted automatically by rehearsal/);
    const childStatus = await sandbox.client.workflow.getHandle(report.childWorkflowId!).query(statusQuery);
    expect(childStatus.decisions.map((d) => d.approver)).toEqual([AUTOMATIC_APPROVER]);
    expect(childStatus.refusedDecisions).toEqual([]);
  });

  it('touches neither the real target nor the real config sink, nor the real source', async () => {
    await expectProductionUntouched();
  });

  it('leaves no scratch database, replication slot, subscription or staging file behind', async () => {
    expect(await leftovers(sandbox.env, passed.report.rehearsalId)).toEqual([]);
    expect(existsSync(stagingDir(passed.report.rehearsalId))).toBe(false);
    expect(passed.report.teardown.map((t) => [t.step, t.state])).toEqual([
      ['drop-scratch-target', 'completed'],
      ['drop-scratch-source', 'completed'],
      ['remove-staging-files', 'completed'],
    ]);
    expect(passed.report.teardown[0].done).toContain(`database rehearsal_${passed.report.rehearsalId.replace(/-/g, '_')}_tgt dropped`);
  });

  it('keeps passwords out of the history of the rehearsal and of its migration', async () => {
    await recordHistory(passed.handle, 'rehearsal-passed');
    const texts = [await historyText(passed.handle), await historyText(sandbox.client.workflow.getHandle(passed.report.childWorkflowId!))];
    for (const url of [sandbox.sourceUrl, sandbox.targetUrl, sandbox.env.TARGET_ADMIN_URL]) {
      for (const text of texts) expect(text).not.toContain(decodeURIComponent(new URL(url).password));
    }
  });

  it('writes JSON, Markdown and an SVG chart, and marks the run in the UI', async () => {
    const files = passed.summary.report!;
    expect(readFileSync(files.markdown, 'utf8')).toContain(`# Rehearsal ${passed.report.rehearsalId}`);
    expect(readFileSync(files.chart, 'utf8')).toMatch(/^<svg/);
    const described = await passed.handle.describe();
    expect(described.typedSearchAttributes.get(RehearsalOutcomeKey)).toBe('passed');
  });
});

describe('the downtime budget check', () => {
  it('fails the report when the budget is smaller than the rehearsed window, and shows the trend', async () => {
    const run = await runRehearsal(sandbox, rehearsalInput(sandbox, { reportDir, migration: { downtimeBudget: '100ms' } }));
    expect(run.error).toBeUndefined(); // the rehearsal itself worked: it measured a window that does not fit
    expect(run.report.rehearsalId).not.toBe(passed.report.rehearsalId);
    expect(run.summary).toMatchObject({ outcome: 'over-budget', verdict: 'fail', withinBudget: false, budget: '100ms' });
    expect(run.report.freezeWindow.rehearsedWindowMs).toBeGreaterThan(100);
    expect(run.report.reasons[0]).toMatch(/^publishable downtime .* exceeds downtimeBudget 100ms$/);
    expect(run.report.trend).toMatchObject({
      previousRehearsals: 1,
      comparable: 1,
      lastWindowMs: passed.report.freezeWindow.rehearsedWindowMs,
    });
    expect((await run.handle.describe()).typedSearchAttributes.get(RehearsalOutcomeKey)).toBe('over-budget');
    expect(readFileSync(run.summary.report!.markdown, 'utf8')).toContain('FAILED: over the downtime budget');
    // the chart now has both rehearsals
    expect(readFileSync(run.summary.report!.chart, 'utf8').match(/write-freeze window \d/g)).toHaveLength(2);
    expect(await leftovers(sandbox.env, run.report.rehearsalId)).toEqual([]);
  });
});

describe('a rehearsal that fails midway', () => {
  it('tears everything down and reports why', async () => {
    await sandbox.useActivities(failingAfter(sandbox.realActivities, 'smokeTest'));
    try {
      const run = await runRehearsal(sandbox, rehearsalInput(sandbox, { reportDir }));
      expect(run.error?.cause).toBeInstanceOf(ApplicationFailure);
      expect((run.error!.cause as ApplicationFailure).type).toBe('RehearsalFailed');
      expect(run.error!.cause!.message).toMatch(/failed: the migration failed at step smoke-test: injected failure after smokeTest/);
      expect(run.summary).toMatchObject({ outcome: 'failed', verdict: 'fail' });
      expect(run.report.failure).toBeUndefined();
      expect(run.report.reasons[0]).toBe('the migration failed at step smoke-test: injected failure after smokeTest');
      expect(run.report.publishableDowntimeMs).toBeUndefined();
      expect(run.report.compensations.map((c) => [c.step, c.state])).toEqual([
        ['restore-config', 'completed'],
        ['unfreeze-source', 'completed'],
        ['unfreeze-target', 'completed'],
        ['undo-roles', 'completed'],
        ['reset-target', 'completed'],
      ]);
      expect(sumOfPhases(run.report.phases)).toBe(run.report.totalMs);
      expect(readFileSync(run.summary.report!.markdown, 'utf8')).toMatch(/## Why it failed\n\n- the migration failed at step smoke-test/);
      expect((await run.handle.describe()).typedSearchAttributes.get(RehearsalOutcomeKey)).toBe('failed');
      expect(await leftovers(sandbox.env, run.report.rehearsalId)).toEqual([]);
      expect(existsSync(stagingDir(run.report.rehearsalId))).toBe(false);
      await expectProductionUntouched();
    } finally {
      await sandbox.useActivities(sandbox.realActivities);
    }
  });

  it('drops the replication a failed logical migration could not drop itself (slot, subscription)', async () => {
    const real = sandbox.realActivities;
    await sandbox.useActivities({
      ...failingAfter(real, 'startReplication'),
      // the migration's own undo fails: the subscription on the scratch target and the slot on the scratch source stay
      stopReplication: async () => {
        throw ApplicationFailure.nonRetryable('injected: the undo could not drop the replication', 'InjectedFailure');
      },
    });
    try {
      const refs = scratchRefs(sandbox);
      const input = rehearsalInput(sandbox, {
        reportDir,
        migration: sandbox.logicalInput({ downtimeBudget: '10m' }),
        extra: { snapshot: { type: 'logical', scratch: { env: refs.source }, scratchTarget: { env: refs.target } } },
      });
      const run = await runRehearsal(sandbox, input);
      expect(run.report.method).toBe('logical');
      expect(run.summary.outcome).toBe('failed');
      expect(run.report.reasons[0]).toMatch(/the migration failed at step start-replication: injected failure after startReplication/);
      expect(run.report.reasons.join('\n')).toMatch(
        /compensation failed: stop-replication \(injected: the undo could not drop the replication\)/,
      );
      const done = run.report.teardown.flatMap((t) => t.done ?? []);
      expect(done.some((d) => /^subscription pgmig_rh_.* dropped$/.test(d))).toBe(true);
      expect(done.some((d) => /^replication slot pgmig_rh_.* dropped$/.test(d))).toBe(true);
      expect(await leftovers(sandbox.env, run.report.rehearsalId)).toEqual([]);
      await expectProductionUntouched();
    } finally {
      await sandbox.useActivities(sandbox.realActivities);
    }
  });
});
