/** The triggers benchmark's printed report: measured numbers and ratios between them, nothing estimated. */
import { formatBytes, formatMs } from '../contract/plan';
import type { ApplyThroughput } from './apply-throughput';
import { CAUGHT_UP_LAG_SECONDS } from './apply-throughput';
import type { CaptureOverhead } from './capture-overhead';
import type { CutoverRun } from './cutover';
import { median } from './measure';
import { CUTOVER_METHODS, WARM_UP_SECONDS, type TriggersBenchOptions, type TriggersBenchReport } from './triggers';

const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a');
const num = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const row = (cells: [string, number][]) =>
  cells
    .map(([text, width]) => (width < 0 ? text.padStart(-width) : text.padEnd(width)))
    .join('  ')
    .trimEnd();

const METRICS = [
  { label: 'longest write gap', of: (r: CutoverRun) => r.longestGapMs },
  { label: 'freeze window', of: (r: CutoverRun) => r.freezeWindowMs },
] as const;

function cutoverSection(runs: CutoverRun[], o: TriggersBenchOptions): string[] {
  const runsOf = (method: string, scale: number) => runs.filter((r) => r.method === method && r.scale === scale);
  const med = (method: string, scale: number, of: (r: CutoverRun) => number) => median(runsOf(method, scale).map(of));
  const header: [string, number][] = [
    ['scale', -5],
    ['size', 9],
    ['method', 9],
    ['run', -3],
    ['longest write gap', 17],
    ['freeze window', 13],
    ['copy', 8],
    ['total', 8],
    ['acked', -6],
    ['lost', -4],
    ['outcome', 0],
  ];
  const lines = [
    `1. Cutover while the application writes (a pause of ${o.intervalMs} ms between writes), ${o.repeats} run(s) per method and scale, interleaved;`,
    '   same demo data per scale; triggers from a Heroku-like source (owner without REPLICATION), logical from a source whose owner',
    '   may replicate (logical needs it); both gates approved ahead of time',
    row(header),
  ];
  for (const scale of o.scales) {
    for (const method of CUTOVER_METHODS) {
      runsOf(method, scale).forEach((r, i) =>
        lines.push(
          row([
            [String(r.scale), -5],
            [formatBytes(r.databaseBytes), 9],
            [r.method, 9],
            [String(i + 1), -3],
            [formatMs(r.longestGapMs), 17],
            [formatMs(r.freezeWindowMs), 13],
            [formatMs(r.copyMs), 8],
            [formatMs(r.totalMs), 8],
            [String(r.acked), -6],
            [String(r.lost), -4],
            [r.outcome, 0],
          ]),
        ),
      );
    }
  }
  lines.push('', `medians and ratios of medians (${o.repeats} run(s) each)`);
  lines.push(
    row([
      ['scale', -5],
      ['metric', 17],
      ['triggers', -9],
      ['logical', -9],
      ['triggers/logical', -16],
    ]),
  );
  for (const scale of o.scales) {
    for (const m of METRICS) {
      const [t, l] = [med('triggers', scale, m.of), med('logical', scale, m.of)];
      lines.push(
        row([
          [String(scale), -5],
          [m.label, 17],
          [formatMs(t), -9],
          [formatMs(l), -9],
          [ratio(t, l), -16],
        ]),
      );
    }
  }
  const [small, large] = [Math.min(...o.scales), Math.max(...o.scales)];
  if (small !== large) {
    lines.push('', `growth with size, median at scale ${large} / median at scale ${small}:`);
    for (const method of CUTOVER_METHODS) {
      const growth = METRICS.map((m) => `${m.label} ${ratio(med(method, large, m.of), med(method, small, m.of))}`);
      lines.push(`  ${method.padEnd(8)} ${growth.join(', ')}`);
    }
  }
  lines.push('', 'goal (under 1 s, within 1.5x of logical):');
  for (const m of METRICS) {
    for (const scale of o.scales) {
      const worst = Math.max(...runsOf('triggers', scale).map(m.of));
      const [t, l] = [med('triggers', scale, m.of), med('logical', scale, m.of)];
      lines.push(
        `  triggers ${m.label}, scale ${scale}: worst run ${formatMs(worst)} (${worst < 1000 ? 'under' : 'NOT under'} 1 s), ` +
          `median ${ratio(t, l)} of logical's (${t <= 1.5 * l ? 'within' : 'NOT within'} 1.5x)`,
      );
    }
  }
  return lines;
}

