/** The rehearsal report as Markdown, and the SVG chart of phase timings over a migration's rehearsals. Pure string building. */
import { formatBytes, formatMs } from '../../contract/plan';
import { sumOfPhases, type RehearsalReport } from '../../contract/rehearsal-report';
import { approvalsSection, compensationSection, esc, exact, freezeLegend, freezeMarker, md, phaseColours, svgOpen } from '../report/pieces';

const HEADLINE: Record<RehearsalReport['outcome'], string> = {
  passed: 'PASSED',
  'over-budget': 'FAILED: over the downtime budget',
  failed: 'FAILED',
  cancelled: 'CANCELLED',
};

export function renderMarkdown(report: RehearsalReport, chartFile = 'phases.svg'): string {
  const lines: string[] = [];
  const r = report;
  lines.push(`# Rehearsal ${r.rehearsalId} of \`${r.migrationId}\`: ${HEADLINE[r.outcome]}`, '');
  const fw = r.freezeWindow;
  const rows: [string, string][] = [
    ['outcome', `${r.outcome} (verdict **${r.verdict}**)`],
    [
      'started',
      `${r.startedAt}${r.scheduledAt ? ` (scheduled for ${r.scheduledAt}${r.scheduleId ? ` by schedule \`${r.scheduleId}\`` : ''})` : ' (started by hand)'}`,
    ],
    ['workflow', `\`${r.workflowId}\` run \`${r.runId}\`${r.childWorkflowId ? `; migration \`${r.childWorkflowId}\`` : ''}`],
    ['method', r.method ? `${r.method}${r.methodReason ? ` (${r.methodReason})` : ''}` : 'not reached'],
    ['snapshot', `${r.snapshot.description}${r.snapshot.sizeBytes !== undefined ? `, ${formatBytes(r.snapshot.sizeBytes)}` : ''}`],
    ['total', `${formatMs(r.totalMs)} (${exact(r.totalMs)})`],
    [
      'write-freeze window',
      fw.rehearsedWindowMs !== undefined
        ? `**${formatMs(fw.rehearsedWindowMs)}** (${exact(fw.rehearsedWindowMs)}; measured ${exact(fw.durationMs ?? 0)}${fw.gateWaitMs ? `, less ${exact(fw.gateWaitMs)} at the go-live gate` : ''})`
        : fw.durationMs !== undefined
          ? `not measured to go-live (writes were frozen ${formatMs(fw.durationMs)} before the rollback)`
          : 'not measured',
    ],
    [
      'publishable downtime',
      r.publishableDowntimeMs !== undefined
        ? `**${formatMs(r.publishableDowntimeMs)}** = window + margin ${formatMs(r.margin.appliedMs ?? 0)} (max of ${r.margin.percent} % and ${formatMs(r.margin.minMs)})`
        : 'none: no window was measured',
    ],
    [
      'downtime budget',
      r.budget.value
        ? `${r.budget.value}: ${r.budget.withinBudget === undefined ? 'not compared' : r.budget.withinBudget ? 'within budget' : '**exceeded**'}`
        : 'none given',
    ],
    [
      'copy throughput',
      r.copy.bytesPerSecond !== undefined
        ? `${formatBytes(r.copy.bytesPerSecond)}/s (${formatBytes(r.copy.bytes ?? 0)} in ${formatMs(r.copy.ms ?? 0)}; ${r.copy.basis})`
        : 'not measured',
    ],
    [
      'lag at cutover',
      r.lagAtCutover
        ? r.lagAtCutover.bytes !== undefined || r.lagAtCutover.seconds !== undefined
          ? `${r.lagAtCutover.bytes !== undefined && r.lagAtCutover.bytes !== null ? `${formatBytes(r.lagAtCutover.bytes)} of WAL` : ''}${r.lagAtCutover.seconds !== undefined && r.lagAtCutover.seconds !== null ? ` ${r.lagAtCutover.seconds} s` : ''} (${r.lagAtCutover.basis})`
          : 'not reached'
        : r.method
          ? `n/a (no replication: ${r.method})`
          : 'not reached',
    ],
    [
      'verification',
      `${r.verification}${r.rowsCopied !== undefined ? ` (${r.rowsCopied.toLocaleString('en-US')} rows compared by count and checksum)` : ''}`,
    ],
    ['trend', r.trend ? r.trend.summary : 'not computed'],
  ];
  lines.push('| | |', '| --- | --- |', ...rows.map(([k, v]) => `| ${k} | ${md(v)} |`), '');

  if (r.reasons.length) {
    lines.push(r.outcome === 'cancelled' ? '## Why it stopped' : '## Why it failed', '', ...r.reasons.map((x) => `- ${x}`), '');
  }

  lines.push(
    '## Phases',
    '',
    `The lines add up to the measured total; "orchestration overhead" is the remainder (workflow tasks, starting the migration, gate handling).`,
    '',
  );
  lines.push('| phase | kind | state | duration | share |', '| --- | --- | --- | ---: | ---: |');
  for (const p of r.phases) {
    lines.push(
      `| ${md(p.name)} | ${p.kind} | ${p.state ?? ''} | ${exact(p.durationMs)} | ${r.totalMs > 0 ? ((100 * p.durationMs) / r.totalMs).toFixed(1) : '0.0'} % |`,
    );
  }
  lines.push(`| **sum** | | | **${exact(sumOfPhases(r.phases))}** | |`, `| **measured total** | | | **${exact(r.totalMs)}** | |`, '');

  lines.push(...approvalsSection(r.approvals), ...compensationSection(r.compensations));
  lines.push('## Teardown of the scratch resources', '');
  if (!r.teardown.length) lines.push('- nothing was created');
  for (const t of r.teardown)
    lines.push(
      `- ${t.step}: ${t.state} in ${formatMs(t.durationMs)}${t.done?.length ? `: ${t.done.join('; ')}` : ''}${t.error ? `: ${t.error}` : ''}`,
    );
  lines.push('');
  if (r.notes.length) lines.push('## How the rehearsal differs from the real run', '', ...r.notes.map((n) => `- ${n}`), '');
  lines.push(`![phase timings of the rehearsals of ${r.migrationId}](${chartFile})`, '');
  return lines.join('\n');
}

/**
 * Axis labels for runs by start time (ISO): month, day and time to the second, and where two runs still
 * share a second (rehearsals started together), a counter so every bar keeps a label of its own.
 */
export function runLabels(startedAt: string[]): string[] {
  const base = startedAt.map((t) => t.slice(5, 19).replace('T', ' '));
  const seen = new Map<string, number>();
  return base.map((b) => {
    const n = (seen.get(b) ?? 0) + 1;
    seen.set(b, n);
    return base.filter((o) => o === b).length > 1 ? `${b} #${n}` : b;
  });
}

