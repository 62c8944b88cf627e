/**
 * migrateDatabase with the CDC methods (logical, pgcopydb, dms, triggers) on fake activities: each method's
 * activities in order, the cutover gate before the write freeze and the go-live gate after the smoke
 * test, the window's steps as local activities, and a cutover no-go undoing the replication.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it, vi } from 'vitest';
import type { MigrationInput, MigrationInputDraft } from '../../contract/input';
import { buildPlan } from '../../contract/plan';
import { Context } from '@temporalio/activity';
import { inventory } from '../helpers/inventory';
import { approveUpdate, rejectUpdate, statusQuery, verificationSnapshotTakenSignal, type VerificationSnapshotTaken } from '../../signals';
import { table, TABLES_WITH_KEYS, type ActivityName, type Fakes } from './fakes';
import { migrationInput, settle, waitForStatus, withWorker, useTestServer } from './harness';

const server = useTestServer();

/** The write-freeze window of a CDC method: local activities, in this order. */
const WINDOW: ActivityName[] = [
  'freezeSource',
  'drainReplication',
  'reconcileSequences',
  'stopSubscription',
  'freezeTarget',
  'swapConfig',
  'smokeTest',
];
/** The window, go-live and what follows without a hold (the previous config value's record goes). */
const WINDOW_TO_END: ActivityName[] = [...WINDOW, 'unfreezeTarget', 'dropReplicationLeftovers', 'releaseConfig', 'releaseLease'];
/** The steps of that window, as `status.steps` names them. */
const WINDOW_STEPS = ['freeze-source', 'drain', 'reconcile-sequences', 'stop-replication', 'freeze-target', 'swap-config', 'smoke-test'];
/** Activities that run beside the workflow, whose start is not ordered against the steps around them. */
const BESIDE: ActivityName[] = ['verifyAtFreezePoint', 'runPgcopydb', 'copyAndApply'];

const cdcInput = (method: 'logical' | 'pgcopydb' | 'dms' | 'triggers', overrides: Partial<MigrationInputDraft> = {}) =>
  migrationInput({
    method,
    target: { url: { env: 'FAKE_TARGET_URL' }, replicationUrl: { env: 'FAKE_TARGET_REPLICATION_URL' } },
    gates: { cutover: { timeout: '1m' }, 'go-live': { timeout: '1m' } },
    ...overrides,
  });

/** Approves the cutover gate and then the go-live gate as each opens, checking what has run by then. */
async function approveBothGates(fakes: Fakes, handle: WorkflowHandle) {
  const cutover = await waitForStatus(handle, (s) => s.pendingGate?.gate === 'cutover', 'the cutover gate');
  expect(cutover.phase).toBe('awaiting-cutover');
  expect(cutover.replication).toMatchObject({ caughtUp: true });
  expect(fakes.names()).not.toContain('freezeSource'); // writes are not frozen before the cutover decision
  // Materialized views are refreshed once caught up, before the decision (outside the window).
  expect(fakes.names({ except: BESIDE }).slice(-2)).toEqual(['waitForReplication', 'refreshMaterializedViews']);
  await handle.executeUpdate(approveUpdate, { args: [{ approver: 'carol' }] });

  const goLive = await waitForStatus(handle, (s) => s.pendingGate?.gate === 'go-live', 'the go-live gate');
  expect(goLive.phase).toBe('awaiting-go-live');
  expect(fakes.names({ except: BESIDE }).at(-1)).toBe('smokeTest');
  expect(fakes.names()).not.toContain('unfreezeTarget');
  await handle.executeUpdate(approveUpdate, { args: [{ approver: 'carol' }] });
}

function expectWindowLocal(fakes: Fakes, names: ActivityName[]) {
  for (const name of names) {
    const calls = fakes.calls.filter((c) => c.name === name);
    expect(calls.length, name).toBeGreaterThan(0);
    expect(
      calls.every((c) => c.local),
      `${name} runs as a local activity`,
    ).toBe(true);
  }
}

