/**
 * Progress on the real stack: during a dump-restore copy big enough to take a few seconds, the `status`
 * query holds `progress` with percent, rate and ETA (sent by the copy activity through the `progress`
 * signal, throttled), the activity's heartbeat details carry the same shape, and the progress is gone
 * once the copy ended.
 */
import { defaultPayloadConverter, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkProgress, type StepProgress } from '../../contract/progress';
import { PROGRESS_EVERY_MS } from '../../activities/progress';
import { statusQuery, type MigrationResult, type MigrationStatus } from '../../signals';
import { historyText, openSandbox, type Sandbox } from '../helpers/harness';

/** Scale of the demo data: its copy (one job) outlasts two progress signals (3 s, then 10 s later) on the stack's 2 cores. */
const SCALE = Number(process.env.PROGRESS_TEST_SCALE ?? 12);

let sandbox: Sandbox;
let handle: WorkflowHandle;
let result: MigrationResult;
let finalStatus: MigrationStatus;
const inStatus: StepProgress[] = [];
const inHeartbeats: { progress: StepProgress; raw: Record<string, unknown> }[] = [];
let afterCopy: MigrationStatus | undefined;
let history: string;

async function heartbeatOf(h: WorkflowHandle, activity: string): Promise<Record<string, unknown> | undefined> {
  const description = await h.describe();
  const pending = description.raw.pendingActivities?.find((a) => a.activityType?.name === activity);
  const payload = pending?.heartbeatDetails?.payloads?.[0];
  return payload ? defaultPayloadConverter.fromPayload<Record<string, unknown>>(payload) : undefined;
}

beforeAll(async () => {
  sandbox = await openSandbox('progress', { scale: SCALE });
  handle = await sandbox.start(
    sandbox.input({ parallelJobs: 1, copy: { engine: 'pgcopydb' }, gates: { 'go-live': { timeout: '2m', approvers: ['alice'] } } }),
  );
  await handle.executeUpdate('approve', { args: [{ approver: 'alice', gate: 'go-live', reason: 'progress test' }] });
  // Watch the copy the way the CLI does: the status query and the pending activity's heartbeat.
  for (;;) {
    const status = await handle.query(statusQuery);
    const copy = status.steps.find((s) => s.name === 'copy');
    if (copy && copy.state !== 'running') {
      afterCopy = status;
      break;
    }
    if (status.progress) inStatus.push(status.progress);
    const raw = await heartbeatOf(handle, 'copyAndVerify').catch(() => undefined);
    const progress = raw && checkProgress(raw);
    if (progress) inHeartbeats.push({ progress, raw });
    if (status.outcome) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  result = (await handle.result()) as MigrationResult;
  finalStatus = await handle.query(statusQuery);
  history = await historyText(handle);
  if (process.env.PROGRESS_TEST_DEBUG) {
    console.log(JSON.stringify(finalStatus.steps.map((s) => [s.name, s.durationMs])));
    console.log(
      inHeartbeats
        .map((h) => `${h.progress.at} ${h.progress.percent} ${h.progress.ratePerSecond} ${h.progress.etaSeconds} ${h.progress.detail}`)
        .join('\n'),
    );
  }
}, 240_000);

afterAll(async () => {
  await sandbox?.close();
});

describe('progress of a dump-restore copy', () => {
  it('the migration completes, its copy long enough to report progress', () => {
    expect(result.outcome).toBe('completed');
    const copy = finalStatus.steps.find((s) => s.name === 'copy');
    expect(copy?.durationMs, 'the copy took a few seconds (raise PROGRESS_TEST_SCALE if not)').toBeGreaterThan(4_000);
  });

  it('the status query shows the copy with percent, rate and ETA while it runs', () => {
    expect(inStatus.length, 'status.progress seen during the copy').toBeGreaterThan(0);
    for (const p of inStatus) {
      expect(p.step).toBe('copy');
      expect(p.unit).toBe('bytes');
      expect(checkProgress(p)).toEqual(p);
    }
    const full = inStatus.find((p) => p.percent !== undefined && p.ratePerSecond !== undefined && p.etaSeconds !== undefined);
    expect(full, `a report with percent, rate and ETA among ${JSON.stringify(inStatus.slice(0, 3))}`).toBeDefined();
    expect(full!.percent).toBeGreaterThan(0);
    expect(full!.percent).toBeLessThanOrEqual(100);
    expect(full!.ratePerSecond).toBeGreaterThan(0);
    expect(full!.total).toBeGreaterThan(0);
    expect(full!.detail).toMatch(/^pgcopydb, 1 jobs: \d+\/\d+ tables copied, \d+ verified/);
  });

  it('the heartbeat details carry the same shape, with the copy engine fields beside it', () => {
    expect(inHeartbeats.length).toBeGreaterThan(0);
    const moving = inHeartbeats.filter((h) => h.progress.ratePerSecond !== undefined && h.progress.etaSeconds !== undefined);
    expect(moving.length, 'heartbeats with a rate and an ETA').toBeGreaterThan(0);
    for (const { progress, raw } of inHeartbeats) {
      expect(progress).toMatchObject({ step: 'copy', unit: 'bytes' });
      expect(raw).toMatchObject({ engine: 'pgcopydb', tablesTotal: expect.any(Number), tablesVerified: expect.any(Number) });
    }
  });

  it('the progress is gone once the copy ended, and the signals stayed few', () => {
    expect(afterCopy?.progress).toBeUndefined();
    expect(finalStatus.progress).toBeUndefined();
    const copyMs = finalStatus.steps.find((s) => s.name === 'copy')!.durationMs!;
    const signals = (history.match(/"signalName":"progress"/g) ?? []).length;
    expect(signals).toBeGreaterThan(0);
    expect(signals).toBeLessThanOrEqual(Math.ceil(copyMs / PROGRESS_EVERY_MS) + 1);
  });

  it('no secret in the progress', () => {
    const password = new URL(sandbox.sourceUrl).password;
    expect(password.length).toBeGreaterThan(0);
    expect(JSON.stringify([inStatus, inHeartbeats])).not.toContain(password);
  });
});
