import { describe, expect, it } from 'vitest';
import { checkMigrationInput } from '../../contract/input';
import {
  checkRehearsalInput,
  childMigrationInput,
  formatRehearsalProblems,
  rehearsedGates,
  rehearsedMethod,
  scratchNames,
} from '../../contract/rehearsal';
import {
  buildReport,
  computeTrend,
  copyThroughput,
  median,
  publishableDowntime,
  sumOfPhases,
  withinBudget,
  withOverhead,
  type RehearsalMeasurements,
  type TrendPoint,
} from '../../contract/rehearsal-report';
import { renderChart, renderMarkdown } from '../../activities/rehearsal/render';

const migration = {
  migrationId: 'shop',
  source: { url: { env: 'SOURCE_DATABASE_URL' } },
  target: { url: { env: 'RDS_URL' }, appUrl: { env: 'RDS_APP_URL' } },
  downtimeBudget: '10s',
  configSink: { type: 'env-file', path: '/srv/app/.env' },
  gates: { 'go-live': { timeout: '30m', approvers: ['alice'] } },
};

const step = (name: string, durationMs: number, state: 'completed' | 'failed' = 'completed') => ({
  name,
  state,
  startedAt: '2025-01-01T00:00:00.000Z',
  durationMs,
});

function measurements(overrides: Partial<RehearsalMeasurements> = {}): RehearsalMeasurements {
  return {
    rehearsalId: '20250101-030000-abcdef12',
    migrationId: 'shop',
    workflowId: 'rehearsal-shop',
    runId: 'run',
    startedAtMs: Date.parse('2025-01-01T03:00:00Z'),
    endedAtMs: Date.parse('2025-01-01T03:00:10Z'),
    snapshot: { type: 'logical', description: 'pg_dump', sizeBytes: 100 * 1024 * 1024 },
    snapshotMs: 2_000,
    method: 'dump-restore',
    child: {
      workflowId: 'rehearsal-shop-migration',
      outcome: 'completed',
      steps: [step('preflight', 1_000), step('freeze-source', 100), step('copy', 2_000), step('verify', 500), step('go-live', 50)],
      compensations: [],
      decisions: [],
      freezeWindow: { frozenAt: 1, unfrozenAt: 3_001, durationMs: 3_000, gateWaitMs: 20 },
      verification: 'passed',
      rowsCopied: 1234,
    },
    teardown: [{ step: 'drop-scratch-target', state: 'completed', durationMs: 300, done: ['database x dropped'] }],
    teardownMs: 400,
    cancelled: false,
    downtimeBudget: '10s',
    marginPercent: 50,
    minMarginMs: 0,
    deviations: [],
    ...overrides,
  };
}

