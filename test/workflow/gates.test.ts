/**
 * Update validation at the gates, on fake activities: decisions for a gate this migration does not
 * have, by someone not on the gate's list, twice, or with no gate open are refused with a reason
 * (Updates answer it; a refused Signal is recorded in status), and none of them changes the run.
 */
import { describe, expect, it } from 'vitest';
import { approveSignal, approveUpdate, rejectUpdate, rollbackUpdate, statusQuery } from '../../signals';
import { latch, migrationInput, refusalOf, settle, waitForPhase, withWorker, useTestServer } from './harness';

const server = useTestServer();

describe.concurrent('gate decisions on fake activities', () => {
  it('refuses unknown gates, unlisted approvers, a second decision and decisions with no gate open', async () => {
    const copying = latch();
    await withWorker(server(), { pauses: { copyAndVerify: copying.promise } }, async ({ fakes, start }) => {
      const handle = await start(migrationInput({ gates: { 'go-live': { timeout: '1m', approvers: ['alice', 'bob'] } } }));
      await waitForPhase(handle, 'copying');
      const approve = (payload: { approver: string; gate?: string }) => refusalOf(handle.executeUpdate(approveUpdate, { args: [payload] }));

      // A name that is no gate at all is refused by the payload's shape check; a gate this migration lacks by the gate rules.
      expect(await approve({ approver: 'alice', gate: 'launch' })).toMatch(/unknown gate "launch"/);
      // dump-restore has no cutover gate; without hold or traffic there is no decommission or traffic gate either.
      expect(await approve({ approver: 'alice', gate: 'cutover' })).toMatch(/^unknown gate "cutover"/);
      expect(await approve({ approver: 'alice', gate: 'decommission' })).toMatch(/^unknown gate "decommission"/);
      expect(await approve({ approver: 'alice', gate: 'traffic' })).toMatch(/^unknown gate "traffic"/);
      expect(await approve({ approver: 'mallory', gate: 'go-live' })).toBe(
        'approver "mallory" is not allowed at gate go-live (allowed: alice, bob)',
      );
      expect(await approve({ approver: '  ', gate: 'go-live' })).toMatch(/^approver.*required/);
      expect(await approve({ approver: 'alice' })).toMatch(/^no gate is open; name the gate to decide ahead of time/);
      expect(await refusalOf(handle.executeUpdate(rejectUpdate, { args: [{ approver: 'mallory', gate: 'go-live' }] }))).toMatch(
        /not allowed at gate go-live/,
      );
      // A rollback needs reverse replication, whoever asks.
      expect(await refusalOf(handle.executeUpdate(rollbackUpdate, { args: [{ approver: 'alice' }] }))).toMatch(
        /this migration has no reverse replication/,
      );
      // A Signal cannot answer: its refusal is kept in status.
      await handle.signal(approveSignal, { approver: 'mallory', gate: 'go-live' });

      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });
      expect(await approve({ approver: 'bob', gate: 'go-live' })).toMatch(/^gate go-live was already approved by alice at /);

      const meanwhile = await handle.query(statusQuery);
      expect(meanwhile.refusedDecisions).toEqual([
        expect.objectContaining({ payload: { approver: 'mallory', gate: 'go-live' }, reason: expect.stringMatching(/not allowed/) }),
      ]);
      expect(meanwhile.preApprovals.map((d) => d.approver)).toEqual(['alice']);
      copying.release();

      const { result } = await settle(handle);
      expect(result.outcome).toBe('completed');
      expect(result.decisions).toEqual([expect.objectContaining({ gate: 'go-live', approved: true, approver: 'alice' })]);
      expect(fakes.names()).not.toContain('resetTarget');
      expect(fakes.names()).toContain('unfreezeTarget');
      // After the gate: closed.
      expect(await approve({ approver: 'bob', gate: 'go-live' }).catch((err: Error) => err.message)).toMatch(/closed|completed|not found/i);
    });
  });

  it('a CDC migration has a cutover gate; an approval by signal is recorded as such', async () => {
    await withWorker(server(), {}, async ({ start }) => {
      const handle = await start(
        migrationInput({
          method: 'logical',
          replication: { tablesWithoutPrimaryKey: 'replica-identity-full' },
          gates: { cutover: { timeout: '1m', approvers: ['carol'] }, 'go-live': { timeout: '1m' } },
        }),
      );
      expect(await refusalOf(handle.executeUpdate(approveUpdate, { args: [{ approver: 'dave', gate: 'cutover' }] }))).toBe(
        'approver "dave" is not allowed at gate cutover (allowed: carol)',
      );
      await handle.signal(approveSignal, { approver: 'carol', gate: 'cutover' });
      await handle.signal(approveSignal, { approver: 'dave', gate: 'go-live' });
      const { result } = await settle(handle);
      expect(result.outcome).toBe('completed');
      expect(result.decisions.map((d) => [d.gate, d.approver, d.via])).toEqual([
        ['cutover', 'carol', 'signal'],
        ['go-live', 'dave', 'signal'],
      ]);
    });
  });
});
