import { describe, expect, it } from 'vitest';
import { summarizeCopy, type CopyRun } from '../../bench/copy';
import { cutoverRatios, type AnchorCutover, type CutoverRun } from '../../bench/cutover';
import { coveredMs, median, orchestrationOverhead, ratio, rotated } from '../../bench/measure';
import { barChartSvg, replaceBetweenMarkers, seconds, times } from '../../bench/render';

describe('bench arithmetic', () => {
  it('median ignores missing values and averages the middle pair', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([NaN, 5])).toBe(5);
    expect(median([])).toBeNaN();
  });

  it('ratio is NaN without a divisor', () => {
    expect(ratio(3, 2)).toBe(1.5);
    expect(ratio(3, 0)).toBeNaN();
    expect(ratio(NaN, 2)).toBeNaN();
  });

  it('rotated starts each round with another contender', () => {
    expect(rotated(['a', 'b', 'c'], 0)).toEqual(['a', 'b', 'c']);
    expect(rotated(['a', 'b', 'c'], 1)).toEqual(['b', 'c', 'a']);
    expect(rotated(['a', 'b', 'c'], 5)).toEqual(['c', 'a', 'b']);
  });

  it('coveredMs counts overlapping intervals once', () => {
    expect(
      coveredMs([
        { start: 0, end: 10 },
        { start: 5, end: 15 },
        { start: 20, end: 25 },
      ]),
    ).toBe(20);
  });

  it('orchestration overhead: wall time minus activities, local-activity steps counted by their durations', () => {
    const o = orchestrationOverhead({
      wallMs: 100,
      activities: [
        { start: 0, end: 30 },
        { start: 50, end: 70 },
      ],
      steps: [
        { name: 'copy', start: 0, end: 31 },
        { name: 'freeze-source', start: 35, end: 45 },
      ],
      hasLocalActivities: true,
    });
    expect(o.localSteps).toEqual(['freeze-source']);
    expect(o.activityMs).toBe(60);
    expect(o.overheadMs).toBe(40);
    expect(o.overheadPct).toBe(40);
    expect(
      orchestrationOverhead({ wallMs: 100, activities: [], steps: [{ name: 'x', start: 0, end: 10 }], hasLocalActivities: false })
        .overheadMs,
    ).toBe(100);
  });

  it('summarizeCopy: medians per contender, the product over each tool, who ran first', () => {
    const run = (contender: CopyRun['contender'], ms: number, repeat: number, position: number, parts: Record<string, number> = {}) => ({
      contender,
      ms,
      repeat,
      position,
      scale: 2,
      parts,
    });
    const s = summarizeCopy(2, 1000, [
      run('product', 12, 0, 0, { copy: 9, verify: 3 }),
      run('pgcopydb', 8, 0, 1),
      run('pg_dump+restore', 6, 0, 2),
      run('pgcopydb', 10, 1, 0),
      run('pg_dump+restore', 6, 1, 1),
      run('product', 14, 1, 2, { copy: 10, verify: 4 }),
      run('cdc-copy', 12, 0, 3),
      run('cdc-copy', 6, 1, 3),
    ]);
    expect(s.productMs).toBe(13);
    expect(s.productCopyMs).toBe(9.5);
    expect(s.pgcopydbMs).toBe(9);
    expect(s.productOverPgcopydb).toBeCloseTo(13 / 9);
    expect(s.productOverPgDumpRestore).toBeCloseTo(13 / 6);
    expect(s.cdcCopyMs).toBe(9);
    expect(s.cdcCopyThroughputVsPgcopydb).toBeCloseTo(1);
    expect(s.ranFirst).toEqual(['product', 'pgcopydb']);
  });

  it('cutoverRatios: the product gap per method and scale over the anchor at that scale', () => {
    const runs = [
      { method: 'logical', scale: 2, longestGapMs: 600 },
      { method: 'dump-restore', scale: 2, longestGapMs: 2000 },
    ] as CutoverRun[];
    const anchors = [{ scale: 2, longestGapMs: 500 }] as AnchorCutover[];
    expect(cutoverRatios(runs, anchors)).toEqual([
      { method: 'logical', scale: 2, productGapMs: 600, anchorGapMs: 500, ratio: 1.2 },
      { method: 'dump-restore', scale: 2, productGapMs: 2000, anchorGapMs: 500, ratio: 4 },
    ]);
  });
});

describe('bench rendering', () => {
  it('formats seconds and ratios, with a dash for what was not measured (null in JSON)', () => {
    expect(seconds(1234)).toBe('1.23 s');
    expect(seconds(null)).toBe('-');
    expect(times(1.234)).toBe('1.23x');
    expect(times(NaN)).toBe('-');
  });

  it('draws one bar per series, scaled to the largest, names escaped', () => {
    const svg = barChartSvg({
      title: 'a < b',
      unit: 's',
      groups: [
        {
          label: 'g',
          bars: [
            { name: 'x', value: 2 },
            { name: 'y&z', value: 1 },
            { name: 'none', value: NaN },
          ],
        },
      ],
    });
    expect(svg).toMatch(/^<svg /);
    expect(svg).toContain('a &lt; b');
    expect(svg).toContain('y&amp;z');
    expect(svg).toContain('width="420"');
    expect(svg).toContain('width="210"');
    expect(svg).toContain('not measured');
  });

  it('replaces only what lies between the markers, or adds them before the fallback heading', () => {
    const text = 'head\n<!-- s -->\nold\n<!-- e -->\ntail\n';
    expect(replaceBetweenMarkers(text, '<!-- s -->', '<!-- e -->', 'new')).toBe('head\n<!-- s -->\nnew\n<!-- e -->\ntail\n');
    expect(replaceBetweenMarkers('a\n## Next\n', '<!-- s -->', '<!-- e -->', 'new', '## Next')).toBe(
      'a\n<!-- s -->\nnew\n<!-- e -->\n\n## Next\n',
    );
    expect(replaceBetweenMarkers('a\n', '<!-- s -->', '<!-- e -->', 'new')).toBe('a\n\n<!-- s -->\nnew\n<!-- e -->\n');
  });
});