describe('rehearsal report math', () => {
  it('adds an explicit overhead line so the phases add up to the measured total exactly', () => {
    const phases = withOverhead(
      [
        { name: 'a', kind: 'snapshot', durationMs: 1_234 },
        { name: 'b', kind: 'migration', durationMs: 4_321 },
      ],
      6_000,
    );
    expect(phases[phases.length - 1]).toEqual({ name: 'orchestration overhead', kind: 'overhead', durationMs: 445 });
    expect(sumOfPhases(phases)).toBe(6_000);
    const report = buildReport(measurements());
    expect(sumOfPhases(report.phases)).toBe(report.totalMs);
    expect(report.totalMs).toBe(10_000);
    // snapshot 2000 + steps 3650 + teardown 400 = 6050
    expect(report.phases.find((p) => p.kind === 'overhead')!.durationMs).toBe(3_950);
    expect(report.phases.map((p) => p.name)).toEqual([
      'snapshot',
      'preflight',
      'freeze-source',
      'copy',
      'verify',
      'go-live',
      'teardown',
      'orchestration overhead',
    ]);
  });

  it('publishable downtime is the window plus the larger of the percentage margin and the minimum', () => {
    expect(publishableDowntime(2_000, 50, 0)).toEqual({ marginMs: 1_000, publishableMs: 3_000 });
    expect(publishableDowntime(2_000, 50, 30_000)).toEqual({ marginMs: 30_000, publishableMs: 32_000 });
    expect(publishableDowntime(1_001, 50, 0)).toEqual({ marginMs: 501, publishableMs: 1_502 });
    expect(publishableDowntime(0, 50, 0)).toEqual({ marginMs: 0, publishableMs: 0 });
  });

  it('checks the budget against the publishable downtime, not the bare window', () => {
    expect(withinBudget(3_000, 3_000)).toBe(true);
    expect(withinBudget(3_001, 3_000)).toBe(false);
    expect(withinBudget(undefined, 3_000)).toBeUndefined();
    expect(withinBudget(3_000, undefined)).toBeUndefined();
    // window 2980 ms (3000 less 20 ms at the gate) + 1490 ms margin = 4470 ms: within 10 s, over 4 s
    const pass = buildReport(measurements());
    expect(pass.freezeWindow.rehearsedWindowMs).toBe(2_980);
    expect(pass.publishableDowntimeMs).toBe(4_470);
    expect(pass).toMatchObject({ outcome: 'passed', verdict: 'pass', reasons: [], budget: { ms: 10_000, withinBudget: true } });
    const over = buildReport(measurements({ downtimeBudget: '4s' }));
    expect(over).toMatchObject({ outcome: 'over-budget', verdict: 'fail', budget: { ms: 4_000, withinBudget: false } });
    expect(over.reasons[0]).toMatch(/publishable downtime 4\.5 s .* exceeds downtimeBudget 4s/);
  });

  it('reports copy throughput as bytes over the copy step', () => {
    expect(copyThroughput(100, 1_000)).toBe(100);
    expect(copyThroughput(100, 0)).toBeUndefined();
    const report = buildReport(measurements());
    expect(report.copy).toMatchObject({ bytes: 100 * 1024 * 1024, ms: 2_000, bytesPerSecond: 50 * 1024 * 1024 });
    expect(report.lagAtCutover).toBeUndefined();
  });

  it('says why a failed rehearsal failed, and publishes no number for it', () => {
    const failed = buildReport(
      measurements({
        child: {
          ...measurements().child!,
          outcome: 'failed',
          reason: 'smoke test failed: boom',
          steps: [step('preflight', 1_000), step('smoke-test', 20, 'failed')],
          compensations: [{ step: 'reset-target', state: 'completed', durationMs: 30 }],
          freezeWindow: { frozenAt: 1, unfrozenAt: 500, durationMs: 499 },
        },
      }),
    );
    expect(failed).toMatchObject({ outcome: 'failed', verdict: 'fail' });
    expect(failed.reasons[0]).toBe('the migration failed at step smoke-test: smoke test failed: boom');
    expect(failed.publishableDowntimeMs).toBeUndefined();
    expect(failed.phases.map((p) => p.name)).toContain('undo reset-target');
    expect(sumOfPhases(failed.phases)).toBe(failed.totalMs);
    const torn = buildReport(measurements({ teardown: [{ step: 'drop-scratch-source', state: 'failed', durationMs: 5, error: 'no' }] }));
    expect(torn.outcome).toBe('failed');
    expect(torn.reasons[0]).toMatch(/teardown incomplete/);
    const cancelled = buildReport(measurements({ cancelled: true, child: { ...measurements().child!, outcome: 'cancelled' } }));
    expect(cancelled).toMatchObject({ outcome: 'cancelled', verdict: 'fail' });
  });

  it('computes the trend against earlier rehearsals of the migration', () => {
    const at = (i: number) => `2025-01-0${i}T03:00:00.000Z`;
    const p = (i: number, w?: number): TrendPoint => ({
      rehearsalId: `r${i}`,
      startedAt: at(i),
      outcome: w === undefined ? 'failed' : 'passed',
      totalMs: 9_000,
      ...(w !== undefined ? { rehearsedWindowMs: w } : {}),
    });
    expect(computeTrend(p(1, 2_000), []).direction).toBe('first');
    expect(computeTrend(p(3, 2_000), [p(1), p(2)])).toMatchObject({ direction: 'first', previousRehearsals: 2, comparable: 0 });
    expect(computeTrend(p(3), [p(1, 2_000)]).direction).toBe('no-window');
    const slower = computeTrend(p(4, 3_000), [p(1, 2_000), p(2, 2_200), p(3)]);
    expect(slower).toMatchObject({
      direction: 'slower',
      previousRehearsals: 3,
      comparable: 2,
      lastWindowMs: 2_200,
      deltaVsLastMs: 800,
      medianWindowMs: 2_100,
      deltaVsMedianMs: 900,
    });
    expect(computeTrend(p(4, 1_000), [p(1, 2_000), p(2, 2_200)]).direction).toBe('faster');
    expect(computeTrend(p(4, 2_130), [p(1, 2_000), p(2, 2_200)]).direction).toBe('steady');
    // later rehearsals (a re-written older report) are not "previous"
    expect(computeTrend(p(1, 2_000), [p(2, 5_000)]).direction).toBe('first');
    expect(median([3, 1, 2])).toBe(2);
    expect(median([])).toBeUndefined();
  });

  it('renders Markdown whose phase table sums to the total, and an SVG chart of all rehearsals', () => {
    const report = buildReport(measurements());
    const md = renderMarkdown(report);
    expect(md).toContain('PASSED');
    expect(md).toContain('| **sum** | | | **10,000 ms** | |');
    expect(md).toContain('| **measured total** | | | **10,000 ms** | |');
    const over = buildReport(
      measurements({
        downtimeBudget: '4s',
        rehearsalId: '20250102-030000-abcdef12',
        startedAtMs: Date.parse('2025-01-02T03:00:00Z'),
        endedAtMs: Date.parse('2025-01-02T03:00:09Z'),
      }),
    );
    const svg = renderChart([report, over]);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<rect x=/g)!.length).toBeGreaterThanOrEqual(2 * report.phases.length);
    expect(svg).toContain('orchestration overhead');
    expect(svg).toContain('budget 4.0 s');
  });
});

