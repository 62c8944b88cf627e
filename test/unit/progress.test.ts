/** One progress shape for every long step: its checks, its line, its rate and ETA, its throttled reports, its views. */
import { describe, expect, it } from 'vitest';
import {
  checkProgress,
  describeProgress,
  etaFor,
  LagMeter,
  percentOf,
  progressBar,
  ProgressMeter,
  rateOver,
  type StepProgress,
} from '../../contract/progress';
import { progressDetails, ProgressSignaller } from '../../activities/progress';
import { ReplicationProgress } from '../../activities/methods/replication-progress';
import { heartbeatText, progressPrinter } from '../../cli/follow';
import { statusLines } from '../../cli/status-view';
import type { MigrationStatus } from '../../signals';

const at = '2026-12-02T05:00:00.000Z';
const copy: StepProgress = {
  step: 'copy',
  percent: 45.2,
  done: 1.2e9,
  total: 2.7e9,
  unit: 'bytes',
  ratePerSecond: 38e6,
  etaSeconds: 41,
  at,
};

/** A clock the test moves. */
function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('checkProgress', () => {
  it('takes a well-formed report, keeping only the known fields', () => {
    expect(checkProgress({ ...copy, detail: 'pgcopydb, 2 jobs', password: 'x' })).toEqual({ ...copy, detail: 'pgcopydb, 2 jobs' });
  });

  it.each([
    ['no step', { ...copy, step: '' }],
    ['a long step', { ...copy, step: 'x'.repeat(65) }],
    ['a negative done', { ...copy, done: -1 }],
    ['an unknown unit', { ...copy, unit: 'furlongs' }],
    ['a percent over 100', { ...copy, percent: 100.1 }],
    ['a NaN rate', { ...copy, ratePerSecond: NaN }],
    ['an infinite ETA', { ...copy, etaSeconds: Infinity }],
    ['a null ETA', { ...copy, etaSeconds: null }],
    ['a detail over 200 characters', { ...copy, detail: 'd'.repeat(201) }],
    ['no time', { ...copy, at: undefined }],
    ['a string', 'copy 45%'],
    ['nothing', undefined],
  ])('refuses %s', (_why, raw) => {
    expect(checkProgress(raw)).toBeUndefined();
  });
});

describe('describeProgress and progressBar', () => {
  it('percent, amounts of the total, rate, ETA and detail', () => {
    expect(describeProgress({ ...copy, detail: 'pgcopydb, 2 jobs' })).toBe(
      'copy 45.2% (1.1 GB of 2.5 GB, 36.2 MB/s, ETA 41.0 s): pgcopydb, 2 jobs',
    );
  });

  it('says so when the total, rate or ETA are not known', () => {
    expect(describeProgress({ step: 'verify', done: 3, unit: 'tables', at })).toBe('verify (3 tables, ETA unknown)');
  });

  it('a lag in seconds reads as time', () => {
    expect(
      describeProgress({ step: 'catch-up', percent: 50, done: 10, total: 20, unit: 'seconds', ratePerSecond: 2, etaSeconds: 3, at }),
    ).toBe('catch-up 50.0% (10.0 s of 20.0 s, 2.0 s/s, ETA 3.0 s)');
  });

  it('a bar of the percent', () => {
    expect(progressBar(45.2)).toBe('[#########-----------] 45.2%');
    expect(progressBar(0, 10)).toBe('[----------] 0.0%');
    expect(progressBar(100, 10)).toBe('[##########] 100.0%');
  });
});

