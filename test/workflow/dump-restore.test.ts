/**
 * migrateDatabase, method dump-restore, on fake activities: the forward order, the go-live gate
 * (approved ahead of time, timed out, rejected) and a failure after each forward step, each undone
 * by exactly the undos registered before it, production first (the undos that give the application
 * its source back, then the cleanup), each group in reverse order of registration; a failure of
 * go-live itself rolls forward instead.
 */
import { describe, expect, it } from 'vitest';
import { verificationFailure } from '../../activities/database/activities';
import { approveUpdate, rejectUpdate, statusQuery } from '../../signals';
import type { ActivityName } from './fakes';
import { latch, migrationInput, settle, waitForPhase, waitForStatus, withWorker, useTestServer, DUMP_RESTORE_FORWARD } from './harness';

const server = useTestServer();

/** The forward activities in order. The databases are leased right after preflight (not a step of its own in status). */
const FORWARD: ActivityName[] = [...DUMP_RESTORE_FORWARD];
/** The status step of each forward activity. */
const STEP_OF: Partial<Record<ActivityName, string>> = {
  preflight: 'preflight',
  freezeSource: 'freeze-source',
  // The copy step asks which worker copies, then copies there.
  claimHost: 'copy',
  copyAndVerify: 'copy',
  reconcileSequences: 'reconcile-sequences',
  freezeTarget: 'freeze-target',
  swapConfig: 'swap-config',
  smokeTest: 'smoke-test',
  unfreezeTarget: 'go-live',
};
const stepsOf = (activities: ActivityName[]) => [...new Set(activities.flatMap((a) => STEP_OF[a] ?? []))];
const STEPS = stepsOf(FORWARD);
/** Released when the migration ends, whatever the end, after the undos. */
const END: ActivityName[] = ['releaseLease'];

/** Each undo, in the order registered: the forward activity it is registered before, its kind, the activity it calls. */
const UNDOS: { step: string; before: ActivityName; kind: 'application' | 'cleanup'; calls: ActivityName }[] = [
  { step: 'unfreeze-source', before: 'freezeSource', kind: 'application', calls: 'unfreezeSource' },
  { step: 'reset-target', before: 'claimHost', kind: 'cleanup', calls: 'resetTarget' },
  { step: 'unfreeze-target', before: 'freezeTarget', kind: 'cleanup', calls: 'unfreezeTarget' },
  { step: 'restore-config', before: 'swapConfig', kind: 'application', calls: 'restoreConfig' },
];
/**
 * The undos that run when `failing` (or the gate after it) ends the migration: those registered before
 * it, production first (what gives the application its source back, then the cleanup), each group in
 * reverse order of registration.
 */
function undosAfter(failing: ActivityName): typeof UNDOS {
  const reversed = UNDOS.filter((u) => FORWARD.indexOf(u.before) <= FORWARD.indexOf(failing)).reverse();
  return [...reversed.filter((u) => u.kind === 'application'), ...reversed.filter((u) => u.kind === 'cleanup')];
}
const ALL_UNDOS = undosAfter('smokeTest');

