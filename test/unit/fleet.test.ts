/**
 * The fleet's pure rules (contract/fleet*.ts), its report (figures, Markdown, SVG) and its discovery
 * through the Heroku Platform API stand-in.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApplicationFailure, ChildWorkflowFailure, CancelledFailure } from '@temporalio/common';
import { checkFleetControl, checkFleetInput, checkWaveApproval, fillTemplate } from '../../contract/fleet';
import { buildFleetReport } from '../../contract/fleet-report';
import {
  assignWaves,
  childEnd,
  databaseOfRef,
  migrationWorkflowId,
  percentile,
  recordEnd,
  type DiscoveredDatabase,
  type FleetItem,
} from '../../contract/fleet-state';
import { createFleetDiscovery } from '../../activities/fleet/discovery';
import { renderFleetChart, renderFleetMarkdown } from '../../activities/fleet/report';
import type { MigrationResult } from '../../signals';
import { MockActivityEnvironment } from '@temporalio/testing';
import { startHerokuStandIn, type HerokuStandIn } from '../heroku-stand-in';

const migration = (env: string) => ({
  source: { url: { env } },
  target: { url: { env: 'TARGET_URL' } },
  method: 'dump-restore',
  configSink: { type: 'env-file', path: '/srv/app.env' },
});

const result = (outcome: MigrationResult['outcome'], windowMs?: number, reason?: string): MigrationResult => ({
  migrationId: 'm',
  outcome,
  method: 'dump-restore',
  ...(reason ? { reason } : {}),
  rowsCopied: 10,
  tables: 1,
  verification: 'passed',
  freezeWindow: windowMs !== undefined ? { durationMs: windowMs } : {},
  steps: [],
  compensations: [],
  decisions: [],
});

/** The failure a parent sees for a child that failed with `cause`. */
const childFailure = (cause: Error) =>
  new ChildWorkflowFailure('default', { workflowId: 'w', runId: 'r' }, 'migrateDatabase', undefined, cause);

describe('fleet input', () => {
  it('names the field of every problem, inside the migrations too', () => {
    const checked = checkFleetInput({
      fleetId: 'shop',
      migrations: [{ input: migration('A') }, { input: { ...migration('B'), source: { url: 'postgres://u:p@h/db' } } }],
      concurrency: 0,
    });
    expect(checked.ok).toBe(false);
    if (checked.ok) return;
    expect(checked.problems.map((p) => p.field)).toEqual(['concurrency']);
    const second = checkFleetInput({
      fleetId: 'shop',
      migrations: [{ input: migration('A') }, { input: { ...migration('B'), source: { url: 'postgres://u:p@h/db' } } }],
    });
    expect(second.ok ? [] : second.problems.map((p) => p.field)).toEqual(['migrations.1.input.source.url']);
  });

  it('refuses both or neither source, a template without discovery, a wave without size before the last, a wave named twice', () => {
    const fields = (raw: unknown) => {
      const c = checkFleetInput(raw);
      return c.ok ? [] : c.problems.map((p) => p.field);
    };
    expect(fields({ fleetId: 'x' })).toEqual(['migrations']);
    expect(fields({ fleetId: 'x', migrations: [], template: {} })).toEqual(['template']);
    expect(fields({ fleetId: 'x', migrations: [], waves: [{ name: 'a' }, { name: 'a', size: 2 }] })).toEqual([
      'waves.0.size',
      'waves.1.name',
    ]);
    expect(fields({ fleetId: 'x', discovery: { type: 'heroku', token: { env: 'T' } }, template: migration('DB_{APP}') })).toEqual([
      'discovery.team',
    ]);
    // The template is checked filled: a placeholder that makes a bad reference is refused at once.
    expect(fields({ fleetId: 'x', discovery: { type: 'heroku', team: 't', token: { env: 'T' } }, template: migration('{app}') })).toEqual([
      'template.source.url.env',
    ]);
  });

  it('bounds what clients send: control payloads and wave approvals', () => {
    expect(checkFleetControl({ by: 'alice', reason: 'incident' })).toEqual({ ok: true, payload: { by: 'alice', reason: 'incident' } });
    expect(checkFleetControl({ by: '' })).toMatchObject({ ok: false, problem: expect.stringMatching(/^by: /) });
    expect(checkFleetControl({ by: 'a', reason: 'x'.repeat(2001) })).toMatchObject({
      ok: false,
      problem: expect.stringMatching(/^reason: /),
    });
    expect(checkFleetControl({ by: 'a', extra: 1 })).toMatchObject({ ok: false });
    expect(checkWaveApproval({ approver: 'a', wave: 'Canary!' })).toMatchObject({ ok: false, problem: expect.stringMatching(/^wave: /) });
  });

  it('fills the template placeholders everywhere', () => {
    expect(
      fillTemplate(
        { a: ['{app}', { b: 'X_{APP}_{attachment}' }], c: '{addon}', n: 3 },
        { app: 'my-app', addon: 'postgresql-x-1', attachment: 'DATABASE' },
      ),
    ).toEqual({
      a: ['my-app', { b: 'X_MY_APP_DATABASE' }],
      c: 'postgresql-x-1',
      n: 3,
    });
  });
});

