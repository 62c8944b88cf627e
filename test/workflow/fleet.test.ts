/**
 * migrateFleet on fake activities: its children are real migrateDatabase workflows whose activities are
 * the fakes (./fakes.ts). Waves (smallest first, a wave passes before the next), the failure budget,
 * per-wave approval, pause / resume / cancel as validated Updates, continue-as-new with the state
 * carried, and one migration per database across fleets.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import type { FleetInputDraft } from '../../contract/fleet';
import { migrationWorkflowId } from '../../contract/fleet-state';
import type { MigrationInputDraft } from '../../contract/input';
import {
  approveWaveUpdate,
  cancelFleetUpdate,
  fleetStatusQuery,
  pauseFleetUpdate,
  resumeFleetUpdate,
  type FleetResult,
  type FleetStatus,
} from '../../signals/fleet';
import { approveUpdate, statusQuery, type MigrationResult, type MigrationStatus } from '../../signals';
import type { migrateFleet } from '../../workflows/migrate-fleet';
import { fakeActivities, type FakeActivities } from './fakes';
import { migrationInput, refusalOf, uniqueId, useTestServer, waitForPhase, withWorker, type Run } from './harness';

const server = useTestServer();

/** A migration of its own database (the fakes ignore which): `name` says which database. */
const migration = (name: string, overrides: Partial<MigrationInputDraft> = {}) =>
  migrationInput({ migrationId: name, source: { url: { env: 'FAKE_SOURCE_URL', database: name.replace(/-/g, '_') } }, ...overrides });

/** Preflight fails for migrations whose id starts with `bad` (a real preflight failure: nothing changed). */
function failingPreflight(): FakeActivities {
  const base = fakeActivities({ client: server().client }).activities;
  return {
    preflight: async (args) => {
      if (args.migrationId.startsWith('bad')) throw ApplicationFailure.nonRetryable(`cannot reach ${args.migrationId}`, 'Unreachable');
      return (await base.preflight(args)) as Awaited<ReturnType<NonNullable<FakeActivities['preflight']>>>;
    },
  };
}

async function startFleet(
  run: Run,
  input: Omit<FleetInputDraft, 'fleetId'> & { fleetId?: string },
): Promise<WorkflowHandle<typeof migrateFleet>> {
  const fleetId = input.fleetId ?? uniqueId('fleet');
  return server().client.workflow.start<typeof migrateFleet>('migrateFleet', {
    taskQueue: run.taskQueue,
    workflowId: `fleet-${fleetId}`,
    args: [{ ...input, fleetId }],
  });
}