describe('rate and ETA', () => {
  it('the rate over the last 10 s, not since the start', () => {
    const samples = [
      { atMs: 0, done: 0 },
      { atMs: 20_000, done: 100 }, // slow at first
      { atMs: 25_000, done: 600 },
      { atMs: 30_000, done: 1_100 }, // 100/s over the last 10 s
    ];
    expect(rateOver(samples)).toBe(100);
  });

  it('no rate from less than a second, nor from work going backwards', () => {
    expect(rateOver([])).toBeUndefined();
    expect(
      rateOver([
        { atMs: 0, done: 0 },
        { atMs: 500, done: 10 },
      ]),
    ).toBeUndefined();
    expect(
      rateOver([
        { atMs: 0, done: 10 },
        { atMs: 2_000, done: 5 },
      ]),
    ).toBeUndefined();
  });

  it('ETA: what remains at the rate; 0 when nothing remains; unknown without a rate', () => {
    expect(etaFor(1_000, 100)).toBe(10);
    expect(etaFor(0, undefined)).toBe(0);
    expect(etaFor(10, 0)).toBeUndefined();
    expect(etaFor(10, undefined)).toBeUndefined();
  });

  it('percent: one decimal, at most 100, 100 of nothing, none without a total', () => {
    expect(percentOf(1, 3)).toBe(33.3);
    expect(percentOf(5, 3)).toBe(100);
    expect(percentOf(0, 0)).toBe(100);
    expect(percentOf(1, undefined)).toBeUndefined();
  });

  it('a meter measures percent, rate and ETA as the work goes', () => {
    const c = clock();
    const meter = new ProgressMeter('copy', 'bytes', c.now);
    const first = meter.measure({ done: 0, total: 1_000, detail: 'pg-dump, 2 jobs' });
    expect(first).toMatchObject({ step: 'copy', done: 0, total: 1_000, percent: 0, unit: 'bytes', detail: 'pg-dump, 2 jobs' });
    expect(first.ratePerSecond).toBeUndefined();
    expect(first.etaSeconds).toBeUndefined();
    c.advance(2_000);
    expect(meter.measure({ done: 200, total: 1_000 })).toMatchObject({ percent: 20, ratePerSecond: 100, etaSeconds: 8 });
    c.advance(2_000);
    const p = meter.measure({ done: 1_000, total: 1_000 });
    expect(p).toMatchObject({ percent: 100, etaSeconds: 0 });
    expect(checkProgress(p)).toEqual(p);
  });

  it('a lag meter: the part of the starting lag gone, how fast it falls, when it is under the threshold', () => {
    const c = clock();
    const lag = new LagMeter('catch-up', 'changes', undefined, c.now);
    expect(lag.measure(10_000, 1_000)).toMatchObject({ done: 0, total: 10_000, percent: 0 });
    expect(lag.startLag).toBe(10_000);
    c.advance(5_000);
    const p = lag.measure(5_000, 1_000);
    // Half the lag gone at 1,000 changes/s: 4,000 more until under the threshold.
    expect(p).toMatchObject({ done: 5_000, total: 10_000, percent: 50, ratePerSecond: 1_000, etaSeconds: 4, detail: 'lag 5,000 changes' });
    c.advance(1_000);
    expect(lag.measure(900, 1_000)).toMatchObject({ percent: 100, etaSeconds: 0 });
  });

  it('a lag that grows past its start becomes the new start; a carried start is kept', () => {
    const c = clock();
    const lag = new LagMeter('catch-up', 'bytes', 4_000, c.now);
    expect(lag.measure(2_000, 0)).toMatchObject({ done: 2_000, total: 4_000, percent: 50 });
    c.advance(2_000);
    const grown = lag.measure(8_000, 0);
    expect(grown).toMatchObject({ done: 0, total: 8_000, percent: 0 });
    expect(grown.ratePerSecond).toBeUndefined();
    expect(grown.etaSeconds).toBeUndefined();
  });
});

describe('the replication wait', () => {
  const args = { migrationId: 'm', source: { env: 'S' }, target: { env: 'T' }, maxLagBytes: 1_000, reportAfterMs: 30_000 };

  it('initial copy: tables ready of the total', () => {
    const p = new ReplicationProgress({ ...args, progressStep: 'initial-copy' }).measure({
      tablesTotal: 4,
      tablesReady: 1,
      lagBytes: null,
      caughtUp: false,
    });
    expect(p).toMatchObject({ step: 'initial-copy', unit: 'tables', done: 1, total: 4, percent: 25 });
  });

  it('catch-up: the lag in the unit the method measures, from the start carried by the workflow', () => {
    const measured = new ReplicationProgress({ ...args, progressStep: 'catch-up', maxLagChanges: 100, lagAtStart: 1_000 });
    const p = measured.measure({ tablesTotal: 4, tablesReady: 4, lagBytes: null, lagChanges: 550, lagSeconds: 2, caughtUp: false });
    expect(p).toMatchObject({ step: 'catch-up', unit: 'changes', done: 450, total: 1_000, percent: 45 });
    expect(p.detail).toContain('lag 550 changes, 2 s');
    expect(measured.lagAtStart).toBe(1_000);
  });
});