describe.concurrent('dump-restore on fake activities', () => {
  it('go-live approved ahead of time: the forward steps in order, then completed', async () => {
    const copying = latch();
    await withWorker(server(), { pauses: { copyAndVerify: copying.promise } }, async ({ fakes, start }) => {
      const input = migrationInput({ gates: { 'go-live': { timeout: '1m', approvers: ['alice'] } } });
      const handle = await start(input);
      await waitForPhase(handle, 'copying');
      // Approved while the copy runs: kept, and applied the moment the gate is reached.
      const decision = await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live', reason: 'rehearsed' }] });
      expect(decision).toMatchObject({ gate: 'go-live', approved: true, approver: 'alice', via: 'update' });
      const early = await handle.query(statusQuery);
      expect(early).toMatchObject({ phase: 'copying', preApprovals: [{ gate: 'go-live', approver: 'alice' }], decisions: [] });
      copying.release();

      const { result, failure } = await settle(handle);
      expect(failure).toBeUndefined();
      expect(fakes.names()).toEqual([...FORWARD, 'releaseConfig', ...END]); // no hold: the previous value's record goes
      expect(fakes.calls.every((c) => !c.local)).toBe(true); // the freeze-copy runs its window as regular activities
      expect(result).toMatchObject({
        migrationId: input.migrationId,
        outcome: 'completed',
        method: 'dump-restore',
        verification: 'passed',
        rowsCopied: 1550,
        tables: 3,
        compensations: [],
        decisions: [{ gate: 'go-live', approved: true, approver: 'alice', reason: 'rehearsed', via: 'update' }],
      });
      expect(result.steps.map((s) => s.name)).toEqual([...STEPS, 'release-config']);
      expect(result.steps.every((s) => s.state === 'completed')).toBe(true);
      // The window runs from the source's freeze to the target's unfreeze, as the activities measured them.
      expect(result.freezeWindow.durationMs).toBe(result.freezeWindow.unfrozenAt! - result.freezeWindow.frozenAt!);
      expect(result.freezeWindow.gateWaitMs).toBeLessThan(1000);

      const status = await handle.query(statusQuery);
      expect(status).toMatchObject({ phase: 'completed', outcome: 'completed', preApprovals: [] });
      expect(status.pendingGate).toBeUndefined();
      // What the steps were given: the plan's roles and settings, the input's sink and jobs.
      const arg = (name: ActivityName) => fakes.calls.find((c) => c.name === name)!.args as Record<string, unknown>;
      expect(arg('freezeSource')).toMatchObject({
        migrationId: input.migrationId,
        url: input.source.url,
        roles: ['app'],
        drainTimeoutMs: 5000,
      });
      expect(arg('copyAndVerify')).toMatchObject({
        jobs: 2,
        engine: 'auto',
        baseline: { schemas: ['public'] },
      });
      // The application keeps its own role (roles.application "own"): frozen on the target too, its password set at the swap.
      expect(arg('freezeTarget')).toMatchObject({ url: input.target.url, roles: ['rds_master', 'app'] });
      expect(arg('swapConfig')).toMatchObject({
        sink: input.configSink,
        appUrl: input.target.url,
        urlParams: {},
        appRole: { role: 'app' },
      });
      expect(arg('smokeTest')).toMatchObject({ sink: input.configSink, compareWith: { source: input.source.url, role: 'app' } });
      expect(arg('unfreezeTarget')).toMatchObject({ url: input.target.url, roles: ['rds_master', 'app'], prior: [] });
    });
  });

  it('go-live gate timeout: no-go, every undo (production first, each group in reverse order of registration), rolled back', async () => {
    await withWorker(server(), {}, async ({ fakes, start }) => {
      const handle = await start(migrationInput({ gates: { 'go-live': { timeout: '1s' } } }));
      const { result, failure } = await settle(handle);
      // A rolled-back migration closes as failed, typed, its result inside: told apart from one that went live.
      expect(failure?.type).toBe('MigrationRolledBack');
      expect(failure?.message).toBe(`rolled back: ${result.reason} | the application is on the source; source writable, target writable`);
      expect(result.outcome).toBe('rolled-back');
      expect(result.reason).toBe('go-live timed out: no decision within 1 s');
      expect(result.decisions).toEqual([
        expect.objectContaining({ gate: 'go-live', approved: false, approver: 'timeout', via: 'timeout' }),
      ]);
      expect(ALL_UNDOS.map((u) => u.step)).toEqual(['restore-config', 'unfreeze-source', 'unfreeze-target', 'reset-target']);
      expect(result.compensations.map((c) => [c.step, c.state])).toEqual(ALL_UNDOS.map((u) => [u.step, 'completed']));
      expect(fakes.names()).toEqual([...FORWARD.slice(0, -1), ...ALL_UNDOS.map((u) => u.calls), ...END]);
      // The source took writes again: the window closed with the undo, the gate's wait in it.
      expect(result.freezeWindow.unfrozenAt).toBeGreaterThan(result.freezeWindow.frozenAt!);
      expect(result.freezeWindow.gateWaitMs).toBeGreaterThanOrEqual(1000);
      const status = await handle.query(statusQuery);
      expect(status).toMatchObject({ phase: 'rolled-back', outcome: 'rolled-back' });
    });
  });

  it('a catalog difference found by the verification inside the copy blocks go-live: undone, named in the status and result', async () => {
    const differences = [
      'index "Sales".orders_unpaid: missing on target',
      'materialized view "Sales".order_totals: not populated on target',
    ];
    const overrides = {
      copyAndVerify: async () => {
        const report = { ok: false, tablesChecked: 3, rowsChecked: 30, mismatches: [], schemaDifferences: [], sequenceProblems: [] };
        throw verificationFailure({ ...report, catalogDifferences: differences, catalogMs: 40 });
      },
    };
    await withWorker(server(), { overrides }, async ({ fakes, start }) => {
      const handle = await start(migrationInput());
      const { result } = await settle(handle);
      expect(result).toMatchObject({ outcome: 'failed', verification: 'failed', catalogDifferences: differences });
      expect(result.reason).toContain('index "Sales".orders_unpaid: missing on target');
      expect(fakes.names()).not.toContain('swapConfig');
      expect(result.compensations.map((c) => c.step)).toEqual(['unfreeze-source', 'reset-target']);
      expect(await handle.query(statusQuery)).toMatchObject({ verification: { state: 'failed' }, catalogDifferences: differences });
    });
  });

  it('go-live rejected at the gate: the same undos, the approver and reason in the result', async () => {
    await withWorker(server(), {}, async ({ fakes, start }) => {
      const handle = await start(migrationInput({ gates: { 'go-live': { timeout: '1m', approvers: ['bob'] } } }));
      const open = await waitForStatus(handle, (s) => s.pendingGate?.gate === 'go-live', 'the go-live gate');
      expect(open.phase).toBe('awaiting-go-live');
      expect(open.pendingGate).toMatchObject({ gate: 'go-live', approvers: ['bob'] });
      // No gate named: the decision is for the gate that is open.
      await handle.executeUpdate(rejectUpdate, { args: [{ approver: 'bob', reason: 'numbers look off' }] });
      const { result } = await settle(handle);
      expect(result.outcome).toBe('rolled-back');
      expect(result.reason).toBe('go-live rejected by bob: numbers look off');
      expect(result.decisions).toEqual([expect.objectContaining({ gate: 'go-live', approved: false, approver: 'bob', via: 'update' })]);
      expect(result.compensations.map((c) => c.step)).toEqual(ALL_UNDOS.map((u) => u.step));
      expect(fakes.names()).toEqual([...FORWARD.slice(0, -1), ...ALL_UNDOS.map((u) => u.calls), ...END]);
      expect(fakes.names()).not.toContain('copySchema');
    });
  });

  const failing = FORWARD.filter((a) => a !== 'acquireLease' && a !== 'unfreezeTarget');

  it.each(failing)('a failure after %s runs exactly the undos registered before it, production first', async (after) => {
    await withWorker(server(), { failAfter: { activity: after } }, async ({ fakes, start }) => {
      const handle = await start(migrationInput());
      const { result, failure } = await settle(handle);
      expect(failure?.type).toBe('MigrationFailed');
      expect(failure?.message).toContain(`injected failure after ${after}`);
      expect(result.outcome).toBe('failed');
      const undos = undosAfter(after);
      expect(result.compensations.map((c) => [c.step, c.state])).toEqual(undos.map((u) => [u.step, 'completed']));
      if (undos.length) expect(failure?.message).toContain(`compensation: ${undos.length}/${undos.length} undo step(s) completed`);

      const forward = FORWARD.slice(0, FORWARD.indexOf(after) + 1);
      // Leased only once preflight passed; released at the end, after the undos.
      const end = forward.includes('acquireLease') ? END : [];
      expect(fakes.names()).toEqual([...forward, ...undos.map((u) => u.calls), ...end]);
      expect(result.steps.map((s) => s.name)).toEqual(stepsOf(forward));
      expect(result.steps.at(-1)).toMatchObject({ name: STEP_OF[after], state: 'failed', error: `injected failure after ${after}` });
      const status = await handle.query(statusQuery);
      expect(status).toMatchObject({ phase: 'failed', outcome: 'failed', error: `injected failure after ${after}` });
    });
  });

  it('a failure after go-live itself (unfreezeTarget) rolls forward: the target made writable, nothing undone', async () => {
    await withWorker(server(), { failAfter: { activity: 'unfreezeTarget' } }, async ({ fakes, start }) => {
      const handle = await start(migrationInput());
      // Approved ahead of time, so that go-live is reached.
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });
      const { result, failure } = await settle(handle);
      expect(failure?.type).toBe('MigrationFailed');
      expect(result.outcome).toBe('failed');
      // The target may already hold the application's writes: no config back, no reset, the source stays the reference.
      expect(result.compensations.map((c) => [c.step, c.state])).toEqual([['finish-go-live', 'completed']]);
      expect(fakes.names()).toEqual([...FORWARD, 'unfreezeTarget', ...END]);
      expect(failure?.message).toContain('the application is on the target; source read-only, target writable');
      expect(result.steps.at(-1)).toMatchObject({ name: 'go-live', state: 'failed' });
    });
  });
});