async function untilFleet(handle: WorkflowHandle, done: (s: FleetStatus) => boolean, what: string): Promise<FleetStatus> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const s = await handle.query(fleetStatusQuery);
    if (done(s)) return s;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; phase ${s.phase}, counts ${JSON.stringify(s.counts)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** With RECORD_HISTORIES=1, keeps the fleet's history for test/replay.test.ts. */
async function record(handle: WorkflowHandle, name: string): Promise<void> {
  if (process.env.RECORD_HISTORIES !== '1') return;
  writeFileSync(path.resolve(__dirname, '../histories', `${name}.json`), JSON.stringify(await handle.fetchHistory()));
}

/** Waits until the child migration exists (the fleet marks it running before its start is recorded) and is in `phase`. */
async function childInPhase(workflowId: string, phase: MigrationStatus['phase']): Promise<WorkflowHandle> {
  const handle = server().client.workflow.getHandle(workflowId);
  for (
    let i = 0;
    i < 200 &&
    !(await handle.describe().then(
      () => true,
      () => false,
    ));
    i++
  )
    await new Promise((r) => setTimeout(r, 50));
  await waitForPhase(handle, phase);
  return handle;
}

const ids = (n: number, prefix = 'db') => Array.from({ length: n }, () => uniqueId(prefix));

describe.concurrent('migrateFleet on fake activities', () => {
  it('runs the smallest database first as the canary wave, then the rest with bounded concurrency; every child carries FleetId', async () => {
    await withWorker(server(), {}, async (run) => {
      const names = ids(3);
      const sizes = [30, 10, 20];
      const handle = await startFleet(run, {
        migrations: names.map((n, i) => ({ input: migration(n), sizeBytes: sizes[i] })),
        concurrency: 2,
        approval: 'automatic',
      });
      const result: FleetResult = await handle.result();
      expect(result.outcome).toBe('completed');
      expect(result.counts).toMatchObject({ completed: 3, failed: 0, skipped: 0 });
      // Smallest first: the canary is the 10-byte database, and ended before any other started.
      expect(result.items.map((i) => i.sizeBytes)).toEqual([10, 20, 30]);
      const [canary, ...rest] = result.items;
      expect(canary.wave).toBe(0);
      expect(rest.every((i) => i.wave === 1)).toBe(true);
      expect(rest.every((i) => Date.parse(i.startedAt!) >= Date.parse(canary.endedAt!))).toBe(true);
      // At most 2 at once.
      const spans = result.items.map((i) => [Date.parse(i.startedAt!), Date.parse(i.endedAt!)]);
      for (const [s] of spans) expect(spans.filter(([a, b]) => a <= s && s < b).length).toBeLessThanOrEqual(2);
      expect(result.items.every((i) => i.method === 'dump-restore' && typeof i.windowMs === 'number')).toBe(true);
      // The child of a database has the id derived from it, the fleet's id as a search attribute, and the fleet's approval.
      const child = server().client.workflow.getHandle(migrationWorkflowId(`env:FAKE_SOURCE_URL/${canary.migrationId.replace(/-/g, '_')}`));
      expect(child.workflowId).toBe(canary.workflowId);
      const described = await child.describe();
      expect(described.typedSearchAttributes.getAll().find((p) => p.key.name === 'FleetId')?.value).toBe(
        (await handle.query(fleetStatusQuery)).fleetId,
      );
      const childResult = (await child.result()) as MigrationResult;
      expect(childResult.decisions).toEqual([expect.objectContaining({ gate: 'go-live', approver: expect.stringMatching(/^fleet:/) })]);
      expect(result.report?.markdown).toMatch(/fleet\.md$/);
    });
  });

  it('failure budget: once more migrations failed than it allows, no new one starts; failures keep their reasons', async () => {
    await withWorker(server(), { overrides: failingPreflight() }, async (run) => {
      const names = [uniqueId('bad'), uniqueId('bad'), ...ids(3)];
      const handle = await startFleet(run, {
        migrations: names.map((n) => ({ input: migration(n) })),
        waves: [{ name: 'all' }],
        order: 'as-given',
        concurrency: 1,
        failureBudget: 1,
        approval: 'automatic',
      });
      const result = await handle.result();
      expect(result.outcome).toBe('halted');
      expect(result.reason).toMatch(/failure budget exceeded: 2 migration\(s\).*budget 1/);
      await record(handle, 'fleet-budget-exceeded');
      expect(result.items.map((i) => i.state)).toEqual(['failed', 'failed', 'skipped', 'skipped', 'skipped']);
      expect(result.items[0].reason).toMatch(/cannot reach bad-/);
      expect(result.items[2].reason).toMatch(/failure budget exceeded/);
    });
  });

  it('a canary that fails stops the fleet before the next wave', async () => {
    await withWorker(server(), { overrides: failingPreflight() }, async (run) => {
      const handle = await startFleet(run, {
        migrations: [{ input: migration(uniqueId('bad')), sizeBytes: 1 }, ...ids(2).map((n) => ({ input: migration(n), sizeBytes: 5 }))],
        failureBudget: 5,
        approval: 'automatic',
      });
      const result = await handle.result();
      expect(result.outcome).toBe('halted');
      expect(result.reason).toMatch(/wave canary failed: 1 of its migrations/);
      expect(result.counts).toMatchObject({ failed: 1, skipped: 2, completed: 0 });
    });
  });

  it('per-wave approval, pause and resume: nothing starts unapproved or paused; the wave approver approves the gates', async () => {
    await withWorker(server(), {}, async (run) => {
      const handle = await startFleet(run, { migrations: ids(2).map((n) => ({ input: migration(n) })), concurrency: 2 });
      await untilFleet(handle, (s) => s.phase === 'awaiting-approval', 'awaiting approval');
      // Refused: unknown wave, a long approver, an unknown field; none reaches history.
      expect(await refusalOf(handle.executeUpdate(approveWaveUpdate, { args: [{ approver: 'alice', wave: 'nope' }] }))).toMatch(
        /unknown wave/,
      );
      expect(await refusalOf(handle.executeUpdate(approveWaveUpdate, { args: [{ approver: 'x'.repeat(201), wave: 'canary' }] }))).toMatch(
        /approver: must be at most 200/,
      );
      expect(
        await refusalOf(handle.executeUpdate(pauseFleetUpdate, { args: [{ by: 'bob', extra: 1 } as unknown as { by: string }] })),
      ).toMatch(/payload|extra|Unrecognized/i);
      expect(await refusalOf(handle.executeUpdate(resumeFleetUpdate, { args: [{ by: 'bob' }] }))).toMatch(/not paused/);

      await handle.executeUpdate(pauseFleetUpdate, { args: [{ by: 'bob', reason: 'incident' }] });
      expect(await refusalOf(handle.executeUpdate(pauseFleetUpdate, { args: [{ by: 'bob' }] }))).toMatch(/already paused by bob/);
      await handle.executeUpdate(approveWaveUpdate, { args: [{ approver: 'alice', wave: 'canary', reason: 'go' }] });
      await new Promise((r) => setTimeout(r, 400));
      const paused = await handle.query(fleetStatusQuery);
      expect(paused.phase).toBe('paused');
      expect(paused.counts.pending).toBe(2);

      await handle.executeUpdate(resumeFleetUpdate, { args: [{ by: 'bob' }] });
      const afterCanary = await untilFleet(handle, (s) => s.counts.completed === 1 && s.phase === 'awaiting-approval', 'the canary done');
      expect(afterCanary.waves.map((w) => w.state)).toEqual(['passed', 'not-started']);
      expect(await refusalOf(handle.executeUpdate(approveWaveUpdate, { args: [{ approver: 'alice', wave: 'canary' }] }))).toMatch(
        /already run/,
      );
      await handle.executeUpdate(approveWaveUpdate, { args: [{ approver: 'carol', wave: 'rest' }] });
      const result = await handle.result();
      await record(handle, 'fleet-per-wave-pause-resume');
      expect(result.counts.completed).toBe(2);
      const canaryChild = (await server().client.workflow.getHandle(result.items[0].workflowId).result()) as MigrationResult;
      expect(canaryChild.decisions[0]).toMatchObject({ gate: 'go-live', approver: 'alice' });
      const restChild = (await server().client.workflow.getHandle(result.items[1].workflowId).result()) as MigrationResult;
      expect(restChild.decisions[0]).toMatchObject({ gate: 'go-live', approver: 'carol' });
      const status = await handle.query(fleetStatusQuery);
      expect(status.events.map((e) => e.what)).toEqual(
        expect.arrayContaining(['paused by bob: incident', 'resumed by bob', 'wave canary approved by alice', 'wave canary passed']),
      );
    });
  });

  it('cancel: the running migrations are cancelled (and undo their steps), the rest skipped', async () => {
    await withWorker(server(), {}, async (run) => {
      // Gates left to each migration: both wait at go-live, with the target switched, until cancelled.
      const handle = await startFleet(run, {
        migrations: ids(3).map((n) => ({ input: migration(n) })),
        waves: [{ name: 'all' }],
        concurrency: 2,
        approval: 'child-gates',
      });
      const running = await untilFleet(handle, (s) => s.counts.running === 2, 'two running');
      for (const item of running.items.filter((i) => i.state === 'running')) await childInPhase(item.workflowId, 'awaiting-go-live');
      await handle.executeUpdate(cancelFleetUpdate, { args: [{ by: 'dave', reason: 'wrong fleet' }] });
      const result = await handle.result();
      expect(result.outcome).toBe('cancelled');
      expect(result.reason).toBe('cancelled by dave: wrong fleet');
      expect(result.counts).toMatchObject({ cancelled: 2, skipped: 1 });
      await record(handle, 'fleet-cancelled');
      const child: MigrationStatus = await server().client.workflow.getHandle(result.items[0].workflowId).query(statusQuery);
      expect(child.compensations.length).toBeGreaterThan(0);
      expect(child.sides.application).toBe('source');
    });
  });

  it('continues as new after startsPerRun starts, carrying its state, and completes the whole fleet', async () => {
    await withWorker(server(), {}, async (run) => {
      const handle = await startFleet(run, {
        migrations: ids(3).map((n) => ({ input: migration(n) })),
        waves: [{ name: 'one', size: 1 }, { name: 'rest' }],
        concurrency: 2,
        startsPerRun: 2,
        approval: 'automatic',
      });
      const firstRun = (await handle.describe()).runId;
      const result = await handle.result();
      // The first run's history: it ends by continuing as new.
      if (process.env.RECORD_HISTORIES === '1')
        writeFileSync(
          path.resolve(__dirname, '../histories', 'fleet-continued-as-new.json'),
          JSON.stringify(await server().client.workflow.getHandle(handle.workflowId, firstRun).fetchHistory()),
        );
      expect(result.counts.completed).toBe(3);
      const last = server().client.workflow.getHandle(handle.workflowId);
      expect((await last.describe()).runId).not.toBe(firstRun);
      const status = await last.query(fleetStatusQuery);
      expect(status.run).toBeGreaterThanOrEqual(1);
      expect(status.events.filter((e) => e.what.startsWith('continued as new')).length).toBe(status.run);
      expect(new Set(result.items.map((i) => i.workflowId)).size).toBe(3);
    });
  });

  it('one migration per database: a second fleet does not start a database whose migration runs', async () => {
    await withWorker(server(), {}, async (run) => {
      const shared = uniqueId('shared');
      const first = await startFleet(run, { migrations: [{ input: migration(shared) }], approval: 'child-gates' });
      const { items } = await untilFleet(first, (s) => s.counts.running === 1, 'the first fleet running');
      const child = await childInPhase(items[0].workflowId, 'awaiting-go-live');
      const second = await startFleet(run, { migrations: [{ input: migration(shared) }], approval: 'automatic', failureBudget: 1 });
      const secondResult = await second.result();
      expect(secondResult.items[0]).toMatchObject({
        state: 'failed',
        reason: expect.stringMatching(/another migration of this database is running/),
      });
      await child.executeUpdate(approveUpdate, { args: [{ approver: 'erin', gate: 'go-live' }] });
      expect((await first.result()).counts.completed).toBe(1);
    });
  });

  it('discovery: one migration per add-on found, built from the template, smallest first', async () => {
    const found = [
      {
        app: 'shop-web',
        addon: `postgresql-big-${uniqueId('a')}`,
        attachment: 'DATABASE',
        plan: 'heroku-postgresql:standard-2',
        attachments: [],
        sizeBytes: 900,
      },
      {
        app: 'blog',
        addon: `postgresql-small-${uniqueId('b')}`,
        attachment: 'DATABASE',
        plan: 'heroku-postgresql:essential-0',
        attachments: [],
        sizeBytes: 100,
      },
    ];
    await withWorker(server(), { overrides: { discoverFleet: async () => found } }, async (run) => {
      const template = migration('ignored', { migrationId: undefined, source: { url: { ssm: '/heroku/{app}/{attachment}_URL' } } });
      const handle = await startFleet(run, {
        discovery: { type: 'heroku', team: 'acme', token: { env: 'HEROKU_API_KEY' } },
        template,
        approval: 'automatic',
      });
      const result = await handle.result();
      expect(result.counts.completed).toBe(2);
      expect(result.items.map((i) => [i.discovered?.app, i.database, i.wave])).toEqual([
        ['blog', `heroku:${found[1].addon}`, 0],
        ['shop-web', `heroku:${found[0].addon}`, 1],
      ]);
      const preflights = run.fakes.calls
        .filter((c) => c.name === 'preflight')
        .map((c) => (c.args as { input: MigrationInputDraft }).input.source.url);
      expect(preflights).toEqual([{ ssm: '/heroku/blog/DATABASE_URL' }, { ssm: '/heroku/shop-web/DATABASE_URL' }]);
    });
  });

  it('refuses bad input naming the field, and two entries of one database', async () => {
    await withWorker(server(), {}, async (run) => {
      const bad = await startFleet(run, {
        migrations: [{ input: migration('a-one', { source: { url: { env: 'postgres://u:p@h/db' } } }) }],
        concurrency: 0,
      });
      await expect(bad.result()).rejects.toMatchObject({
        cause: { message: expect.stringMatching(/concurrency: .*migrations\.0\.input\.source\.url|concurrency/) },
      });
      const dup = await startFleet(run, { migrations: [{ input: migration('same-db') }, { input: migration('same-db') }] });
      await expect(dup.result()).rejects.toMatchObject({
        cause: { message: expect.stringMatching(/migrations\.1\.input\.source\.url: the same database as migrations\.0/) },
      });
    });
  });
});