describe.concurrent('CDC methods on fake activities', () => {
  it('logical: replica identity, schema, replication, catch-up, cutover gate, the window, go-live gate, cleanup', async () => {
    await withWorker(server(), {}, async ({ fakes, start }) => {
      const input = cdcInput('logical', { replication: { tablesWithoutPrimaryKey: 'replica-identity-full' } });
      const handle = await start(input);
      await approveBothGates(fakes, handle);
      const { result, failure } = await settle(handle);
      expect(failure).toBeUndefined();
      expect(fakes.names({ except: BESIDE })).toEqual([
        'preflight',
        'acquireLease',
        'setReplicaIdentityFull',
        'copySchema',
        'startReplication',
        'waitForReplication', // initial copy
        'copySchemaAfterData',
        'waitForReplication', // catch-up
        'refreshMaterializedViews',
        ...WINDOW,
        'unfreezeTarget',
        'dropReplicationLeftovers',
        'restoreReplicaIdentity',
        'releaseConfig', // no hold: the previous value's record goes
        'releaseLease',
      ]);
      expectWindowLocal(fakes, [...WINDOW, 'unfreezeTarget']);
      expect(
        fakes.calls.filter((c) => ['copySchema', 'startReplication', 'waitForReplication'].includes(c.name)).every((c) => !c.local),
      ).toBe(true);
      // The full verification started with the freeze, beside the window.
      const names = fakes.names();
      expect(names.filter((n) => n === 'verifyAtFreezePoint')).toHaveLength(1);
      expect(names.indexOf('verifyAtFreezePoint')).toBeGreaterThan(names.indexOf('freezeSource'));
      // Only the table without a primary key gets REPLICA IDENTITY FULL, and gets it back, on the target too.
      const identity = fakes.calls.find((c) => c.name === 'setReplicaIdentityFull')!.args as { tables: { name: string }[] };
      expect(identity.tables.map((t) => t.name)).toEqual(['audit_log']);
      expect(fakes.calls.find((c) => c.name === 'restoreReplicaIdentity')!.args).toMatchObject({
        tables: [expect.objectContaining({ name: 'audit_log' })],
        onTarget: true,
      });
      // The CDC arguments name the method, and the role that subscribes.
      const cdcArgs = fakes.calls.find((c) => c.name === 'startReplication')!.args as Record<string, unknown>;
      expect(cdcArgs.method).toBe('logical');
      expect(cdcArgs.replicationUrl).toEqual({ env: 'FAKE_TARGET_REPLICATION_URL' });

      expect(result).toMatchObject({
        outcome: 'completed',
        method: 'logical',
        verification: 'passed',
        rowsCopied: 1550,
        compensations: [],
      });
      expect(result.decisions.map((d) => [d.gate, d.approved, d.approver])).toEqual([
        ['cutover', true, 'carol'],
        ['go-live', true, 'carol'],
      ]);
      expect(result.steps.map((s) => s.name)).toEqual([
        'preflight',
        'replica-identity',
        'copy-schema',
        'start-replication',
        'initial-copy',
        'indexes',
        'catch-up',
        'refresh-materialized-views',
        ...WINDOW_STEPS,
        'go-live',
        'drop-replication',
        'restore-replica-identity',
        'release-config',
      ]);
      const status = await handle.query(statusQuery);
      expect(status.verification).toMatchObject({ state: 'passed' });
      // drop-replication keeps no marker without reverse replication.
      expect(fakes.calls.find((c) => c.name === 'dropReplicationLeftovers')!.args).toMatchObject({ keepMarkers: false });
    });
  });

  const withUnlogged = [...TABLES_WITH_KEYS, table('public', 'session_cache', 100, { unlogged: true })];
  /** A source with an UNLOGGED table and two large objects. */
  const unloggedSource = {
    preflight: async ({ input }: { input: MigrationInput }) =>
      buildPlan(
        input,
        inventory({ tables: withUnlogged, largeObjects: 2, largeObjectBytes: 16_384 }),
        inventory({ currentUser: 'rds_master', tables: [] }),
      ),
  };

  for (const method of ['logical', 'pgcopydb', 'dms', 'triggers'] as const) {
    it(`${method}: UNLOGGED tables its change stream misses and large objects are copied in the window, before the drain`, async () => {
      const tables = withUnlogged;
      await withWorker(server(), { tables, overrides: unloggedSource }, async ({ fakes, start }) => {
        const handle = await start(cdcInput(method));
        await approveBothGates(fakes, handle);
        const { result, failure } = await settle(handle);
        expect(failure).toBeUndefined();
        const names = fakes.names({ except: BESIDE });
        expect(names.slice(names.indexOf('freezeSource'), names.indexOf('drainReplication') + 1)).toEqual([
          'freezeSource',
          'copyInWindow',
          'drainReplication',
        ]);
        expect(names).not.toContain('copyLargeObjects');
        expectWindowLocal(fakes, ['copyInWindow']);
        const copied = fakes.calls.find((c) => c.name === 'copyInWindow')!.args as { unlogged: { name: string }[]; largeObjects: boolean };
        // The triggers method's capture sees UNLOGGED tables: only the large objects are copied for it.
        expect(copied.unlogged.map((t) => t.name)).toEqual(method === 'triggers' ? [] : ['session_cache']);
        expect(copied.largeObjects).toBe(true);
        const step = result.steps.find((s) => s.name === 'copy-in-window')!;
        expect(step.detail).toMatch(method === 'triggers' ? /^0 UNLOGGED table\(s\).*1 large object/ : /^1 UNLOGGED table\(s\), 10 rows/);
        expect(result.steps.find((s) => s.name === 'refresh-materialized-views')!.detail).toBe('refreshed shop.order_totals');
      });
    });
  }

  it('a failure right after the window copy: the target reset (registered before the copy) undoes it, the source is unfrozen', async () => {
    await withWorker(
      server(),
      { tables: withUnlogged, overrides: unloggedSource, failAfter: { activity: 'copyInWindow' } },
      async ({ fakes, start }) => {
        const handle = await start(cdcInput('logical'));
        await handle.executeUpdate(approveUpdate, { args: [{ approver: 'carol', gate: 'cutover' }] });
        const { result, failure } = await settle(handle);
        expect(failure?.message).toMatch(/injected|copyInWindow/);
        expect(result.outcome).toBe('failed');
        expect(fakes.names()).not.toContain('drainReplication');
        expect(result.compensations.map((c) => [c.step, c.state])).toEqual(
          expect.arrayContaining([
            ['unfreeze-source', 'completed'],
            ['stop-replication', 'completed'],
            ['reset-target', 'completed'],
          ]),
        );
      },
    );
  });

  for (const [method, initialCopy] of [
    ['pgcopydb', undefined],
    ['logical', 'pgcopydb'],
  ] as const) {
    it(`${method}${initialCopy ? ` with initialCopy ${initialCopy}` : ''}: pgcopydb copies a slot's snapshot, then the subscription streams from that slot; the window is logical's`, async () => {
      await withWorker(server(), { tables: TABLES_WITH_KEYS }, async ({ fakes, start }) => {
        const copy = { splitTablesLargerThan: '1GB' };
        const handle = await start(cdcInput(method, initialCopy ? { replication: { initialCopy }, copy } : { copy }));
        await approveBothGates(fakes, handle);
        const { result, failure } = await settle(handle);
        expect(failure).toBeUndefined();
        expect(fakes.names({ except: BESIDE })).toEqual([
          'preflight',
          'acquireLease',
          'copySnapshot', // slot, snapshot and pgcopydb's copy of it (schema, data, indexes)
          'startReplication', // the subscription, without a copy or a slot of its own
          'waitForReplication', // initial copy: every table ready at once
          'waitForReplication', // catch-up
          'refreshMaterializedViews',
          ...WINDOW_TO_END,
        ]);
        expect(fakes.names()).not.toContain('runPgcopydb');
        expect(fakes.calls.find((c) => c.name === 'copySnapshot')!.args).toMatchObject({
          method,
          jobs: 2,
          baseline: expect.any(Object),
          splitTablesLargerThan: '1GB',
        });
        expect(fakes.calls.find((c) => c.name === 'startReplication')!.args).toMatchObject({ method, initialCopy: 'pgcopydb' });
        // The whole window runs as local activities, the drain included: the sub-second window of logical.
        expectWindowLocal(fakes, [...WINDOW, 'unfreezeTarget']);
        expect(result.outcome).toBe('completed');
        expect(result.method).toBe(method);
        expect(result.steps.map((s) => s.name)).toEqual([
          'preflight',
          'snapshot-copy',
          'start-replication',
          'initial-copy',
          'catch-up',
          'refresh-materialized-views',
          ...WINDOW_STEPS,
          'go-live',
          'drop-replication',
          'release-config',
        ]);
      });
    });
  }

  it('triggers: schema, capture, then the snapshot copy and apply beside the workflow until the drain; keys of its own', async () => {
    await withWorker(server(), { tables: TABLES_WITH_KEYS }, async ({ fakes, start }) => {
      const handle = await start(cdcInput('triggers', { replication: { tablesWithoutPrimaryKey: 'replica-identity-full' } }));
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'cutover', 'the cutover gate');
      // Still applying while the workflow waits at the gate.
      await vi.waitFor(() => expect(fakes.events).toEqual(['apply:started']));
      await approveBothGates(fakes, handle);
      const { result, failure } = await settle(handle);
      expect(failure).toBeUndefined();
      expect(fakes.names({ except: BESIDE })).toEqual([
        'preflight',
        'acquireLease',
        'copySchema',
        'startReplication', // capture installed on the source
        'waitForReplication', // initial copy (by copyAndApply, beside)
        'copySchemaAfterData',
        'waitForReplication', // catch-up
        'refreshMaterializedViews',
        ...WINDOW_TO_END,
      ]);
      // No REPLICA IDENTITY change on the source: the triggers match rows themselves.
      expect(fakes.names()).not.toContain('setReplicaIdentityFull');
      expect(fakes.calls.find((c) => c.name === 'startReplication')!.args).toMatchObject({
        method: 'triggers',
        tablesWithoutPrimaryKey: 'replica-identity-full',
      });
      const t = fakes.timeline;
      expect(t.indexOf('apply:started')).toBeGreaterThan(t.indexOf('startReplication'));
      expect(t.indexOf('apply:reached-endpos')).toBeGreaterThan(t.indexOf('drainReplication'));
      expect(t.indexOf('apply:reached-endpos')).toBeLessThan(t.indexOf('reconcileSequences'));
      // The apply ends at the marker within a local activity's time: the whole window is local.
      expectWindowLocal(fakes, [...WINDOW, 'unfreezeTarget']);
      expect(fakes.calls.find((c) => c.name === 'copyAndApply')!.args).toMatchObject({ method: 'triggers', jobs: 2 });
      expect(result.method).toBe('triggers');
      const steps = result.steps.map((s) => s.name);
      expect(steps.slice(steps.indexOf('freeze-source'), steps.indexOf('reconcile-sequences') + 1)).toEqual([
        'freeze-source',
        'drain',
        'apply-exit',
        'reconcile-sequences',
      ]);
    });
  });

  it('dms: the logical sequence with the DMS task (method dms in every CDC call), lag in seconds', async () => {
    await withWorker(server(), { tables: TABLES_WITH_KEYS }, async ({ fakes, start }) => {
      const input = cdcInput('dms', { replication: { maxLagSeconds: 3 } });
      const handle = await start(input);
      await approveBothGates(fakes, handle);
      const { result, failure } = await settle(handle);
      expect(failure).toBeUndefined();
      expect(fakes.names({ except: BESIDE })).toEqual([
        'preflight',
        'acquireLease',
        'copySchema',
        'startReplication',
        'waitForReplication',
        'copySchemaAfterData',
        'waitForReplication',
        'refreshMaterializedViews',
        ...WINDOW_TO_END,
      ]);
      expectWindowLocal(fakes, [...WINDOW, 'unfreezeTarget']);
      const cdcCalls: ActivityName[] = [
        'copySchema',
        'startReplication',
        'waitForReplication',
        'copySchemaAfterData',
        'drainReplication',
        'stopSubscription',
        'verifyAtFreezePoint',
        'dropReplicationLeftovers',
      ];
      for (const call of fakes.calls.filter((c) => cdcCalls.includes(c.name))) {
        expect(call.args, call.name).toMatchObject({ method: 'dms', migrationId: input.migrationId });
      }
      expect(fakes.calls.find((c) => c.name === 'waitForReplication')!.args).toMatchObject({ maxLagSeconds: 3 });
      expect(result).toMatchObject({ outcome: 'completed', method: 'dms' });
      const status = await handle.query(statusQuery);
      expect(status.replication).toMatchObject({ lagSeconds: 1, caughtUp: true });
    });
  });

  it('logical cutover no-go: nothing frozen, replication and target undone in reverse order, rolled back', async () => {
    await withWorker(server(), {}, async ({ fakes, start }) => {
      const handle = await start(cdcInput('logical', { replication: { tablesWithoutPrimaryKey: 'replica-identity-full' } }));
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'cutover', 'the cutover gate');
      await handle.executeUpdate(rejectUpdate, { args: [{ approver: 'carol', gate: 'cutover', reason: 'lag too spiky' }] });
      const { result, failure } = await settle(handle);
      // A rolled-back migration closes as failed, typed, its result inside: told apart from one that went live.
      expect(failure?.type).toBe('MigrationRolledBack');
      expect(failure?.message).toBe(`rolled back: ${result.reason} | the application is on the source; source writable, target writable`);
      expect(result.outcome).toBe('rolled-back');
      expect(result.reason).toBe('cutover rejected by carol: lag too spiky');
      expect(result.compensations.map((c) => [c.step, c.state])).toEqual([
        ['stop-replication', 'completed'],
        ['reset-target', 'completed'],
        ['restore-replica-identity', 'completed'],
      ]);
      expect(fakes.names()).toEqual([
        'preflight',
        'acquireLease',
        'setReplicaIdentityFull',
        'copySchema',
        'startReplication',
        'waitForReplication',
        'copySchemaAfterData',
        'waitForReplication',
        'refreshMaterializedViews',
        'stopReplication',
        'resetTarget',
        'restoreReplicaIdentity',
        'releaseLease',
      ]);
      expect(result.freezeWindow).toEqual({});
      expect(result.decisions).toEqual([expect.objectContaining({ gate: 'cutover', approved: false })]);
    });
  });

  it('triggers: an apply that dies at the cutover gate ends the wait with its error, before anything is frozen', async () => {
    let failApply = () => undefined as void;
    const dies = new Promise<void>((resolve) => (failApply = resolve));
    const overrides = {
      copyAndApply: async () => {
        await dies;
        throw ApplicationFailure.nonRetryable(
          'cannot apply change 151 of the log to "public"."audit_log": check constraint',
          'ApplyFailed',
        );
      },
    };
    await withWorker(server(), { tables: TABLES_WITH_KEYS, overrides }, async ({ fakes, start }) => {
      const handle = await start(cdcInput('triggers'));
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'cutover', 'the cutover gate');
      failApply();
      const { result, failure } = await settle(handle);
      expect(failure?.message).toMatch(/cannot apply change 151 of the log/);
      expect(result.outcome).toBe('failed');
      expect(fakes.names()).not.toContain('freezeSource');
      expect(result.freezeWindow).toEqual({});
      expect(result.compensations.map((c) => c.step)).toEqual(['stop-replication', 'reset-target']);
      expect((await handle.query(statusQuery)).pendingGate).toBeUndefined();
    });
  });

  it('logical: catalog differences at the freeze point are in the status before the go-live gate and in the result, without blocking', async () => {
    const differences = ['materialized view "Sales".order_totals: not populated on target'];
    const overrides = {
      verifyAtFreezePoint: async (args: { tables: unknown[] }) => {
        const execution = Context.current().info.workflowExecution!;
        const taken: VerificationSnapshotTaken = { catalogDifferences: differences };
        await server().client.workflow.getHandle(execution.workflowId, execution.runId).signal(verificationSnapshotTakenSignal, taken);
        const report = { ok: true, tablesChecked: args.tables.length, rowsChecked: 10, mismatches: [], schemaDifferences: [] };
        return { ...report, sequenceProblems: [], catalogDifferences: differences, catalogMs: 30 };
      },
    };
    await withWorker(server(), { overrides }, async ({ start }) => {
      const handle = await start(cdcInput('logical', { replication: { tablesWithoutPrimaryKey: 'replica-identity-full' } }));
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'cutover', 'the cutover gate');
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'carol' }] });
      const atGoLive = await waitForStatus(handle, (s) => s.pendingGate?.gate === 'go-live', 'the go-live gate');
      expect(atGoLive.catalogDifferences).toEqual(differences);
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'carol' }] });
      const { result, failure } = await settle(handle);
      expect(failure).toBeUndefined();
      expect(result).toMatchObject({ outcome: 'completed', verification: 'passed', catalogDifferences: differences });
      expect((await handle.query(statusQuery)).verification?.detail).toContain(`the catalog differs: ${differences[0]}`);
    });
  });

  it('pgcopydb cutover no-go: the subscription, slot and publication go, then the target is reset', async () => {
    await withWorker(server(), { tables: TABLES_WITH_KEYS }, async ({ fakes, start }) => {
      const handle = await start(cdcInput('pgcopydb'));
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'cutover', 'the cutover gate');
      await handle.executeUpdate(rejectUpdate, { args: [{ approver: 'carol' }] });
      const { result } = await settle(handle);
      expect(result.outcome).toBe('rolled-back');
      expect(result.reason).toBe('cutover rejected by carol');
      expect(result.compensations.map((c) => c.step)).toEqual(['stop-replication', 'reset-target']);
      expect(fakes.names({ except: BESIDE })).toEqual([
        'preflight',
        'acquireLease',
        'copySnapshot',
        'startReplication',
        'waitForReplication',
        'waitForReplication',
        'refreshMaterializedViews',
        'stopReplication',
        'resetTarget',
        'releaseLease',
      ]);
      expect(fakes.calls.find((c) => c.name === 'stopReplication')!.args).toMatchObject({ method: 'pgcopydb' });
    });
  });

  it('logical go-live no-go after the window: production first (config, source writable), then target and replication', async () => {
    await withWorker(server(), { tables: TABLES_WITH_KEYS }, async ({ fakes, start }) => {
      const handle = await start(cdcInput('logical', { gates: { cutover: { timeout: '1m' }, 'go-live': { timeout: '1m' } } }));
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'carol', gate: 'cutover' }] });
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'go-live', 'the go-live gate');
      await handle.executeUpdate(rejectUpdate, { args: [{ approver: 'carol' }] });
      const { result } = await settle(handle);
      expect(result.outcome).toBe('rolled-back');
      expect(result.compensations.map((c) => c.step)).toEqual([
        'restore-config',
        'unfreeze-source',
        'unfreeze-target',
        'stop-replication',
        'reset-target',
      ]);
      const names = fakes.names({ except: BESIDE });
      expect(names.slice(names.indexOf('smokeTest') + 1)).toEqual([
        'restoreConfig',
        'unfreezeSource',
        'unfreezeTarget',
        'stopReplication',
        'resetTarget',
        'releaseLease',
      ]);
    });
  });
});
