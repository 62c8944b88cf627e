/**
 * The `triggers` method from a Heroku-like source: a failure injected right after each forward step
 * (the schema, the capture, the initial copy, the indexes, the freeze, the copy-and-apply's own end at
 * the drain), a change the target refuses, a cancellation in the middle of the copy and a no-go at
 * the cutover gate each roll the migration back, while the stand-in application writes. Afterwards
 * no trigger, function or schema of the migration is left on the source, no session or lock of it is
 * held there, the source is writable with its settings as found and the application still writes to
 * it, and the target is empty. One sandbox serves every case in turn.
 */
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MigrationActivities } from '../../activities';
import { captureNames } from '../../activities/methods/triggers/names';
import { appName } from '../../activities/names';
import { approveUpdate, rejectUpdate, statusQuery, type MigrationResult, type MigrationStatus } from '../../signals';
import { AppWriter, type WriterStats } from '../../stack/app-writer';
import {
  failingAfter,
  migrationObjects,
  migrationSessions,
  openSandbox,
  query,
  readOnlySettings,
  sourceWritable,
  targetTableCount,
  untilStatus,
  type Sandbox,
} from '../helpers/harness';
import { migrationResult } from '../../signals/outcome';

let sandbox: Sandbox;
let before: { config: string; sourceSettings: string[] };
let runs = 0;

beforeAll(async () => {
  sandbox = await openSandbox('trigcomp', { heroku: true });
  before = { config: sandbox.configText(), sourceSettings: await readOnlySettings(sandbox.sourceAdminUrl) };
});

afterAll(async () => {
  await sandbox?.close();
});

/** Everything a rolled-back migration must leave as it found it. */
async function expectNothingLeft(): Promise<void> {
  // The source: no trigger, function or schema of the capture (or of the markers).
  expect(await migrationObjects(sandbox.sourceAdminUrl)).toEqual({ triggers: [], schemas: [], functions: [] });
  // No session of the migration, hence no lock of it, in the source database.
  expect(await migrationSessions(sandbox.sourceAdminUrl)).toEqual([]);
  expect(
    await query(
      sandbox.sourceAdminUrl,
      `SELECT l.pid, l.mode, l.relation::regclass::text AS rel FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND a.application_name LIKE 'pgmig-%'`,
    ),
  ).toEqual([]);
  // Writable again, with the settings it had, and the application's config on it.
  expect(await sourceWritable(sandbox)).toBe(true);
  expect(await readOnlySettings(sandbox.sourceAdminUrl)).toEqual(before.sourceSettings);
  expect(sandbox.configText()).toBe(before.config);
  // The target reset: no user table, nothing of the migration.
  expect(await targetTableCount(sandbox)).toBe(0);
  expect(await migrationObjects(sandbox.targetAdminUrl)).toEqual({ triggers: [], schemas: [], functions: [] });
}

interface Run {
  handle: WorkflowHandle;
  migrationId: string;
  outcome: { result?: MigrationResult; error?: unknown };
  status: MigrationStatus;
  writes: WriterStats;
  /** What the application acknowledged after the rollback, and where. */
  afterRollback: WriterStats['acked'];
}

/**
 * One migration while the stand-in application writes (inserts, updates, deletes every 10 ms):
 * `during` drives it (gates, faults) once it started; the application writes on for a moment after
 * the migration ended, so its writes after the rollback can be checked.
 */
async function migrate(
  activities: object,
  during: (handle: WorkflowHandle, migrationId: string) => Promise<void>,
  overrides: Parameters<Sandbox['triggersInput']>[0] = {},
): Promise<Run> {
  await sandbox.resetForNextMigration();
  await sandbox.useActivities(activities);
  runs += 1;
  const migrationId = `${sandbox.input().migrationId}-${runs}`;
  const app = new AppWriter(() => sandbox.configuredUrl(), 10, true);
  app.start();
  try {
    await new Promise((r) => setTimeout(r, 200));
    const handle = await sandbox.start(sandbox.triggersInput({ migrationId, ...overrides }));
    await during(handle, migrationId);
    const outcome = await migrationResult(handle).then(
      (result) => ({ result }),
      (error: unknown) => ({ error }),
    );
    const ended = Date.now();
    await new Promise((r) => setTimeout(r, 400));
    const writes = await app.stop();
    const status = await handle.query(statusQuery);
    console.log(
      `[triggers-compensation] ${migrationId}: ${status.steps.map((s) => `${s.name} ${s.state} ${s.durationMs ?? '?'}ms`).join(', ')}` +
        ` | undos ${status.compensations.map((c) => `${c.step} ${c.state} ${c.durationMs}ms`).join(', ')}` +
        ` | ${'error' in outcome ? (outcome.error as Error).message : outcome.result?.outcome} | ${writes.failures} refused writes`,
    );
    return {
      handle,
      migrationId,
      outcome,
      status,
      writes,
      afterRollback: writes.acked.filter((w) => w.sentAt > ended),
    };
  } finally {
    await app.stop();
  }
}

