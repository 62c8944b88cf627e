/**
 * The report of one real migration, from its MigrationResult: Markdown, and an SVG timeline of its
 * steps with the write-freeze window marked. Built from the rehearsal report's pieces so a step looks
 * the same in both. Pure string building.
 */
import { formatMs } from '../../contract/plan';
import { stepInFreezeWindow } from '../../contract/rehearsal-report';
import type { MigrationResult, StepRecord } from '../../signals';
import { approvalsSection, compensationSection, esc, exact, freezeLegend, freezeMarker, md, phaseColours, svgOpen } from './pieces';

const HEADLINE: Record<MigrationResult['outcome'], string> = {
  completed: 'LIVE on the target',
  'rolled-back': 'ROLLED BACK',
  failed: 'FAILED',
};

/** Epoch ms a step started and ended; a step still running when the result was taken ends where its duration says. */
function span(s: StepRecord): { start: number; end: number } {
  const start = Date.parse(s.startedAt);
  return { start, end: s.endedAt !== undefined ? Date.parse(s.endedAt) : start + (s.durationMs ?? 0) };
}

const clock = (ms: number) => new Date(ms).toISOString().slice(11, 23);

function windowText(result: MigrationResult): string {
  const w = result.freezeWindow;
  if (w.frozenAt === undefined) return 'writes were never frozen';
  if (w.unfrozenAt === undefined) return `writes frozen from ${clock(w.frozenAt)} UTC and **not accepted again** by the end of the run`;
  const duration = w.durationMs ?? w.unfrozenAt - w.frozenAt;
  return `**${formatMs(duration)}** (${exact(duration)}, ${clock(w.frozenAt)} to ${clock(w.unfrozenAt)} UTC${w.gateWaitMs ? `; ${exact(w.gateWaitMs)} of it at the go-live gate` : ''})`;
}

export function renderMigrationMarkdown(result: MigrationResult, chartFile = 'timeline.svg'): string {
  const r = result;
  const spans = r.steps.map(span);
  const first = spans.length ? Math.min(...spans.map((s) => s.start)) : undefined;
  const last = spans.length ? Math.max(...spans.map((s) => s.end)) : undefined;
  const rows: [string, string][] = [
    ['outcome', `${r.outcome}${r.reason ? `: ${r.reason}` : ''}`],
    ['method', r.method],
    [
      'steps',
      first !== undefined && last !== undefined
        ? `${new Date(first).toISOString()} to ${new Date(last).toISOString()} (${formatMs(last - first)})`
        : 'none ran',
    ],
    ['write-freeze window', windowText(r)],
    ['copied', `${r.rowsCopied.toLocaleString('en-US')} rows in ${r.tables} tables`],
    ['verification', r.verification],
    [
      'catalog',
      r.catalogDifferences === undefined
        ? 'not compared'
        : r.catalogDifferences.length
          ? `${r.catalogDifferences.length} difference(s): ${r.catalogDifferences.join('; ')}`
          : 'no differences',
    ],
    [
      'left with',
      r.sides
        ? `the application on the ${r.sides.application}; source ${r.sides.sourceWritable ? 'writable' : 'read-only'}, target ${r.sides.targetWritable ? 'writable' : 'read-only'}`
        : 'not recorded',
    ],
  ];
  const lines = [`# Migration \`${r.migrationId}\`: ${HEADLINE[r.outcome]}`, ''];
  lines.push('| | |', '| --- | --- |', ...rows.map(([k, v]) => `| ${k} | ${md(v)} |`), '');
  lines.push('## Steps', '', '| step | state | started | duration | writes frozen | |', '| --- | --- | --- | ---: | :---: | --- |');
  for (const s of r.steps) {
    lines.push(
      `| ${md(s.name)} | ${s.state} | ${s.startedAt} | ${exact(s.durationMs ?? 0)} | ${stepInFreezeWindow(s, r.freezeWindow) ? 'yes' : ''} | ${md(s.error ?? s.detail ?? '')} |`,
    );
  }
  lines.push('', ...approvalsSection(r.decisions), ...compensationSection(r.compensations));
  lines.push(`![timeline of the steps of ${r.migrationId}](${chartFile})`, '');
  return lines.join('\n');
}