function overheadSection(ov: CaptureOverhead, o: TriggersBenchOptions, scale: number): string[] {
  const lines = [
    `2. Capture overhead on the source: pgbench -n -c ${o.clients} -T ${o.pgbenchSeconds} per run, demo scale ${scale}, ${ov.tablesCaptured} tables captured,`,
    `   nothing applying; after a ${WARM_UP_SECONDS} s warm-up, rounds alternating without/with and with/without`,
    row([
      ['run', 3],
      ['capture', 8],
      ['tps', -9],
      ['transactions', -12],
      ['change log after the run', 0],
    ]),
  ];
  ov.runs.forEach((r, i) => {
    const log =
      r.logRows === undefined || r.logBytes === undefined
        ? ''
        : `${r.logRows} rows, ${formatBytes(r.logBytes)} (${num(r.logRows / r.transactions, 1)} rows, ${formatBytes(r.logBytes / r.transactions)} per transaction)`;
    lines.push(
      row([
        [String(i + 1), -3],
        [r.capture ? 'with' : 'without', 8],
        [num(r.tps, 1), -9],
        [String(r.transactions), -12],
        [log, 0],
      ]),
    );
  });
  lines.push(`with / without, mean TPS: ${ratio(ov.ratio, 1)}   (per round: ${ov.roundRatios.map((x) => ratio(x, 1)).join(', ')})`);
  return lines;
}

function applySection(a: ApplyThroughput, o: TriggersBenchOptions, scale: number): string[] {
  const { steady: st, backlog: bl } = a;
  const label = 50;
  return [
    `3. Apply under load: pgbench -n -c ${o.clients} -T ${o.applySeconds} on the source (demo scale ${scale}) while applyUntil applies to the target`,
    `   (mode ${a.mode}); initial copy ${a.copy.rows} rows, ${formatBytes(a.copy.bytes)} in ${formatMs(a.copy.elapsedMs)}`,
    '   steady: the apply runs throughout the load',
    row([
      ['pgbench on the source', label],
      [`${num(st.load.tps, 1)} tps (${st.load.transactions} transactions)`, 0],
    ]),
    row([
      [`row changes captured (${formatMs(st.windowMs)} window)`, label],
      [`${num(st.capturedPerSecond)} changes/s${st.capturedEstimated ? ' (backlog estimated)' : ''}`, 0],
    ]),
    row([
      ['row changes applied', label],
      [`${num(st.appliedPerSecond)} changes/s (applied / captured ${ratio(st.appliedChanges, st.capturedChanges)})`, 0],
    ]),
    row([
      [`lag, seconds (${st.lag.samples} samples, 1/s)`, label],
      [`mean ${num(st.lag.meanSeconds, 2)}  max ${num(st.lag.maxSeconds, 2)}`, 0],
    ]),
    row([
      ['lag, row changes pending', label],
      [`mean ${num(st.lag.meanChanges)}  max ${num(st.lag.maxChanges)}${st.lag.estimated ? ' (some estimated)' : ''}`, 0],
    ]),
    row([
      ['nothing pending after the load ended in', label],
      [st.catchUpMs === undefined ? 'not within the timeout' : formatMs(st.catchUpMs), 0],
    ]),
    `   backlog: the apply starts ${o.backlogSeconds} s into the load`,
    row([
      ['pgbench on the source', label],
      [`${num(bl.load.tps, 1)} tps (${bl.load.transactions} transactions)`, 0],
    ]),
    row([
      ['backlog when the apply started', label],
      [`${bl.backlog.pendingChanges} changes${bl.backlog.estimated ? ' (estimated)' : ''}, oldest ${num(bl.backlog.lagSeconds, 1)} s`, 0],
    ]),
    row([
      [`oldest pending change under ${CAUGHT_UP_LAG_SECONDS} s old after`, label],
      [bl.caughtUpUnderLoadMs === undefined ? 'not before the load ended' : formatMs(bl.caughtUpUnderLoadMs), 0],
    ]),
    row([
      [`row changes applied (${formatMs(bl.windowMs)} from the apply's start)`, label],
      [`${num(bl.appliedPerSecond)} changes/s (${bl.appliedChanges} changes)`, 0],
    ]),
    row([
      ['nothing pending after the load ended in', label],
      [bl.catchUpAfterLoadMs === undefined ? 'not within the timeout' : formatMs(bl.catchUpAfterLoadMs), 0],
    ]),
    row([
      ['pgbench tables equal on both sides after', label],
      [a.tablesEqual === undefined ? 'not checked (not caught up)' : a.tablesEqual ? 'yes' : 'NO', 0],
    ]),
  ];
}

export function printTriggersReport(r: TriggersBenchReport): void {
  const load = (l: number[]) => l.map((v) => v.toFixed(2)).join(' / ');
  const out: string[] = [
    '',
    `== triggers benchmark: ${formatMs(r.elapsedMs)} on ${r.loadAverage.cpus} CPUs; load average (1/5/15 min) ${load(r.loadAverage.start)} at start, ${load(r.loadAverage.end)} at end`,
    '',
    ...cutoverSection(r.cutovers, r.options),
    '',
    ...overheadSection(r.overhead, r.options, r.loadScale),
    '',
    ...applySection(r.apply, r.options, r.loadScale),
  ];
  console.log(out.join('\n'));
}
