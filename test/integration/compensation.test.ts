/**
 * A failure injected right after each forward step: the compensations put the world back exactly as it
 * was (config file byte for byte, source writable with its settings, target empty and writable).
 * One sandbox serves every case in turn, so a compensation that left anything behind also breaks the
 * next case's preflight.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MigrationActivities } from '../../activities';
import { databaseName } from '../../activities/database/pg';
import type { ResetResult } from '../../activities/database/target-reset';
import { appName, workDir } from '../../activities/names';
import { statusQuery } from '../../signals';
import {
  failingAfter,
  openSandbox,
  query,
  recordHistory,
  readOnlySettings,
  sourceWritable,
  targetTableCount,
  type Sandbox,
} from '../helpers/harness';

let sandbox: Sandbox;
let before: { config: string; sourceSettings: string[]; targetSettings: string[] };

beforeAll(async () => {
  sandbox = await openSandbox('comp');
  before = {
    config: sandbox.configText(),
    sourceSettings: await readOnlySettings(sandbox.sourceAdminUrl),
    targetSettings: await readOnlySettings(sandbox.targetAdminUrl),
  };
});

afterAll(async () => {
  await sandbox?.close();
});

async function expectWorldRestored(): Promise<void> {
  expect(sandbox.configText()).toBe(before.config);
  expect(await sourceWritable(sandbox)).toBe(true);
  expect(await readOnlySettings(sandbox.sourceAdminUrl)).toEqual(before.sourceSettings);
  expect(await readOnlySettings(sandbox.targetAdminUrl)).toEqual(before.targetSettings);
  expect(await targetTableCount(sandbox)).toBe(0);
}

const steps: [keyof MigrationActivities, string[]][] = [
  ['freezeSource', ['unfreeze-source']],
  // Production first: the application's config and a writable source, then the target's cleanup.
  ['copyAndVerify', ['unfreeze-source', 'reset-target']],
  ['reconcileSequences', ['unfreeze-source', 'reset-target']],
  // The roles' undo gives the objects back to the master user before the reset drops them.
  ['replayRoles', ['unfreeze-source', 'undo-roles', 'reset-target']],
  ['freezeTarget', ['unfreeze-source', 'unfreeze-target', 'undo-roles', 'reset-target']],
  ['swapConfig', ['restore-config', 'unfreeze-source', 'unfreeze-target', 'undo-roles', 'reset-target']],
  ['smokeTest', ['restore-config', 'unfreeze-source', 'unfreeze-target', 'undo-roles', 'reset-target']],
];

describe('compensation after a failure at each forward step', () => {
  for (const [step, undone] of steps) {
    it(`restores the world when ${step} fails after doing its work`, async () => {
      await sandbox.useActivities(failingAfter(sandbox.realActivities, step));
      const handle = await sandbox.start(sandbox.input());
      const error = await handle.result().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(WorkflowFailedError);
      const message = (error as WorkflowFailedError).cause?.message ?? '';
      expect(message).toContain(`injected failure after ${step}`);
      expect(message).toContain(`compensation: ${undone.length}/${undone.length} undo step(s) completed`);
      const status = await handle.query(statusQuery);
      expect(status.phase).toBe('failed');
      expect(status.compensations.map((c) => [c.step, c.state])).toEqual(undone.map((u) => [u, 'completed']));
      await recordHistory(handle, `dump-restore-failed-after-${step}`);
      await expectWorldRestored();
    });
  }

  it('restores the world when the migration is cancelled during the copy', async () => {
    await sandbox.useActivities(sandbox.realActivities);
    const handle = await sandbox.start(sandbox.input());
    // Cancel as soon as the copy has started.
    for (let i = 0; i < 400; i++) {
      const status = await handle.query(statusQuery).catch(() => undefined);
      if (status?.steps.some((s) => s.name === 'copy')) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    await handle.cancel();
    await expect(handle.result()).rejects.toThrow();
    const status = await handle.query(statusQuery);
    expect(status.outcome).toBe('rolled-back');
    expect(status.compensations.map((c) => c.step)).toEqual(['unfreeze-source', 'reset-target']);
    expect(status.compensations.every((c) => c.state === 'completed')).toBe(true);
    await expectWorldRestored();
  });

  /** The workflow failed with the injected failure, and these undos completed (in whichever order the saga runs them). */
  async function expectCompensated(handle: WorkflowHandle, undone: string[]): Promise<void> {
    const error = await handle.result().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect((error as WorkflowFailedError).cause?.message).toContain('injected failure after copyAndVerify');
    const status = await handle.query(statusQuery);
    expect(status.compensations.map((c) => [c.step, c.state]).sort()).toEqual(undone.map((u) => [u, 'completed']).sort());
  }

  it('an undo refused by the target (authentication failed) keeps trying, and resets the target once it may connect again', async () => {
    const admin = sandbox.env.TARGET_ADMIN_URL;
    const role = `undo_${sandbox.id}`;
    const password = randomBytes(12).toString('hex');
    const db = databaseName(sandbox.targetUrl);
    await query(admin, `CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    await query(admin, `ALTER DATABASE ${db} OWNER TO ${role}`);
    const url = new URL(sandbox.targetUrl);
    url.username = role;
    url.password = password;
    const ref = `${sandbox.targetRef}_UNDO`;
    process.env[ref] = url.toString();
    const real = sandbox.realActivities;
    const resetFailures: string[] = [];
    let putBack: Promise<unknown> | undefined;
    try {
      await sandbox.useActivities({
        ...real,
        copyAndVerify: async (...args: Parameters<typeof real.copyAndVerify>) => {
          await real.copyAndVerify(...args);
          // The password is rotated under the migration; it comes back 6 s later (a rotation rolled back, say).
          await query(admin, `ALTER ROLE ${role} PASSWORD '${password}-rotated'`);
          putBack = new Promise((r) => setTimeout(r, 6_000)).then(() => query(admin, `ALTER ROLE ${role} PASSWORD '${password}'`));
          throw ApplicationFailure.nonRetryable('injected failure after copyAndVerify', 'InjectedFailure');
        },
        resetTarget: async (...args: Parameters<typeof real.resetTarget>) => {
          try {
            return await real.resetTarget(...args);
          } catch (err) {
            resetFailures.push((err as Error).message);
            throw err;
          }
        },
      });
      const handle = await sandbox.start(sandbox.input({ target: { url: { env: ref } } }));
      await expectCompensated(handle, ['unfreeze-source', 'reset-target']);
      expect(resetFailures.length).toBeGreaterThan(0);
      expect(resetFailures.every((m) => /password authentication failed/.test(m))).toBe(true);
      await expectWorldRestored();
    } finally {
      await putBack;
      delete process.env[ref];
      await query(admin, `ALTER DATABASE ${db} OWNER TO rds_master`);
      await query(databaseUrlOf(admin, db), `REASSIGN OWNED BY ${role} TO rds_master; DROP OWNED BY ${role}`);
      await query(admin, `DROP ROLE ${role}`);
    }
  });

  it('keeps what another role created on the target meanwhile, and reports what had to go with the copy', async () => {
    const real = sandbox.realActivities;
    let reset: ResetResult | undefined;
    await sandbox.useActivities({
      ...real,
      copyAndVerify: async (...args: Parameters<typeof real.copyAndVerify>) => {
        await real.copyAndVerify(...args);
        // Someone else (a DBA, as postgres) uses the target during the copy: a table of their own, a view on a copied table.
        await query(
          sandbox.targetAdminUrl,
          `CREATE TABLE public.dba_notes (note text); INSERT INTO public.dba_notes VALUES ('keep me');
           CREATE VIEW public.dba_customer_count AS SELECT count(*) AS n FROM shop.customers`,
        );
        throw ApplicationFailure.nonRetryable('injected failure after copyAndVerify', 'InjectedFailure');
      },
      resetTarget: async (...args: Parameters<typeof real.resetTarget>) => (reset = await real.resetTarget(...args)),
    });
    try {
      const handle = await sandbox.start(sandbox.input());
      await expectCompensated(handle, ['unfreeze-source', 'reset-target']);
      expect(reset?.keptForeign).toEqual(['table public.dba_notes (owner postgres)']);
      expect(reset?.droppedForeign).toEqual(['view public.dba_customer_count (owner postgres)']);
      expect(reset?.droppedSchemas).toEqual(['billing', 'shop']);
      expect(await query(sandbox.targetAdminUrl, 'SELECT note FROM public.dba_notes')).toEqual([{ note: 'keep me' }]);
      expect(await targetTableCount(sandbox)).toBe(1);
    } finally {
      await query(sandbox.targetAdminUrl, 'DROP TABLE IF EXISTS public.dba_notes');
    }
    await expectWorldRestored();
  });

  it('the pg-dump engine does not reuse a complete dump another run left on this worker (its source was not frozen since)', async () => {
    const dir = workDir(sandbox.input().migrationId!);
    await mkdir(path.join(dir, 'dump'), { recursive: true });
    await writeFile(path.join(dir, 'dump', 'toc.dat'), 'not a dump of this run');
    await writeFile(path.join(dir, 'dump.complete'), 'run 00000000-0000-0000-0000-000000000000');
    const real = sandbox.realActivities;
    let copied: Awaited<ReturnType<typeof real.copyAndVerify>> | undefined;
    await sandbox.useActivities({
      ...real,
      copyAndVerify: async (...args: Parameters<typeof real.copyAndVerify>) => {
        copied = await real.copyAndVerify(...args);
        throw ApplicationFailure.nonRetryable('injected failure after copyAndVerify', 'InjectedFailure');
      },
    });
    const handle = await sandbox.start(sandbox.input({ copy: { engine: 'pg-dump' } }));
    await expectCompensated(handle, ['reset-target', 'unfreeze-source']);
    // A reused foreign dump would have failed the restore; this one dumped anew and verified.
    expect(copied).toMatchObject({ engine: 'pg-dump', report: { ok: true } });
    expect(existsSync(dir)).toBe(false);
    await expectWorldRestored();
  });

  it('verifyCopy closes the source sessions it opened when the target cannot be reached', async () => {
    const down = new URL(sandbox.targetUrl);
    down.port = '1';
    const ref = `${sandbox.targetRef}_DOWN`;
    process.env[ref] = down.toString();
    const migrationId = `pools-${sandbox.id.replace(/_/g, '-')}`;
    try {
      await expect(
        new MockActivityEnvironment().run(
          (args: Parameters<MigrationActivities['verifyCopy']>[0]) => sandbox.realActivities.verifyCopy(args),
          { migrationId, source: { env: sandbox.sourceRef }, target: { env: ref }, tables: [], jobs: 4 },
        ),
      ).rejects.toThrow(/cannot reach the server \(ECONNREFUSED\)/);
    } finally {
      delete process.env[ref];
    }
    const sessions = () =>
      query<{ n: number }>(sandbox.sourceAdminUrl, 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [
        appName(migrationId, 'verify'),
      ]);
    for (let i = 0; i < 40 && (await sessions())[0].n > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await sessions()).toEqual([{ n: 0 }]);
  });
});

function databaseUrlOf(serverUrl: string, db: string): string {
  const u = new URL(serverUrl);
  u.pathname = `/${db}`;
  return u.toString();
}
