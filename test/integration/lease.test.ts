/**
 * One migration per database at a time, on the real stack: two migrations of the same databases
 * started together (same and different migration ids), one started while another holds the lease,
 * and a lease left behind by a terminated workflow.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { afterEach, describe, expect, it } from 'vitest';
import type { MigrationInputDraft } from '../../contract/input';
import { approveUpdate, statusQuery, type MigrationResult } from '../../signals';
import { AppWriter } from '../../stack/app-writer';
import { SHAPES_ONLY, expectEveryAckedWriteOnce, migrateUnderLoad, openSandbox, query, untilPhase, type Sandbox } from '../helpers/harness';
import { migrationResult } from '../../signals/outcome';

const sandboxes: Sandbox[] = [];
afterEach(async () => {
  await Promise.all(sandboxes.splice(0).map((s) => s.close()));
});

async function sandboxFor(name: string): Promise<Sandbox> {
  const sandbox = await openSandbox(name, { scale: SHAPES_ONLY });
  sandboxes.push(sandbox);
  return sandbox;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The database's comment, where the lease lives (`pgmig.lease {...}` while one is held). */
async function comment(url: string): Promise<string | null> {
  const rows = await query<{ c: string | null }>(
    url,
    `SELECT shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = current_database()`,
  );
  return rows[0].c;
}

async function setComment(adminUrl: string, text: string): Promise<void> {
  const db = new URL(adminUrl).pathname.slice(1);
  await query(adminUrl, `COMMENT ON DATABASE "${db}" IS '${text}'`);
}

/** What a workflow did to the world: its activities (scheduled and local), in order. */
async function activitiesOf(handle: WorkflowHandle): Promise<{ activities: string[]; localActivities: number }> {
  const history = await handle.fetchHistory();
  const events = history.events ?? [];
  return {
    activities: events.flatMap((e) =>
      e.activityTaskScheduledEventAttributes?.activityType?.name ? [e.activityTaskScheduledEventAttributes.activityType.name] : [],
    ),
    localActivities: events.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity').length,
  };
}

/** The failure of a workflow: its message and the result it carried (what the compensation did). */
async function failureOf(handle: WorkflowHandle): Promise<{ message: string; result?: MigrationResult }> {
  try {
    await handle.result();
  } catch (err) {
    const cause = (err as { cause?: { message?: string; details?: unknown[] } }).cause;
    return { message: cause?.message ?? String(err), result: cause?.details?.[0] as MigrationResult | undefined };
  }
  throw new Error(`${handle.workflowId} completed; it should have been refused`);
}

/** The refused migration changed nothing: it ran only preflight and the lease activities, and undid nothing. */
async function expectRefusedBeforeAnyChange(loser: WorkflowHandle, winner: WorkflowHandle): Promise<void> {
  const failure = await failureOf(loser);
  // Refused by preflight (the winner's lease was already there) or by the atomic acquire (both passed preflight).
  console.log(`refused ${loser.workflowId}: ${failure.message}`);
  expect(failure.message).toContain(`workflow ${winner.workflowId}`);
  expect(failure.message).toMatch(/leased by migration/);
  expect(failure.result?.compensations ?? []).toEqual([]);
  const done = await activitiesOf(loser);
  expect(done.localActivities).toBe(0);
  expect(done.activities.filter((a) => !['preflight', 'acquireLease', 'releaseLease'].includes(a))).toEqual([]);
}

/**
 * Two migrations of the same databases started at the same moment while the stand-in application
 * writes; whichever leases first must complete, the other must be refused before anything changes.
 */
async function raceTwo(sandbox: Sandbox, first: MigrationInputDraft, second: MigrationInputDraft) {
  const app = new AppWriter(() => sandbox.configuredUrl(), 10, true);
  app.start();
  await sleep(300);
  const handles = await Promise.all([sandbox.start(first), sandbox.start(second)]);
  // Approved ahead of time, as migrateUnderLoad does; the refused one may already be gone.
  await Promise.all(
    handles.map((h) => h.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] }).catch(() => undefined)),
  );
  const outcomes = await Promise.allSettled(handles.map((h) => h.result()));
  await sleep(500);
  const writes = await app.stop();
  const winners = handles.filter((_, i) => outcomes[i].status === 'fulfilled');
  expect(winners).toHaveLength(1);
  const winner = winners[0];
  const loser = handles.find((h) => h !== winner)!;
  const result = (outcomes[handles.indexOf(winner)] as PromiseFulfilledResult<MigrationResult>).value;
  expect(result.outcome).toBe('completed');
  expect(result.verification).toBe('passed');
  await expectRefusedBeforeAnyChange(loser, winner);
  // Every write the application saw acknowledged is on the target (where it now writes), exactly once.
  expect(sandbox.configuredUrl()).toBe(sandbox.targetUrl);
  await expectEveryAckedWriteOnce(sandbox.targetUrl, writes);
  // Both leases given back by the winner; the loser's release touched nothing of the winner's.
  expect(await comment(sandbox.sourceUrl)).toBeNull();
  expect(await comment(sandbox.targetUrl)).toBeNull();
  const winnerActivities = (await activitiesOf(winner)).activities;
  expect(winnerActivities.slice(0, 2)).toEqual(['preflight', 'acquireLease']);
  expect(winnerActivities.at(-1)).toBe('releaseLease');
}