/**
 * One row per step on a shared time axis, the write-freeze window as a band over the rows it covers
 * and the gate decisions as ticks. Step times are the workflow's clock, the window's edges the
 * activities' (the moment writes were refused and accepted again), so the band may start inside a step.
 */
export function renderMigrationTimeline(result: MigrationResult): string {
  const r = result;
  const spans = r.steps.map(span);
  const w = r.freezeWindow;
  const t0 = Math.min(...spans.map((s) => s.start), w.frozenAt ?? Infinity);
  const t1 = Math.max(...spans.map((s) => s.end), w.unfrozenAt ?? -Infinity);
  const labelWidth = 180;
  const plotLeft = labelWidth + 10;
  const plotWidth = 600;
  const plotTop = 40;
  const rowHeight = 18;
  const plotBottom = plotTop + Math.max(1, r.steps.length) * rowHeight;
  const width = plotLeft + plotWidth + 30;
  const height = plotBottom + 60;
  const extent = Number.isFinite(t0) && Number.isFinite(t1) && t1 > t0 ? t1 - t0 : 1;
  const x = (ms: number) => plotLeft + ((ms - t0) / extent) * plotWidth;
  const out = svgOpen(width, height, 10, `Migration ${r.migrationId}: ${HEADLINE[r.outcome]}`);
  for (let i = 0; i <= 4; i++) {
    const gx = plotLeft + (plotWidth * i) / 4;
    out.push(`<line x1="${gx}" x2="${gx}" y1="${plotTop}" y2="${plotBottom}" stroke="#eee"/>`);
    out.push(`<text x="${gx}" y="${plotBottom + 14}" text-anchor="middle" fill="#555">+${esc(formatMs((extent * i) / 4))}</text>`);
  }
  // Behind the bars, so the steps inside it keep their colours.
  if (w.frozenAt !== undefined) {
    const end = w.unfrozenAt ?? t1;
    out.push(
      freezeMarker(
        { x: x(w.frozenAt), y: plotTop - 4, width: x(end) - x(w.frozenAt), height: plotBottom - plotTop + 8 },
        w.unfrozenAt !== undefined
          ? `write-freeze window ${formatMs(end - w.frozenAt)}${w.gateWaitMs ? ` (${formatMs(w.gateWaitMs)} at the go-live gate)` : ''}`
          : 'write-freeze window: writes not accepted again by the end of the run',
      ),
    );
  }
  const colours = phaseColours(r.steps.map((s) => ({ name: s.name, kind: 'migration' as const })));
  r.steps.forEach((s, i) => {
    const rowY = plotTop + i * rowHeight;
    const { start, end } = spans[i];
    out.push(`<text x="${plotLeft - 6}" y="${rowY + 13}" text-anchor="end">${esc(s.name)}</text>`);
    out.push(
      `<rect x="${x(start).toFixed(2)}" y="${rowY + 3}" width="${Math.max(x(end) - x(start), 1).toFixed(2)}" height="${rowHeight - 6}" fill="${colours.get(s.name) ?? '#999'}"${s.state === 'failed' ? ' stroke="#c0392b" stroke-width="2"' : ''}><title>${esc(`${s.name}: ${formatMs(end - start)} (${s.state})`)}</title></rect>`,
    );
  });
  for (const d of r.decisions) {
    const dx = x(Date.parse(d.decidedAt)).toFixed(2);
    out.push(
      `<line x1="${dx}" x2="${dx}" y1="${plotTop - 8}" y2="${plotBottom + 4}" stroke="${d.approved ? '#2a7d2a' : '#c0392b'}" stroke-dasharray="3 3"><title>${esc(`${d.gate} ${d.approved ? 'approved' : 'rejected'} by ${d.approver} (${d.via})`)}</title></line>`,
    );
  }
  out.push(freezeLegend(plotLeft, plotBottom + 40, 'write-freeze window (writes refused)'));
  out.push('</svg>');
  return out.join('\n') + '\n';
}
