/**
 * The hold of a `triggers` migration from a Heroku-like source, which cannot subscribe: the same
 * capture runs on the target from inside the window and is applied to the source by the migration's
 * own session, so a rollback during the hold carries back every write the application made on the
 * target, with the source role unable to skip triggers (its own user triggers are off while a batch
 * applies, and only then). Afterwards nothing of either capture is left on either side.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveUpdate, rollbackUpdate, statusQuery } from '../../signals';
import { AppWriter } from '../../stack/app-writer';
import { expectEveryAckedWriteOnce, openSandbox, query, recordHistory, sourceWritable, untilPhase, type Sandbox } from '../helpers/harness';
import { migrationResult } from '../../signals/outcome';

let sandbox: Sandbox;

beforeAll(async () => {
  sandbox = await openSandbox('trighold', { heroku: true });
  // A user trigger of the source role's own: it must not fire again for the changes the rollback carries back.
  await query(sandbox.sourceUrl, 'CREATE TABLE public.customer_changes (customer_id bigint, at timestamptz DEFAULT now())');
  await query(
    sandbox.sourceUrl,
    `CREATE FUNCTION public.note_customer_change() RETURNS trigger LANGUAGE plpgsql AS
       $$ BEGIN INSERT INTO public.customer_changes (customer_id) VALUES (NEW.id); RETURN NEW; END $$`,
  );
  await query(
    sandbox.sourceUrl,
    'CREATE TRIGGER note_customer_change AFTER UPDATE ON shop.customers FOR EACH ROW EXECUTE FUNCTION public.note_customer_change()',
  );
});

afterAll(async () => {
  await sandbox?.close();
});

describe('triggers: hold with reverse capture', () => {
  it('rolls back during the hold without losing a write made on the target, leaving nothing of the capture', async () => {
    const config = sandbox.configText();
    const app = new AppWriter(() => sandbox.configuredUrl(), 10, true);
    app.start();
    const handle = await sandbox.start(
      sandbox.triggersInput({
        hold: { duration: '10m', reverseReplication: true },
        gates: { cutover: { timeout: '2m' }, 'go-live': { timeout: '2m' }, decommission: { timeout: '1m' } },
      }),
    );
    await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'cutover' }] });
    await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });
    await untilPhase(handle, 'holding');
    await new Promise((r) => setTimeout(r, 4000)); // the application writes on the target
    await handle.executeUpdate(rollbackUpdate, { args: [{ approver: 'alice', reason: 'errors after go-live' }] });
    const result = await migrationResult(handle);
    await new Promise((r) => setTimeout(r, 500)); // and on the source again
    const writes = await app.stop();
    await recordHistory(handle, 'triggers-hold-rollback');

    expect(result.outcome).toBe('rolled-back');
    const status = await handle.query(statusQuery);
    console.log(`triggers rollback window: ${status.hold?.rollback?.windowMs} ms, longest write gap ${writes.longestGapMs} ms`);
    const onTarget = writes.acked.filter((w) => w.database.endsWith(`/tgt_${sandbox.id}`));
    expect(onTarget.length).toBeGreaterThan(20);
    // Every acknowledged write, the target's included, is on the source exactly once.
    await expectEveryAckedWriteOnce(sandbox.sourceUrl, writes);
    // The customers the application updated on the target carry their new names on the source.
    const [renamedOnSource] = await query<{ n: number }>(
      sandbox.sourceUrl,
      `SELECT count(*)::int AS n FROM shop.customers WHERE name LIKE 'renamed %'`,
    );
    expect(renamedOnSource.n).toBeGreaterThan(0);
    // The source role's own trigger did not fire for the changes carried back: the source has the target's
    // rows of it (the target's trigger fired there, and its rows were captured), plus one per write since.
    const count = async (url: string) => (await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM public.customer_changes'))[0].n;
    const onSourceAfterRollback = writes.acked.filter(
      (w) => w.database.endsWith(`/src_${sandbox.id}`) && w.sentAt > (result.freezeWindow.frozenAt ?? 0),
    ).length;
    const extra = (await count(sandbox.sourceAdminUrl)) - (await count(sandbox.targetAdminUrl));
    expect(extra).toBeGreaterThanOrEqual(0);
    expect(extra).toBeLessThanOrEqual(onSourceAfterRollback);
    // A trigger fired again for the changes carried back would add about one row per write on the target: more
    // than the bound above allows as long as the target took more writes than the source after the rollback (how many
    // more depends on how fast the rollback ran on this machine).
    expect(onTarget.length).toBeGreaterThan(onSourceAfterRollback);
    const [enabled] = await query<{ e: string }>(
      sandbox.sourceAdminUrl,
      `SELECT tgenabled::text AS e FROM pg_trigger WHERE tgname = 'note_customer_change'`,
    );
    expect(enabled.e).toBe('O');

    expect(sandbox.configText()).toBe(config);
    expect(await sourceWritable(sandbox)).toBe(true);
    for (const url of [sandbox.sourceAdminUrl, sandbox.targetAdminUrl]) {
      expect(await query(url, `SELECT tgname FROM pg_trigger WHERE tgname LIKE '\\_pgmig%'`)).toEqual([]);
      expect(await query(url, `SELECT nspname FROM pg_namespace WHERE nspname LIKE '\\_pgmig%'`)).toEqual([]);
    }
  });
});