describe('reports to the workflow', () => {
  it('the first after 3 s, then at most every 10 s, and only when the figures moved', async () => {
    const c = clock();
    const sent: StepProgress[] = [];
    const signaller = new ProgressSignaller(
      (p) => {
        sent.push(p);
        return Promise.resolve();
      },
      { now: c.now },
    );
    const report = (done: number) => signaller.offer({ ...copy, done, at: new Date(c.now()).toISOString() });
    report(1);
    c.advance(2_900);
    report(2);
    expect(sent).toHaveLength(0);
    c.advance(200);
    report(3);
    expect(sent.map((p) => p.done)).toEqual([3]);
    await new Promise((r) => setTimeout(r, 0)); // the send settled
    c.advance(9_000);
    report(4);
    expect(sent).toHaveLength(1);
    c.advance(1_000);
    report(4);
    expect(sent.map((p) => p.done)).toEqual([3, 4]);
    await new Promise((r) => setTimeout(r, 0)); // the send settled
    c.advance(20_000);
    report(4); // unchanged: not sent again
    expect(sent).toHaveLength(2);
  });

  it('heartbeat details: the progress over the step own fields, a null ETA of those dropped', () => {
    const own = { engine: 'pgcopydb', percent: 10, etaSeconds: null, tablesVerified: 2 };
    const p: StepProgress = { step: 'copy', done: 5, unit: 'tables', at };
    expect(progressDetails(p, own)).toEqual({ engine: 'pgcopydb', tablesVerified: 2, step: 'copy', done: 5, unit: 'tables', at });
  });
});

describe('the CLI', () => {
  it('a heartbeat with a progress reads as the progress', () => {
    expect(heartbeatText('copyAndVerify', progressDetails(copy, { engine: 'pgcopydb', stage: 'copying' }) as never)).toBe(
      '  copyAndVerify: copy 45.2% (1.1 GB of 2.5 GB, 36.2 MB/s, ETA 41.0 s)',
    );
  });

  it('plain lines: a step at most every 5 s; a bar redrawn in place on a terminal, ended by the next line', () => {
    const c = clock();
    const lines: string[] = [];
    const plain = progressPrinter(
      (l) => lines.push(l),
      false,
      () => undefined,
      c.now,
    );
    plain.progress('copyAndVerify', 'a', copy);
    c.advance(1_000);
    plain.progress('copyAndVerify', 'b', copy);
    c.advance(5_000);
    plain.progress('copyAndVerify', 'c', copy);
    plain.progress('waitForReplication', 'd', { ...copy, step: 'catch-up' });
    expect(lines).toEqual(['a', 'c', 'd']);

    let screen = '';
    const printed: string[] = [];
    const tty = progressPrinter(
      (l) => printed.push(l),
      true,
      (s) => (screen += s),
      c.now,
    );
    tty.progress('copyAndVerify', 'ignored', copy);
    tty.progress('copyAndVerify', 'ignored', { ...copy, percent: 50 });
    expect(screen.split('\r').filter(Boolean)).toEqual([
      `  copyAndVerify [#########-----------] 45.2% ${describeProgress(copy)}\x1b[K`,
      `  copyAndVerify [##########----------] 50.0% ${describeProgress({ ...copy, percent: 50 })}\x1b[K`,
    ]);
    tty.line('  ok     copy');
    expect(screen.endsWith('\r\x1b[K')).toBe(true);
    expect(printed).toEqual(['  ok     copy']);
  });

  it('status: compact, with the progress, the frozen writes and the gate', () => {
    const status = {
      migrationId: 'm-1',
      method: 'dump-restore',
      phase: 'copying',
      startedAt: at,
      steps: Array.from({ length: 7 }, (_, i) => ({ name: `step-${i}`, state: 'completed', startedAt: at, durationMs: 1_000 })),
      preApprovals: [],
      decisions: [],
      refusedDecisions: [],
      compensations: [],
      freezeWindow: { frozenAt: Date.parse(at) },
      sides: { application: 'source', sourceWritable: false, targetWritable: true },
      progress: copy,
      pendingGate: { gate: 'go-live', openedAt: at, deadline: '2026-12-02T05:30:00.000Z', approvers: ['ana'] },
    } as unknown as MigrationStatus;
    const lines = statusLines(status, 'm-1', Date.parse(at) + 12_300);
    expect(lines[0]).toBe('m-1  copying  (dump-restore)');
    expect(lines).toContain('writes     FROZEN since 05:00:00 UTC (12.3 s)');
    expect(lines).toContain(`progress   [#########-----------] 45.2% ${describeProgress(copy)}`);
    expect(lines).toContain('gate       go-live open until 2026-12-02T05:30:00.000Z by ana');
    expect(lines.some((l) => l.includes('approve m-1 --gate go-live --approver'))).toBe(true);
    expect(lines).toContain('steps      last 5 of 7');
    expect(lines.some((l) => l.includes('step-1 '))).toBe(false);
    expect(lines.length).toBeLessThan(16);
  });
});