describe('one migration per database at a time', () => {
  it('refuses the second of two migrations with the same migration id started together, before it changes anything', async () => {
    const sandbox = await sandboxFor('lease_same');
    const input = sandbox.input();
    await raceTwo(sandbox, input, input);
  });

  it('refuses the second of two migrations with different migration ids started together, before it changes anything', async () => {
    const sandbox = await sandboxFor('lease_diff');
    const first = sandbox.input();
    await raceTwo(sandbox, first, sandbox.input({ migrationId: `${first.migrationId}-other` }));
  });

  it("reports another running migration's lease as a preflight blocker naming it", async () => {
    const sandbox = await sandboxFor('lease_blocker');
    const first = await sandbox.start(sandbox.input());
    // Past the lease, waiting for the go-live decision: both databases are held by `first`.
    await untilPhase(first, 'awaiting-go-live');
    expect(await comment(sandbox.sourceUrl)).toContain(`"workflowId":"${first.workflowId}"`);
    expect(await comment(sandbox.targetUrl)).toContain(`"workflowId":"${first.workflowId}"`);
    const configBefore = sandbox.configText();
    // Without a migrationId: derived from its workflow id, which has characters a migration id cannot hold, so hashed.
    const second = await sandbox.start(sandbox.input({ migrationId: undefined }));
    const failure = await failureOf(second);
    expect(failure.result?.migrationId).toMatch(new RegExp(`^${second.workflowId.replace(/_/g, '-')}-[0-9a-f]{10}$`));
    expect(failure.message).toMatch(/preflight found \d+ blocker\(s\); nothing was changed/);
    expect(failure.message).toContain(
      `source database "src_${sandbox.id}" is leased by migration "${sandbox.input().migrationId}" (workflow ${first.workflowId}`,
    );
    expect(failure.message).toContain(`target database "tgt_${sandbox.id}" is leased by migration`);
    expect((await activitiesOf(second)).activities).toEqual(['preflight']);
    expect(sandbox.configText()).toBe(configBefore);
    expect(await comment(sandbox.sourceUrl)).toContain(`"workflowId":"${first.workflowId}"`);
    await first.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });
    expect((await migrationResult(first)).outcome).toBe('completed');
    expect(await comment(sandbox.sourceUrl)).toBeNull();
  });

  it('takes over a lease left by a terminated workflow, and gives the database its own comment back', async () => {
    const sandbox = await sandboxFor('lease_stale');
    await setComment(sandbox.sourceAdminUrl, 'orders, production');
    // A migration that takes its leases and is then terminated (no compensation, no release), as a lost workflow would be.
    let unblock!: () => void;
    const blocked = new Promise<void>((r) => (unblock = r));
    const real = sandbox.realActivities;
    await sandbox.useActivities({
      ...real,
      acquireLease: async (args: Parameters<typeof real.acquireLease>[0]) => {
        const taken = await real.acquireLease(args);
        await blocked;
        return taken;
      },
    });
    const lost = await sandbox.start(sandbox.input({ migrationId: 'lost-migration' }));
    for (let i = 0; !(await comment(sandbox.targetUrl))?.includes(lost.workflowId); i++) {
      if (i > 400) throw new Error('the lost migration never took its lease');
      await sleep(25);
    }
    await lost.terminate('lost: terminated without compensation');
    unblock();
    expect(await comment(sandbox.sourceUrl)).toContain(`"workflowId":"${lost.workflowId}"`);
    await sandbox.useActivities(real);

    const { handle, result, writes } = await migrateUnderLoad(sandbox, sandbox.input(), ['go-live']);
    expect(result.outcome).toBe('completed');
    await expectEveryAckedWriteOnce(sandbox.targetUrl, writes);
    // Preflight saw the stale lease (a warning, not a blocker); the lease was then taken over from it.
    const status = await handle.query(statusQuery);
    expect(status.plan?.warnings.join('\n')).toContain(`leased by migration "lost-migration" (workflow ${lost.workflowId}`);
    expect(status.plan?.blockers).toEqual([]);
    // The comment the lost lease replaced is back; the target had none.
    expect(await comment(sandbox.sourceUrl)).toBe('orders, production');
    expect(await comment(sandbox.targetUrl)).toBeNull();
  });
});
