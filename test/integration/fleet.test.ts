/**
 * A fleet of 20 small databases on the local clusters (dump-restore, gates approved by the fleet), with
 * two real faults: one target that is not empty (preflight blocks it, nothing changes) and one source
 * table the migration's role cannot read (pg_dump fails in the middle of the copy; the migration undoes
 * its steps). The others complete; pause and resume hold back new starts; the report's figures add up;
 * every migration carries the fleet's id as a search attribute. Then a second fleet with failure budget
 * 1: after the two failures no new migration starts.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetInputDraft } from '../../contract/fleet';
import type { FleetReport } from '../../contract/fleet-report';
import { databaseUrl } from '../../stack';
import { createSmallDatabases, dropSmallDatabase, smallDatabaseMigration, type SmallDatabase } from '../../stack/small-databases';
import { fleetStatusQuery, pauseFleetUpdate, resumeFleetUpdate, type FleetResult, type FleetStatus } from '../../signals/fleet';
import { migrationStartOptions } from '../../signals/task-queue';
import { openSandbox, query, type Sandbox } from '../helpers/harness';

const FLEET_SIZE = 20;
const PREFLIGHT_FAULT = 3;
const COPY_FAULT = 11;

let sandbox: Sandbox;
let dir: string;
const dbs: SmallDatabase[] = [];
let fleet: WorkflowHandle;
let result: FleetResult;
let pausedStatus: FleetStatus;
let pausedStartedAfterWait: number;
let startedAtPause: number;
let report: FleetReport;

/** Small databases of this sandbox, numbered from `first`; database i has 100 + 20 i accounts. */
const createDbs = (first: number, count: number) =>
  createSmallDatabases(
    sandbox.env,
    Array.from({ length: count }, (_, k) => `fl_${sandbox.id}_${String(first + k).padStart(2, '0')}`),
    { accounts: (k) => 100 + (first + k) * 20, configDir: dir, refPrefix: 'TEST_FLEET' },
  );

async function startFleet(input: FleetInputDraft): Promise<WorkflowHandle> {
  return sandbox.client.workflow.start('migrateFleet', {
    ...migrationStartOptions(sandbox.taskQueue),
    workflowId: `fleet-${input.fleetId}`,
    args: [input],
  });
}

async function untilFleet(handle: WorkflowHandle, done: (s: FleetStatus) => boolean, what: string): Promise<FleetStatus> {
  for (let i = 0; i < 2400; i++) {
    const s = await handle.query(fleetStatusQuery).catch(() => undefined);
    if (s && done(s)) return s;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`never reached: ${what}`);
}

const fleetId = () => `fl-${sandbox.id.replace(/_/g, '-')}`;

beforeAll(async () => {
  sandbox = await openSandbox('fleet', { scale: 1 });
  dir = mkdtempSync(path.join(os.tmpdir(), `pgmig-fleet-${sandbox.id}-`));
  dbs.push(...(await createDbs(0, FLEET_SIZE)));
  // Fault 1: the target already holds a table: preflight blocks the migration before anything changes.
  await query(dbs[PREFLIGHT_FAULT].targetUrl, 'CREATE TABLE public.leftover (id int)');
  // Fault 2: a table the application's role cannot read (created by the superuser, no grant): pg_dump fails mid-copy.
  await query(
    databaseUrl(sandbox.env.SOURCE_ADMIN_URL, `src_${dbs[COPY_FAULT].name}`),
    `CREATE TABLE public.zz_private_ledger (id int PRIMARY KEY, amount numeric);
     INSERT INTO public.zz_private_ledger SELECT g, g FROM generate_series(1, 100) g;
     REVOKE ALL ON public.zz_private_ledger FROM PUBLIC;`,
  );

  fleet = await startFleet({
    fleetId: fleetId(),
    // Stated sizes: the canary is database 0; the faulty ones run in the second wave.
    migrations: dbs.map((db, i) => ({ input: smallDatabaseMigration(db), sizeBytes: 1000 + i })),
    concurrency: 4,
    waves: [{ name: 'canary', size: 1, maxFailures: 0 }, { name: 'early', size: 5 }, { name: 'rest' }],
    failureBudget: 2,
    approval: 'automatic',
    reportDir: path.join(dir, 'report'),
  });
  // Paused once the canary passed: the migrations running finish, no new one starts until resumed.
  await untilFleet(fleet, (s) => s.counts.completed >= 1 && s.counts.running > 0, 'the canary passed, the next wave started');
  await fleet.executeUpdate(pauseFleetUpdate, { args: [{ by: 'sre-on-call', reason: 'look at the canary' }] });
  const atPause = await fleet.query(fleetStatusQuery);
  startedAtPause = atPause.items.filter((i) => i.state !== 'pending').length;
  pausedStatus = await untilFleet(fleet, (s) => s.counts.running === 0, 'the running migrations ended while paused');
  await new Promise((r) => setTimeout(r, 1000));
  pausedStartedAfterWait = (await fleet.query(fleetStatusQuery)).items.filter((i) => i.state !== 'pending').length;
  await fleet.executeUpdate(resumeFleetUpdate, { args: [{ by: 'sre-on-call' }] });
  result = (await fleet.result()) as FleetResult;
  report = JSON.parse(readFileSync(result.report!.json, 'utf8')) as FleetReport;
}, 600_000);

afterAll(async () => {
  for (const db of dbs) await dropSmallDatabase(sandbox.env, db);
  await sandbox?.close();
});

