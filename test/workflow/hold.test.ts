/**
 * The hold after go-live, on fake activities (hold durations of a second or so): the decommission
 * gate (approved ahead of time, or a no-go that holds again), and the `rollback` Update during the
 * hold with reverse replication (lossless switch back; a failed rollback undone, the hold going on).
 */
import { describe, expect, it } from 'vitest';
import type { MigrationInputDraft } from '../../contract/input';
import { approveUpdate, rejectUpdate, rollbackUpdate, statusQuery } from '../../signals';
import { TABLES_WITH_KEYS, type ActivityName } from './fakes';
import { useTestServer, migrationInput, refusalOf, settle, waitForPhase, waitForStatus, withWorker, DUMP_RESTORE_FORWARD } from './harness';

const server = useTestServer();

const DUMP_RESTORE: ActivityName[] = [...DUMP_RESTORE_FORWARD];

const withReverse = (hold: NonNullable<MigrationInputDraft['hold']>): Partial<MigrationInputDraft> => ({
  source: { url: { env: 'FAKE_SOURCE_URL' }, replicationUrl: { env: 'FAKE_SOURCE_REPLICATION_URL' } },
  hold: { reverseReplication: true, ...hold },
  // Reverse replication publishes the target's tables: every one needs a primary key (or replica identity full).
  replication: { tablesWithoutPrimaryKey: 'replica-identity-full' },
  gates: { 'go-live': { timeout: '1m', approvers: ['alice'] }, decommission: { timeout: '1m' } },
});

const stepEnd = (steps: { name: string; endedAt?: string; startedAt: string }[], name: string) =>
  Date.parse(steps.find((s) => s.name === name)!.endedAt!);
const stepStart = (steps: { name: string; startedAt: string }[], name: string) => Date.parse(steps.find((s) => s.name === name)!.startedAt);