/** Stacked bars of phase timings, one bar per rehearsal (oldest left), with the rehearsed window and the budget marked. */
export function renderChart(reports: RehearsalReport[], opts: { last?: number } = {}): string {
  const shown = [...reports].sort((a, b) => a.startedAt.localeCompare(b.startedAt)).slice(-(opts.last ?? 20));
  const colours = phaseColours(shown.flatMap((r) => r.phases));
  const barWidth = 28;
  const slot = 48;
  const plotLeft = 70;
  const plotTop = 40;
  const plotHeight = 260;
  const legendX = plotLeft + Math.max(1, shown.length) * slot + 70;
  const legendRows = colours.size + 2;
  const width = legendX + 260;
  const height = Math.max(plotTop + plotHeight + 70, 40 + legendRows * 16 + 20);
  const maxTotal = Math.max(1, ...shown.map((r) => Math.max(r.totalMs, sumOfPhases(r.phases.filter((p) => p.durationMs > 0)))));
  const budgets = shown.map((r) => r.budget.ms).filter((b): b is number => b !== undefined);
  const budget = budgets.length ? budgets[budgets.length - 1] : undefined;
  // The scale always reaches the budget: a bar far below its line is the point of the chart, not clutter.
  const top = Math.max(maxTotal, budget ?? 0);
  const y = (ms: number) => plotTop + plotHeight - (ms / top) * plotHeight;
  const out: string[] = [];
  const title = shown.length ? `Rehearsals of ${shown[shown.length - 1].migrationId}: phase timings` : 'No rehearsals yet';
  out.push(...svgOpen(width, height, plotLeft, title));
  // axis and grid
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4;
    out.push(`<line x1="${plotLeft}" x2="${legendX - 20}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#eee"/>`);
    out.push(`<text x="${plotLeft - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="#555">${esc(formatMs(v))}</text>`);
  }
  out.push(`<line x1="${plotLeft}" x2="${plotLeft}" y1="${plotTop}" y2="${plotTop + plotHeight}" stroke="#333"/>`);
  const labels = runLabels(shown.map((r) => r.startedAt));
  shown.forEach((r, i) => {
    const x = plotLeft + 12 + i * slot;
    let acc = 0;
    // The stretch of the bar taken by the segments that ran with writes frozen (from the freeze to go-live).
    let windowFrom: number | undefined;
    let windowTo = 0;
    for (const p of r.phases) {
      if (p.durationMs <= 0) continue;
      const y0 = y(acc + p.durationMs);
      const h = y(acc) - y0;
      out.push(
        `<rect x="${x}" y="${y0.toFixed(2)}" width="${barWidth}" height="${Math.max(h, 0.5).toFixed(2)}" fill="${colours.get(p.name) ?? '#999'}"><title>${esc(`${r.rehearsalId} ${p.name}: ${formatMs(p.durationMs)}`)}</title></rect>`,
      );
      if (p.inFreezeWindow) {
        windowFrom ??= acc;
        windowTo = acc + p.durationMs;
      }
      acc += p.durationMs;
    }
    const w = r.freezeWindow.rehearsedWindowMs;
    if (w !== undefined && windowFrom !== undefined) {
      out.push(
        freezeMarker(
          { x: x - 4, y: y(windowTo), width: barWidth + 8, height: y(windowFrom) - y(windowTo) },
          `write-freeze window ${formatMs(w)}`,
        ),
      );
    }
    const mark = r.verdict === 'pass' ? '✓' : r.outcome === 'cancelled' ? '–' : '✗';
    const colour = r.verdict === 'pass' ? '#2a7d2a' : '#c0392b';
    out.push(
      `<text x="${x + barWidth / 2}" y="${plotTop + plotHeight + 14}" text-anchor="middle" fill="${colour}" font-weight="bold">${mark}</text>`,
    );
    out.push(
      `<text class="run-label" transform="translate(${x + barWidth / 2},${plotTop + plotHeight + 24}) rotate(35)" fill="#333">${esc(labels[i])}</text>`,
    );
  });
  if (budget !== undefined) {
    out.push(
      `<line class="budget" x1="${plotLeft}" x2="${legendX - 20}" y1="${y(budget).toFixed(2)}" y2="${y(budget).toFixed(2)}" stroke="#c0392b" stroke-dasharray="6 4"/>`,
    );
    out.push(
      `<text x="${legendX - 22}" y="${(y(budget) - 4).toFixed(1)}" text-anchor="end" fill="#c0392b">budget ${esc(formatMs(budget))}</text>`,
    );
  }
  // legend
  let ly = 44;
  out.push(freezeLegend(legendX, ly, 'write-freeze window (rehearsed)'));
  ly += 16;
  for (const [name, colour] of colours) {
    out.push(
      `<rect x="${legendX}" y="${ly - 10}" width="14" height="10" fill="${colour}"/><text x="${legendX + 20}" y="${ly}">${esc(name)}</text>`,
    );
    ly += 16;
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