/** A run that failed with the injected (or provoked) failure, every undo completed, nothing left. */
async function expectRolledBackAfterFailure(run: Run, failure: string | RegExp): Promise<void> {
  expect(run.outcome.error).toBeInstanceOf(WorkflowFailedError);
  const message = (run.outcome.error as WorkflowFailedError).cause?.message ?? '';
  if (typeof failure === 'string') expect(message).toContain(failure);
  else expect(message).toMatch(failure);
  expect(run.status.outcome).toBe('failed');
  expect(run.status.compensations.length).toBeGreaterThan(0);
  expect(run.status.compensations.filter((c) => c.state !== 'completed')).toEqual([]);
  await expectApplicationBackOnTheSource(run);
  await expectNothingLeft();
}

/** The application's writes after the rollback were acknowledged by the source (and not refused). */
async function expectApplicationBackOnTheSource(run: Run): Promise<void> {
  const source = new URL(sandbox.sourceUrl);
  expect(run.afterRollback.length).toBeGreaterThan(5);
  expect(new Set(run.afterRollback.map((w) => w.database))).toEqual(new Set([`${source.hostname}:${source.port}${source.pathname}`]));
  const [n] = await query<{ n: number }>(
    sandbox.sourceAdminUrl,
    `SELECT count(*)::int AS n FROM public.audit_log WHERE event = 'app-write' AND (payload->>'seq')::int = ANY($1)`,
    [run.afterRollback.map((w) => w.seq)],
  );
  expect(n.n).toBe(run.afterRollback.length);
}

const approve = (handle: WorkflowHandle, gate: string) => handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate }] });

/** The capture in place on the source: the migration's four triggers on every table. */
async function captureTriggers(migrationId: string): Promise<number> {
  const [n] = await query<{ n: number }>(sandbox.sourceAdminUrl, `SELECT count(*)::int AS n FROM pg_trigger WHERE tgname LIKE $1`, [
    `${captureNames(migrationId, 'forward').triggerPrefix.replace(/_/g, '\\_')}%`,
  ]);
  return n.n;
}