describe('fleet rules', () => {
  it('derives one child workflow id per database, stable and distinct', () => {
    const a = databaseOfRef({ env: 'DB_A' });
    expect(a).toBe('env:DB_A');
    expect(databaseOfRef({ ssm: '/x/y', database: 'd' })).toBe('ssm:/x/y/d');
    expect(migrationWorkflowId(a)).toBe(migrationWorkflowId('env:DB_A'));
    expect(migrationWorkflowId('env:DB_A')).not.toBe(migrationWorkflowId('env:db-a'));
    expect(migrationWorkflowId(a)).toMatch(/^pgmig-db-env-db-a-[0-9a-f]{8}$/);
  });

  it('cuts waves smallest first; sizes that add up to fewer put the rest in the last wave', () => {
    const items = [40, 10, 30, 20, 50].map((sizeBytes) => ({ sizeBytes, wave: -1 }));
    const sorted = assignWaves(
      items,
      [
        { name: 'canary', size: 1 },
        { name: 'next', size: 2 },
      ],
      'smallest-first',
    );
    expect(sorted.map((i) => [i.sizeBytes, i.wave])).toEqual([
      [10, 0],
      [20, 1],
      [30, 1],
      [40, 1],
      [50, 1],
    ]);
    expect(assignWaves([{ wave: -1, sizeBytes: 9 }, { wave: -1 }], [{ name: 'all' }], 'as-given').map((i) => i.sizeBytes)).toEqual([
      9,
      undefined,
    ]);
  });

  it("reads a child's end: a result, a failure carrying its MigrationResult (failed or rolled back), a cancellation, anything else", () => {
    expect(childEnd({ result: result('completed', 120) })).toMatchObject({ state: 'completed' });
    const failed = childFailure(
      ApplicationFailure.nonRetryable('copy: permission denied', 'MigrationFailed', result('failed', 50, 'copy: permission denied')),
    );
    expect(childEnd({ error: failed })).toMatchObject({
      state: 'failed',
      reason: 'copy: permission denied',
      result: { freezeWindow: { durationMs: 50 } },
    });
    const rolledBack = childFailure(
      ApplicationFailure.nonRetryable('go-live rejected', 'MigrationRolledBack', result('rolled-back', 80, 'go-live rejected by bob')),
    );
    expect(childEnd({ error: rolledBack })).toMatchObject({ state: 'rolled-back', reason: 'go-live rejected by bob' });
    const cancelled = childFailure(new CancelledFailure('cancelled'));
    expect(childEnd({ error: cancelled })).toEqual({ state: 'cancelled', reason: 'cancelled' });
    expect(
      childEnd({
        error: childFailure(new Error('terminated')),
      }),
    ).toEqual({
      state: 'failed',
      reason: 'terminated',
    });
  });

  it('marks a completed migration over the downtime budget', () => {
    const item: FleetItem = { database: 'd', workflowId: 'w', migrationId: 'm', wave: 0, state: 'running' };
    recordEnd(item, childEnd({ result: result('completed', 5_000) }), '2026-01-01T00:00:00.000Z', 3_000);
    expect(item).toMatchObject({
      state: 'completed',
      overBudget: true,
      windowMs: 5_000,
      reason: expect.stringMatching(/exceeded the downtime budget/),
    });
  });

  it('takes nearest-rank percentiles', () => {
    const v = Array.from({ length: 20 }, (_, i) => i + 1);
    expect([percentile(v, 50), percentile(v, 95), percentile(v, 100), percentile([], 50)]).toEqual([10, 19, 20, undefined]);
  });
});