describe.concurrent('the hold on fake activities', () => {
  it('decommission approved ahead of time: the hold lasts its duration, then the rollback path is dropped', async () => {
    await withWorker(server(), {}, async ({ fakes, start }) => {
      const handle = await start(migrationInput({ hold: { duration: '1s' } }));
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'dave', gate: 'decommission' }] });
      const { result, failure } = await settle(handle);
      expect(failure).toBeUndefined();
      expect(result.outcome).toBe('completed');
      expect(fakes.names()).toEqual([...DUMP_RESTORE, 'dropReplicationLeftovers', 'releaseConfig', 'releaseLease']);
      expect(result.decisions.map((d) => [d.gate, d.approver])).toEqual([
        ['go-live', 'alice'],
        ['decommission', 'dave'],
      ]);
      // Held for hold.duration (workflow clock) between going live and dropping the rollback path.
      expect(stepStart(result.steps, 'drop-markers') - stepEnd(result.steps, 'go-live')).toBeGreaterThanOrEqual(1000);
      expect(result.steps.map((s) => s.name).slice(-3)).toEqual(['go-live', 'drop-markers', 'release-config']);
      const status = await handle.query(statusQuery);
      expect(status.hold).toMatchObject({ reverseReplication: false });
      expect(Date.parse(status.hold!.until)).toBeLessThanOrEqual(stepStart(result.steps, 'drop-markers'));
    });
  });

  it('decommission no-go holds again; approved the second time', async () => {
    await withWorker(server(), {}, async ({ fakes, start }) => {
      const handle = await start(
        migrationInput({ hold: { duration: '1s' }, gates: { 'go-live': { timeout: '1m' }, decommission: { timeout: '1m' } } }),
      );
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });
      await waitForPhase(handle, 'awaiting-decommission');
      await handle.executeUpdate(rejectUpdate, { args: [{ approver: 'dave', reason: 'month-end close first' }] });
      // Held again for hold.duration, then the gate opens a second time.
      const again = await waitForStatus(
        handle,
        (s) => s.decisions.length === 2 && s.pendingGate?.gate === 'decommission',
        'the decommission gate to open again',
      );
      expect(again.phase).toBe('awaiting-decommission');
      expect(again.decisions.map((d) => [d.gate, d.approved])).toEqual([
        ['go-live', true],
        ['decommission', false],
      ]);
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'dave' }] });
      const { result } = await settle(handle);
      expect(result.outcome).toBe('completed');
      expect(fakes.names()).toEqual([...DUMP_RESTORE, 'dropReplicationLeftovers', 'releaseConfig', 'releaseLease']);
      expect(result.decisions.map((d) => [d.gate, d.approved])).toEqual([
        ['go-live', true],
        ['decommission', false],
        ['decommission', true],
      ]);
    });
  });

  it('rollback during the hold with reverse replication: target frozen, drained back, config back, source writable', async () => {
    await withWorker(server(), {}, async ({ fakes, start }) => {
      const input = migrationInput(withReverse({ duration: '1h' }));
      const handle = await start(input);
      // Not before the hold: writes have not moved yet.
      await waitForStatus(handle, (s) => s.steps.some((st) => st.name === 'swap-config'), 'the config swap');
      expect(await refusalOf(handle.executeUpdate(rollbackUpdate, { args: [{ approver: 'alice' }] }))).toMatch(
        /a rollback is possible during the hold, after go-live/,
      );
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });
      const holding = await waitForPhase(handle, 'holding');
      expect(holding.hold).toMatchObject({ reverseReplication: true });
      // Only the go-live approvers may roll back.
      expect(await refusalOf(handle.executeUpdate(rollbackUpdate, { args: [{ approver: 'mallory' }] }))).toMatch(
        /approver "mallory" may not roll back \(allowed: alice\)/,
      );
      const accepted = await handle.executeUpdate(rollbackUpdate, { args: [{ approver: 'alice', reason: 'p99 latency doubled' }] });
      expect(accepted).toMatchObject({ accepted: true });

      const { result, failure } = await settle(handle);
      // A rolled-back migration closes as failed, typed, its result inside: told apart from one that went live.
      expect(failure?.type).toBe('MigrationRolledBack');
      expect(failure?.message).toBe(`rolled back: ${result.reason} | the application is on the source; source writable, target read-only`);
      expect(result.outcome).toBe('rolled-back');
      expect(result.reason).toBe('rolled back during the hold by alice: p99 latency doubled');
      expect(fakes.names()).toEqual([
        'preflight',
        'acquireLease',
        'freezeSource',
        'claimHost',
        'copyAndVerify',
        'reconcileSequences',
        'startReverseReplication', // before the target takes its first write
        'freezeTarget',
        'swapConfig',
        'smokeTest',
        'unfreezeTarget',
        // the rollback
        'freezeTarget',
        'drainReverse',
        'reconcileSequences',
        'restoreConfig',
        'unfreezeSource',
        'stopReverseReplication',
        'dropReplicationLeftovers',
        'releaseLease', // kept through the hold until the very end
      ]);
      // The rollback's window runs as local activities; sequences now flow from the target to the source.
      const rollbackCalls = fakes.calls.slice(11, 16);
      expect(rollbackCalls.every((c) => c.local)).toBe(true);
      expect(rollbackCalls[2].args).toMatchObject({ source: input.target.url, target: input.source.url });
      expect(fakes.calls.find((c) => c.name === 'startReverseReplication')?.args).toMatchObject({
        sourceReplicationUrl: { env: 'FAKE_SOURCE_REPLICATION_URL' },
        appRoles: ['app'],
      });
      expect(result.compensations).toEqual([]);
      const status = await handle.query(statusQuery);
      expect(status.hold?.rollback).toMatchObject({ requestedBy: 'alice', reason: 'p99 latency doubled' });
      expect(status.hold?.rollback?.windowMs).toBeGreaterThanOrEqual(0);
      expect(status.phase).toBe('rolled-back');
    });
  });

  it('a rollback that fails is undone and the hold goes on', async () => {
    await withWorker(server(), { failAfter: { activity: 'drainReverse' } }, async ({ fakes, start }) => {
      const handle = await start(migrationInput(withReverse({ duration: '1h' })));
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });
      await waitForPhase(handle, 'holding');
      await handle.executeUpdate(rollbackUpdate, { args: [{ approver: 'alice' }] });
      const after = await waitForStatus(handle, (s) => s.hold?.rollback?.reason?.startsWith('FAILED') ?? false, 'the failed rollback');
      expect(after.hold?.rollback?.reason).toBe('FAILED, undone, the hold goes on: injected failure after drainReverse');
      expect(after.compensations).toEqual([expect.objectContaining({ step: 'unfreeze-target', state: 'completed' })]);
      const held = await waitForPhase(handle, 'holding');
      expect(held.outcome).toBeUndefined();
      const names = fakes.names();
      expect(names.slice(names.indexOf('smokeTest') + 1)).toEqual(['unfreezeTarget', 'freezeTarget', 'drainReverse', 'unfreezeTarget']);
      // A new request is possible again.
      await handle.executeUpdate(rollbackUpdate, { args: [{ approver: 'alice', reason: 'second try' }] });
      const { result } = await settle(handle);
      expect(result.outcome).toBe('rolled-back');
      expect(result.reason).toBe('rolled back during the hold by alice: second try');
    });
  });

  /** An accepted rollback would be dropped by an approval of the gate: while it is open, a rollback is refused. */
  it('refuses a rollback while the decommission gate is open', async () => {
    await withWorker(server(), { tables: TABLES_WITH_KEYS }, async ({ fakes, start }) => {
      const handle = await start(migrationInput(withReverse({ duration: '1s' })));
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });
      await waitForPhase(handle, 'awaiting-decommission');
      const refused = await handle.executeUpdate(rollbackUpdate, { args: [{ approver: 'alice', reason: 'errors after the hold' }] }).then(
        () => undefined,
        (err: unknown) => err as Error & { cause?: Error },
      );
      expect(refused?.cause?.message).toMatch(/during the hold/);
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'dave', gate: 'decommission' }] });
      const { result } = await settle(handle);
      expect(result.outcome).toBe('completed');
      expect(fakes.names()).not.toContain('drainReverse');
      expect(fakes.names().slice(-4)).toEqual(['stopReverseReplication', 'dropReplicationLeftovers', 'releaseConfig', 'releaseLease']);
    });
  });

  /** Past the point of no return nothing is undone; only the rollback path is dropped. */
  it('a cancellation during the hold leaves the target live, reports it, and drops the rollback path', async () => {
    await withWorker(server(), {}, async ({ fakes, start }) => {
      const handle = await start(migrationInput(withReverse({ duration: '1h' })));
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });
      await waitForPhase(handle, 'holding');
      await handle.cancel();
      await expect(handle.result()).rejects.toThrow(/cancelled/);
      const status = await handle.query(statusQuery);
      expect(status).toMatchObject({
        phase: 'completed',
        outcome: 'completed',
        error: 'cancelled after go-live: the application stays live on the target',
        compensations: [],
      });
      const names = fakes.names();
      expect(names.slice(names.lastIndexOf('unfreezeTarget') + 1)).toEqual([
        'stopReverseReplication',
        'dropReplicationLeftovers',
        'releaseLease',
      ]);
    });
  });
});