describe('triggers method: compensation', () => {
  // Steps before the cutover gate: nothing has to be approved.
  const beforeGate: (keyof MigrationActivities)[] = ['copySchema', 'startReplication', 'waitForReplication', 'copySchemaAfterData'];
  for (const step of beforeGate) {
    it(`leaves nothing behind when ${step} fails right after doing its work`, async () => {
      const run = await migrate(failingAfter(sandbox.realActivities, step), () => Promise.resolve());
      expect(run.status.steps.find((s) => s.state === 'failed')?.name).toBe(
        {
          copySchema: 'copy-schema',
          startReplication: 'start-replication',
          waitForReplication: 'initial-copy',
          copySchemaAfterData: 'indexes',
        }[step as string],
      );
      // The copy and apply beside the workflow, once started, was stopped (and ended) by the rollback.
      expect(await follower(run.handle)).toBe(['copySchema', 'startReplication'].includes(step) ? 'not-started' : 'cancelled');
      // No write was refused: the application never noticed the migration, nor its rollback.
      expect(run.writes.failures).toBe(0);
      await expectRolledBackAfterFailure(run, `injected failure after ${step}`);
    });
  }

  it('leaves nothing behind when the source freeze fails right after freezing (the apply running, the marker not yet sent)', async () => {
    const run = await migrate(failingAfter(sandbox.realActivities, 'freezeSource'), async (handle) => {
      await approve(handle, 'cutover');
    });
    expect(run.status.steps.find((s) => s.state === 'failed')?.name).toBe('freeze-source');
    expect(run.status.freezeWindow.frozenAt).toBeGreaterThan(0);
    expect(await follower(run.handle)).toBe('cancelled');
    await expectRolledBackAfterFailure(run, 'injected failure after freezeSource');
  });

  it('leaves nothing behind when copyAndApply fails right after it ended at the drain marker (inside the window)', async () => {
    const run = await migrate(failingAfter(sandbox.realActivities, 'copyAndApply'), async (handle) => {
      await approve(handle, 'cutover');
    });
    expect(run.status.steps.filter((s) => s.state === 'completed').map((s) => s.name)).toContain('drain');
    expect(run.status.steps.find((s) => s.state === 'failed')?.name).toBe('apply-exit');
    expect(await follower(run.handle)).toBe('failed');
    await expectRolledBackAfterFailure(run, 'injected failure after copyAndApply');
  });

  describe('a change the target refuses: copyAndApply fails by itself while the migration waits at the cutover gate', () => {
    let run: Run;
    beforeAll(async () => {
      // After the copy (the target has its tables) the target starts refusing the application's inserts: the
      // apply tries the change three times, then copyAndApply fails (non-retryable) naming the change. The
      // migration is at the cutover gate by then, which its failure ends (the approval below finds the gate closed).
      const refuse = `ALTER TABLE public.audit_log ADD CONSTRAINT pgmig_test_refuses CHECK (event <> 'app-write') NOT VALID`;
      run = await migrate(
        sandbox.realActivities,
        async (handle) => {
          await untilStatus(handle, (s) => s.pendingGate?.gate === 'cutover', 'the cutover gate');
          await query(sandbox.targetAdminUrl, refuse);
          await untilApplyFailed(handle);
          await new Promise((r) => setTimeout(r, 1000));
          await approve(handle, 'cutover').catch(() => undefined);
        },
        // The drain waits for a marker the dead apply never brings: 3 s instead of the default 30 s.
        { replication: { tablesWithoutPrimaryKey: 'replica-identity-full', drainTimeout: '3s' } },
      );
    });

    it('rolls back and leaves nothing behind', async () => {
      expect(await follower(run.handle)).toBe('failed');
      await expectRolledBackAfterFailure(run, /cannot apply change \d+ of the log to "public"\."audit_log"/);
    });

    // The cutover gate's wait ends with the follower's failure: nothing is frozen for a dead apply.
    it('surfaces the dead apply without freezing the source, naming the refused change', () => {
      expect(run.status.freezeWindow.frozenAt).toBeUndefined();
      expect((run.outcome.error as WorkflowFailedError).cause?.message).toMatch(
        /cannot apply change \d+ of the log to "public"\."audit_log"/,
      );
    });
  });

  it('rolls back cleanly when cancelled in the middle of the initial copy (the copy aborted mid-stream)', async () => {
    let copySessions = 0;
    // A table big enough that its copy streams for a second or more, whatever the machine's load.
    await query(sandbox.sourceUrl, `CREATE TABLE public.bulk AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 400000) g`);
    await query(sandbox.sourceUrl, 'ALTER TABLE public.bulk ADD PRIMARY KEY (id)');
    const run = await migrate(sandbox.realActivities, async (handle, migrationId) => {
      // The copy's sessions are streaming rows (COPY ... TO STDOUT on the source): cancel the migration now.
      for (let i = 0; i < 3000 && !copySessions; i++) {
        const [n] = await query<{ n: number }>(
          sandbox.sourceAdminUrl,
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND query LIKE 'COPY %'`,
          [appName(migrationId, 'copy')],
        );
        copySessions = n.n;
        if (!copySessions) await new Promise((r) => setTimeout(r, 5));
      }
      await handle.cancel();
    });
    expect(copySessions).toBeGreaterThan(0);
    expect(run.outcome.error).toBeInstanceOf(WorkflowFailedError);
    expect((run.outcome.error as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    expect(run.status.outcome).toBe('rolled-back');
    expect(run.status.steps.find((s) => s.name === 'initial-copy')?.state).not.toBe('completed');
    expect(await follower(run.handle)).toBe('cancelled');
    expect(run.status.compensations.filter((c) => c.state !== 'completed')).toEqual([]);
    expect(run.writes.failures).toBe(0);
    await expectApplicationBackOnTheSource(run);
    await expectNothingLeft();
    await query(sandbox.sourceUrl, 'DROP TABLE public.bulk');
  });

  it('rolls back cleanly on a no-go at the cutover gate, the capture and the apply running', async () => {
    let capturedAtGate = 0;
    const run = await migrate(sandbox.realActivities, async (handle, migrationId) => {
      await untilStatus(handle, (s) => s.pendingGate?.gate === 'cutover', 'the cutover gate');
      capturedAtGate = await captureTriggers(migrationId);
      await handle.executeUpdate(rejectUpdate, { args: [{ approver: 'bob', gate: 'cutover', reason: 'traffic peak' }] });
    });
    expect(capturedAtGate).toBeGreaterThanOrEqual(4 * 8); // the capture really was in place
    expect(run.outcome.result?.outcome).toBe('rolled-back');
    expect(run.outcome.result?.reason).toBe('cutover rejected by bob: traffic peak');
    expect(run.outcome.result?.freezeWindow.frozenAt).toBeUndefined(); // writes were never frozen
    expect(await follower(run.handle)).toBe('cancelled');
    expect(run.writes.failures).toBe(0);
    expect(run.status.compensations.filter((c) => c.state !== 'completed')).toEqual([]);
    await expectApplicationBackOnTheSource(run);
    await expectNothingLeft();
  });
});

/** What became of copyAndApply, the copy and apply beside the workflow: never started, cancelled (and done), failed, completed. */
async function follower(handle: WorkflowHandle): Promise<'not-started' | 'running' | 'cancelled' | 'failed' | 'completed'> {
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'copyAndApply');
  if (!scheduled) return 'not-started';
  const of = (id: unknown) => String(id) === String(scheduled.eventId);
  if (events.some((e) => of(e.activityTaskCanceledEventAttributes?.scheduledEventId))) return 'cancelled';
  if (events.some((e) => of(e.activityTaskFailedEventAttributes?.scheduledEventId))) return 'failed';
  if (events.some((e) => of(e.activityTaskCompletedEventAttributes?.scheduledEventId))) return 'completed';
  return 'running';
}

/** Until copyAndApply failed for good (the history records its failure). */
async function untilApplyFailed(handle: WorkflowHandle): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const history = await handle.fetchHistory();
    const failed = history.events?.some(
      (e) => e.activityTaskFailedEventAttributes?.failure?.applicationFailureInfo?.type === 'ApplyFailed',
    );
    if (failed) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('copyAndApply never failed');
}