describe('fleet report', () => {
  const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
  const items: FleetItem[] = [
    {
      database: 'env:A',
      workflowId: 'wa',
      migrationId: 'a',
      wave: 0,
      state: 'completed',
      method: 'dump-restore',
      windowMs: 1000,
      startedAt: t(0),
      endedAt: t(10),
    },
    {
      database: 'env:B',
      workflowId: 'wb',
      migrationId: 'b',
      wave: 1,
      state: 'completed',
      method: 'dump-restore',
      windowMs: 3000,
      startedAt: t(10),
      endedAt: t(20),
    },
    {
      database: 'env:C',
      workflowId: 'wc',
      migrationId: 'c',
      wave: 1,
      state: 'failed',
      reason: 'permission denied for table x',
      startedAt: t(10),
      endedAt: t(15),
    },
    { database: 'env:D', workflowId: 'wd', migrationId: 'd', wave: 1, state: 'skipped', reason: 'budget' },
  ];
  const report = buildFleetReport({ fleetId: 'f', outcome: 'halted', items, waveNames: ['canary', 'rest'], generatedAt: t(30) });

  it('adds up', () => {
    expect(report.counts).toMatchObject({ completed: 2, failed: 1, skipped: 1 });
    expect(report.windows).toEqual({ count: 2, p50: 1000, p95: 3000, max: 3000, mean: 2000 });
    expect(report.elapsedMs).toBe(20_000);
    expect(report.migrationsPerHour).toBe(360); // 2 in 20 s
    expect(report.failures).toEqual([{ database: 'env:C', workflowId: 'wc', outcome: 'failed', reason: 'permission denied for table x' }]);
    expect(report.rows.map((r) => r.wave)).toEqual(['canary', 'rest', 'rest', 'rest']);
  });

  it('renders Markdown with every database and an SVG bar per window', () => {
    const md = renderFleetMarkdown(report);
    for (const i of items) expect(md).toContain(i.database);
    expect(md).toContain('| completed migrations per hour | 360 |');
    expect(md).toContain('permission denied for table x');
    const svg = renderFleetChart(report);
    expect(svg.match(/class="window"/g)).toHaveLength(2);
    expect(svg).toContain('class="p95"');
  });
});

describe('fleet discovery through the Heroku Platform API', () => {
  let heroku: HerokuStandIn;
  beforeAll(async () => {
    heroku = await startHerokuStandIn({ tokens: ['tok-1'] });
    heroku.seedApp('shop-web', { team: 'acme' });
    heroku.seedApp('shop-admin', { team: 'acme' });
    heroku.seedApp('blog', { team: 'acme' });
    heroku.seedApp('other', { team: 'elsewhere' });
    heroku.seedPostgres('shop-web', { url: 'postgres://u:secret@db1/x', name: 'postgresql-shop-1', plan: 'heroku-postgresql:standard-2' });
    // shop-admin reads shop-web's database: one database, migrated with the app that bills it.
    const shared = [...heroku.state.addons.values()].find((a) => a.name === 'postgresql-shop-1')!;
    await fetch(`${heroku.url}/addon-attachments`, {
      method: 'POST',
      headers: { Accept: 'application/vnd.heroku+json; version=3', Authorization: 'Bearer tok-1', 'Content-Type': 'application/json' },
      body: JSON.stringify({ addon: shared.id, app: 'shop-admin', name: 'SHOP_DB' }),
    });
    heroku.seedPostgres('blog', { url: 'postgres://u:secret@db2/x', name: 'postgresql-blog-2', plan: 'heroku-postgresql:essential-0' });
  });
  afterAll(() => heroku.close());

  it("lists a team's apps, each app's own heroku-postgresql add-on, its plan and attachments; no secret in what it returns", async () => {
    const discovery = createFleetDiscovery({
      env: { HEROKU_API_KEY: 'tok-1' },
      ssm: () => {
        throw new Error('no ssm');
      },
      secretsManager: () => {
        throw new Error('no sm');
      },
    });
    const args: Parameters<typeof discovery.discoverFleet>[0] = {
      discovery: { type: 'heroku', team: 'acme', token: { env: 'HEROKU_API_KEY' }, apiUrl: heroku.url, measureSize: false },
      template: migration('DB_{APP}'),
    };
    const found: DiscoveredDatabase[] = await new MockActivityEnvironment().run((a: typeof args) => discovery.discoverFleet(a), args);
    expect(found.map((d) => [d.app, d.addon, d.attachment, d.plan])).toEqual([
      ['shop-web', 'postgresql-shop-1', 'DATABASE', 'heroku-postgresql:standard-2'],
      ['blog', 'postgresql-blog-2', 'DATABASE', 'heroku-postgresql:essential-0'],
    ]);
    expect(found[0].attachments).toEqual([
      { app: 'shop-web', name: 'DATABASE' },
      { app: 'shop-admin', name: 'SHOP_DB' },
    ]);
    expect(JSON.stringify(found)).not.toContain('secret');
    expect(heroku.state.requests.map((r) => r.path)).toContain('/teams/acme/apps');
  });
});
