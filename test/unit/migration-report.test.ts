import { describe, expect, it } from 'vitest';
import { renderMigrationMarkdown, renderMigrationTimeline } from '../../activities/report/migration';
import type { MigrationResult } from '../../signals';

const t0 = Date.parse('2025-03-04T10:00:00Z');
const step = (name: string, fromMs: number, toMs: number, state: 'completed' | 'failed' = 'completed') => ({
  name,
  state,
  startedAt: new Date(t0 + fromMs).toISOString(),
  endedAt: new Date(t0 + toMs).toISOString(),
  durationMs: toMs - fromMs,
});

/** Writes refused from 1.09 s (end of freeze-source) to 8.64 s (inside go-live), 3 s of it at the go-live gate. */
function result(overrides: Partial<MigrationResult> = {}): MigrationResult {
  return {
    migrationId: 'shop',
    outcome: 'completed',
    method: 'dump-restore',
    rowsCopied: 1234,
    tables: 5,
    verification: 'passed',
    catalogDifferences: [],
    freezeWindow: { frozenAt: t0 + 1_090, unfrozenAt: t0 + 8_640, durationMs: 7_550, gateWaitMs: 3_000 },
    steps: [
      step('preflight', 0, 1_000),
      step('freeze-source', 1_000, 1_100),
      step('copy', 1_100, 4_100),
      step('verify', 4_100, 4_600),
      step('swap-config', 4_600, 5_600),
      step('go-live', 8_600, 8_650),
      step('release', 8_650, 9_000),
    ],
    compensations: [],
    decisions: [{ gate: 'go-live', approved: true, approver: 'alice', via: 'update', decidedAt: new Date(t0 + 8_590).toISOString() }],
    sides: { application: 'target', sourceWritable: false, targetWritable: true },
    ...overrides,
  };
}

const attrs = (element: string) => Object.fromEntries([...element.matchAll(/([\w-]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
/** The x-range of the element whose title starts with `title`. */
function xRange(svg: string, title: string) {
  const line = svg.split('\n').find((l) => l.includes(`<title>${title}`));
  expect(line, title).toBeDefined();
  const a = attrs(line!.slice(0, line!.indexOf('>')));
  return { from: Number(a.x), to: Number(a.x) + Number(a.width) };
}

describe('migration report', () => {
  it('draws the freeze window over the steps from the freeze to go-live, not over preflight or release', () => {
    const svg = renderMigrationTimeline(result());
    expect(svg.startsWith('<svg')).toBe(true);
    const band = xRange(svg, 'write-freeze window');
    const freeze = xRange(svg, 'freeze-source');
    const goLive = xRange(svg, 'go-live:');
    // frozen at 1.09 s: inside freeze-source; accepted again at 8.64 s: inside go-live
    expect(band.from).toBeGreaterThan(freeze.from);
    expect(band.from).toBeLessThan(freeze.to);
    expect(band.to).toBeGreaterThan(goLive.from);
    expect(band.to).toBeLessThan(goLive.to);
    expect(band.from).toBeGreaterThanOrEqual(xRange(svg, 'preflight').to);
    expect(band.to).toBeLessThanOrEqual(xRange(svg, 'release').from);
    expect(svg).toContain('write-freeze window 7.5 s (3.0 s at the go-live gate)');
    expect(svg).toContain('go-live approved by alice');
    // one bar per step, each labelled
    for (const s of result().steps) expect(svg).toContain(`>${s.name}</text>`);
  });

  it('says in Markdown how long writes were frozen and which steps ran frozen', () => {
    const text = renderMigrationMarkdown(result(), 'shop.svg');
    expect(text).toContain('# Migration `shop`: LIVE on the target');
    expect(text).toContain(
      '| write-freeze window | **7.5 s** (7,550 ms, 10:00:01.090 to 10:00:08.640 UTC; 3,000 ms of it at the go-live gate) |',
    );
    const frozen = text
      .split('\n')
      .filter((l) => / \| yes \| /.test(l))
      .map((l) => l.split('|')[1].trim());
    expect(frozen).toEqual(['freeze-source', 'copy', 'verify', 'swap-config', 'go-live']);
    expect(text).toContain('- go-live: approved by **alice**');
    expect(text).toContain('| left with | the application on the target; source read-only, target writable |');
    expect(text).toContain('![timeline of the steps of shop](shop.svg)');
  });

  it('tells a rollback apart, with its undo steps, and a run that never froze writes has no window', () => {
    const rolledBack = result({
      outcome: 'rolled-back',
      reason: 'go-live rejected by alice',
      compensations: [{ step: 'freeze-source', state: 'completed', durationMs: 120 }],
      freezeWindow: { frozenAt: t0 + 1_090 },
    });
    const text = renderMigrationMarkdown(rolledBack);
    expect(text).toContain('ROLLED BACK');
    expect(text).toContain('| outcome | rolled-back: go-live rejected by alice |');
    expect(text).toContain('**not accepted again** by the end of the run');
    expect(text).toContain("## The migration's compensation\n\n- freeze-source: completed in 120 ms");
    expect(renderMigrationTimeline(rolledBack)).toContain('writes not accepted again by the end of the run');

    const failed = result({
      outcome: 'failed',
      reason: 'preflight found 1 blocker(s)',
      steps: [step('preflight', 0, 1_000, 'failed')],
      freezeWindow: {},
      decisions: [],
    });
    expect(renderMigrationMarkdown(failed)).toContain('| write-freeze window | writes were never frozen |');
    const svg = renderMigrationTimeline(failed);
    expect(svg).not.toContain('class="freeze-window"');
    expect(svg).toContain('stroke="#c0392b" stroke-width="2"><title>preflight: 1.0 s (failed)');
  });

  it('escapes names in the SVG and the Markdown table', () => {
    const odd = result({ steps: [{ ...step('a|b<c>', 0, 10), detail: 'x|y' }], freezeWindow: {}, decisions: [] });
    expect(renderMigrationTimeline(odd)).toContain('>a|b&lt;c&gt;</text>');
    expect(renderMigrationMarkdown(odd)).toContain('| a\\|b<c> | completed |');
  });
});