describe('rehearsal chart', () => {
  // A rehearsal with real step times: snapshot 0-2 s, preflight 2-3 s, writes frozen from 3.09 s (end
  // of freeze-source) to 5.64 s (inside go-live), then a release step after the window.
  const t0 = Date.parse('2025-01-01T03:00:00Z');
  const timed = (name: string, fromMs: number, toMs: number) => ({
    name,
    state: 'completed' as const,
    startedAt: new Date(t0 + fromMs).toISOString(),
    endedAt: new Date(t0 + toMs).toISOString(),
    durationMs: toMs - fromMs,
  });
  const timedMeasurements = (overrides: Partial<RehearsalMeasurements> = {}) => {
    const base = measurements();
    return measurements({
      child: {
        ...base.child!,
        steps: [
          timed('preflight', 2_000, 3_000),
          timed('freeze-source', 3_000, 3_100),
          timed('copy', 3_100, 5_100),
          timed('verify', 5_100, 5_600),
          timed('go-live', 5_600, 5_650),
          timed('release', 5_650, 5_700),
        ],
        freezeWindow: { frozenAt: t0 + 3_090, unfrozenAt: t0 + 5_640, durationMs: 2_550, gateWaitMs: 0 },
      },
      ...overrides,
    });
  };
  const attrs = (element: string) => Object.fromEntries([...element.matchAll(/([\w-]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
  /** The top and bottom (SVG y) of the element whose title starts with `title`: a rect's box or a line's ends. */
  const extent = (svg: string, title: string) => {
    const element = svg.split('\n').find((l) => l.includes(`<title>${title}`));
    expect(element, title).toBeDefined();
    const a = attrs(element!.slice(0, element!.indexOf('>')));
    return a.height !== undefined
      ? { top: Number(a.y), bottom: Number(a.y) + Number(a.height), x: Number(a.x) }
      : { top: Math.min(Number(a.y1), Number(a.y2)), bottom: Math.max(Number(a.y1), Number(a.y2)), x: Number(a.x1) };
  };
  const plot = (svg: string) => {
    const axis = attrs(svg.split('\n').find((l) => l.includes('stroke="#333"') && l.startsWith('<line'))!);
    return { top: Number(axis.y1), bottom: Number(axis.y2) };
  };

  it('marks as in the window only the steps that overlap the freeze', () => {
    const report = buildReport(timedMeasurements());
    expect(report.phases.filter((p) => p.inFreezeWindow).map((p) => p.name)).toEqual(['freeze-source', 'copy', 'verify', 'go-live']);
  });

  it('draws the window marker across the segments from the freeze to go-live only, not snapshot or preflight', () => {
    const report = buildReport(timedMeasurements());
    const svg = renderChart([report]);
    const marker = extent(svg, 'write-freeze window');
    const freeze = extent(svg, `${report.rehearsalId} freeze-source`);
    const goLive = extent(svg, `${report.rehearsalId} go-live`);
    const preflight = extent(svg, `${report.rehearsalId} preflight`);
    const release = extent(svg, `${report.rehearsalId} release`);
    // Bars stack upwards: the window runs from the bottom of freeze-source to the top of go-live.
    expect(marker.bottom).toBeCloseTo(freeze.bottom, 1);
    expect(marker.top).toBeCloseTo(goLive.top, 1);
    expect(marker.bottom).toBeLessThanOrEqual(preflight.top + 0.01);
    expect(marker.top).toBeGreaterThanOrEqual(release.bottom - 0.01);
    // ...and across the bar it belongs to.
    expect(marker.x).toBeLessThan(freeze.x);
  });

  it('draws no window marker when the rehearsal measured no window', () => {
    const report = buildReport(timedMeasurements({ child: { ...timedMeasurements().child!, outcome: 'rolled-back' } }));
    expect(renderChart([report])).not.toContain('<title>write-freeze window');
  });

  it('always draws the budget line inside the plot, however far above the bars the budget is', () => {
    for (const budget of ['4s', '15s', '60s', '1h']) {
      const svg = renderChart([buildReport(timedMeasurements({ downtimeBudget: budget }))]);
      const line = svg.split('\n').find((l) => l.startsWith('<line') && l.includes('stroke-dasharray="6 4"'));
      expect(line, budget).toBeDefined();
      const y = Number(attrs(line!).y1);
      const { top, bottom } = plot(svg);
      expect(y, budget).toBeGreaterThanOrEqual(top);
      expect(y, budget).toBeLessThanOrEqual(bottom);
      expect(svg).toContain('>budget ');
    }
  });

  it('gives runs started in the same minute, or the same second, labels of their own', () => {
    const at = (iso: string, id: string) =>
      buildReport(timedMeasurements({ rehearsalId: id, startedAtMs: Date.parse(iso), endedAtMs: Date.parse(iso) + 10_000 }));
    const svg = renderChart([
      at('2025-01-01T03:00:05Z', 'a'),
      at('2025-01-01T03:00:40Z', 'b'),
      at('2025-01-01T03:00:40.500Z', 'c'),
      at('2025-01-01T03:07:00Z', 'd'),
    ]);
    const labels = [...svg.matchAll(/rotate\(35\)[^>]*>([^<]*)</g)].map((m) => m[1]);
    expect(labels).toHaveLength(4);
    expect(new Set(labels).size).toBe(4);
    expect(labels).toEqual(['01-01 03:00:05', '01-01 03:00:40 #1', '01-01 03:00:40 #2', '01-01 03:07:00']);
  });
});

describe('rehearsal input', () => {
  const valid = { migration, snapshot: { type: 'logical', scratch: { env: 'SCRATCH_URL' } } };

  it('accepts the migration input plus a snapshot, with defaults', () => {
    const checked = checkRehearsalInput(valid);
    expect(checked.ok).toBe(true);
    if (!checked.ok) return;
    expect(checked.input).toMatchObject({ marginPercent: 50, minMarginMs: 0, migration: { method: 'auto', parallelJobs: 2 } });
  });

  it("names every bad field, the migration's included", () => {
    const checked = checkRehearsalInput({
      migration: { ...migration, source: { url: 'postgres://u:hunter2hunter2@h/db' } },
      snapshot: { type: 'rds-snapshot', instanceClass: 'big' },
      marginPercent: -1,
      extra: true,
    });
    expect(checked.ok).toBe(false);
    if (checked.ok) return;
    const text = formatRehearsalProblems(checked.problems);
    for (const field of [
      'migration.source.url',
      'snapshot.dbSnapshotIdentifier',
      'snapshot.instanceClass',
      'snapshot.scratchTarget',
      'marginPercent',
    ])
      expect(text).toContain(`${field}:`);
    expect(text).toMatch(/Unrecognized key.*extra|extra/);
    expect(text).not.toContain('hunter2');
  });

  it('refuses a logical-method rehearsal with both scratch databases on one server', () => {
    const checked = checkRehearsalInput({ ...valid, migration: { ...migration, method: 'logical' } });
    expect(checked.ok).toBe(false);
    if (checked.ok) return;
    expect(checked.problems.map((p) => p.field)).toEqual(['snapshot.scratchTarget']);
    expect(
      checkRehearsalInput({
        ...valid,
        migration: { ...migration, method: 'logical' },
        snapshot: { ...valid.snapshot, scratchTarget: { env: 'OTHER' } },
      }).ok,
    ).toBe(true);
  });

  it('builds the child input from an allow-list: scratch endpoints, staging sink, no budget, no approver lists', () => {
    const checked = checkRehearsalInput(valid);
    if (!checked.ok) throw new Error('invalid');
    const scratch = {
      source: { env: 'SCRATCH_URL', database: 'rehearsal_x_src' },
      target: { env: 'SCRATCH_URL', database: 'rehearsal_x_tgt' },
      replication: { env: 'SCRATCH_URL', database: 'rehearsal_x_tgt' },
      stagingSinkPath: '/tmp/s.env',
    };
    const child = childMigrationInput(checked.input.migration, 'rh-x-shop', scratch, 'dump-restore');
    expect(child).toMatchObject({
      migrationId: 'rh-x-shop',
      method: 'dump-restore',
      source: { url: scratch.source },
      target: { url: scratch.target, appUrl: scratch.target },
      configSink: { type: 'env-file', path: '/tmp/s.env' },
    });
    expect(child.downtimeBudget).toBeUndefined();
    expect((child.gates as Record<string, { approvers?: string[] }>)['go-live'].approvers).toBeUndefined();
    expect(checkMigrationInput(child).ok).toBe(true);
    expect(rehearsedGates('dump-restore')).toEqual(['go-live']);
    expect(rehearsedGates('logical')).toEqual(['cutover', 'go-live']);
  });

  it('decides auto the way preflight does, and names scratch databases safely', () => {
    const checked = checkRehearsalInput(valid);
    if (!checked.ok) throw new Error('invalid');
    expect(rehearsedMethod(checked.input.migration, 50 * 1024 ** 2).method).toBe('dump-restore');
    // 10 s budget: a 10 GB dump does not fit
    expect(rehearsedMethod(checked.input.migration, 10 * 1024 ** 3).method).toBe('logical');
    expect(scratchNames('20250101-030000-abcdef12')).toEqual({
      sourceDatabase: 'rehearsal_20250101_030000_abcdef12_src',
      targetDatabase: 'rehearsal_20250101_030000_abcdef12_tgt',
      instance: 'pgmig-20250101-030000-abcdef12',
    });
  });
});