describe('a fleet of 20 small databases', () => {
  it('completes the 18 healthy ones; the preflight and mid-copy faults fail with their reasons', () => {
    expect(result.outcome).toBe('completed');
    expect(result.counts).toMatchObject({ completed: FLEET_SIZE - 2, failed: 2, skipped: 0, pending: 0, running: 0 });
    const byName = new Map(result.items.map((i) => [i.migrationId, i]));
    const preflight = byName.get(dbs[PREFLIGHT_FAULT].name.replace(/_/g, '-'))!;
    expect(preflight).toMatchObject({ state: 'failed', reason: expect.stringMatching(/is not empty/) });
    const copy = byName.get(dbs[COPY_FAULT].name.replace(/_/g, '-'))!;
    expect(copy).toMatchObject({ state: 'failed', reason: expect.stringMatching(/permission denied/) });
  });

  it('leaves each completed database copied and its application pointed at the target; the failed ones untouched', async () => {
    for (const [i, db] of dbs.entries()) {
      const configured = readFileSync(db.configFile, 'utf8');
      if (i === PREFLIGHT_FAULT || i === COPY_FAULT) {
        expect(configured).toContain(db.sourceUrl);
        continue;
      }
      expect(configured).toContain(db.targetUrl);
      const [row] = await query<{ n: number }>(db.targetUrl, 'SELECT count(*)::int AS n FROM public.accounts');
      expect(row.n).toBe(100 + i * 20);
    }
    // The failed copy was undone: the target is empty again.
    const [tables] = await query<{ n: number }>(
      dbs[COPY_FAULT].targetUrl,
      `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public'`,
    );
    expect(tables.n).toBe(0);
  });

  it('pause held back new starts (the running ones finished); resume let the rest run', () => {
    expect(pausedStatus.phase).toBe('paused');
    expect(pausedStatus.paused?.by).toBe('sre-on-call');
    expect(startedAtPause).toBeLessThan(FLEET_SIZE);
    expect(pausedStatus.counts.pending).toBe(FLEET_SIZE - startedAtPause);
    expect(pausedStartedAfterWait).toBe(startedAtPause);
    expect(pausedStatus.events.map((e) => e.what)).toContain('paused by sre-on-call: look at the canary');
  });

  it("the report's figures add up", () => {
    expect(report.total).toBe(FLEET_SIZE);
    expect(Object.values(report.counts).reduce((a, b) => a + b, 0)).toBe(FLEET_SIZE);
    expect(report.rows.filter((r) => r.outcome === 'completed').length).toBe(report.counts.completed);
    expect(report.windows.count).toBe(report.counts.completed);
    const windows = report.rows
      .filter((r) => r.outcome === 'completed')
      .map((r) => r.windowMs!)
      .sort((a, b) => a - b);
    expect(report.windows.max).toBe(windows[windows.length - 1]);
    expect(report.windows.p50).toBe(windows[Math.ceil(0.5 * windows.length) - 1]);
    expect(report.windows.p95).toBe(windows[Math.ceil(0.95 * windows.length) - 1]);
    expect(report.windows.p50!).toBeLessThanOrEqual(report.windows.p95!);
    expect(report.migrationsPerHour).toBeCloseTo(report.counts.completed / (report.elapsedMs! / 3_600_000), 0);
    expect(report.failures.map((f) => f.reason)).toEqual([
      expect.stringMatching(/is not empty/),
      expect.stringMatching(/permission denied/),
    ]);
    const markdown = readFileSync(result.report!.markdown, 'utf8');
    for (const db of dbs) expect(markdown).toContain(db.sourceRef);
    expect(markdown).toMatch(/completed migrations per hour \| [0-9.]+/);
    const svg = readFileSync(result.report!.chart, 'utf8');
    // A bar for every migration that froze writes (the failed copy froze them too, until its undo).
    expect(svg.match(/class="window"/g)?.length).toBe(report.rows.filter((r) => r.windowMs !== undefined).length);
    expect(report.rows.filter((r) => r.windowMs !== undefined).length).toBe(report.counts.completed + 1);
  });

  it("lists the fleet's migrations by the FleetId search attribute", async () => {
    let found: string[] = [];
    for (let i = 0; i < 100 && found.length < FLEET_SIZE; i++) {
      found = [];
      for await (const w of sandbox.client.workflow.list({ query: `FleetId = "${fleetId()}"` })) found.push(w.workflowId);
      if (found.length < FLEET_SIZE) await new Promise((r) => setTimeout(r, 200));
    }
    expect(new Set(found)).toEqual(new Set(result.items.map((i) => i.workflowId)));
  });

  it('a second fleet with failure budget 1 starts nothing after its second failure', async () => {
    const fresh = await createDbs(FLEET_SIZE, 3);
    dbs.push(...fresh);
    const second = await startFleet({
      fleetId: `${fleetId()}-2`,
      migrations: [dbs[PREFLIGHT_FAULT], dbs[COPY_FAULT], ...fresh].map((db) => ({ input: smallDatabaseMigration(db) })),
      waves: [{ name: 'all' }],
      order: 'as-given',
      concurrency: 1,
      failureBudget: 1,
      approval: 'automatic',
      reportDir: path.join(dir, 'report-2'),
    });
    const r = (await second.result()) as FleetResult;
    expect(r.outcome).toBe('halted');
    expect(r.reason).toMatch(/failure budget exceeded: 2 .*budget 1/);
    expect(r.items.map((i) => i.state)).toEqual(['failed', 'failed', 'skipped', 'skipped', 'skipped']);
    for (const db of fresh) expect(readFileSync(db.configFile, 'utf8')).toContain(db.sourceUrl);
    expect(existsSync(r.report!.markdown)).toBe(true);
  });
});
