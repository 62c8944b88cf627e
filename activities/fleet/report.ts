/**
 * The fleet report as files: `fleet.json` (the figures), `fleet.md` (per database method, window and
 * outcome; p50 / p95 / max windows; migrations per hour; failures with reasons) and `windows.svg` (each
 * database's write-freeze window as a bar, coloured by outcome, with the p50 and p95 lines).
 * Default directory `.stack/fleets/<fleetId>/` (`PGMIG_FLEET_DIR` moves the root).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { FleetReport } from '../../contract/fleet-report';
import { formatBytes, formatMs } from '../../contract/plan';
import type { FleetReportFiles } from '../../signals/fleet';
import { esc, exact, md, svgOpen } from '../report/pieces';

export const FLEET_CHART_FILE = 'windows.svg';

export function fleetReportDir(fleetId: string, override?: string): string {
  if (override) return path.resolve(override);
  const root = process.env.PGMIG_FLEET_DIR ? path.resolve(process.env.PGMIG_FLEET_DIR) : path.resolve(process.cwd(), '.stack/fleets');
  return path.join(root, fleetId);
}

const OUTCOME_COLOURS: Record<string, string> = {
  completed: '#27ae60',
  'rolled-back': '#e67e22',
  failed: '#c0392b',
  cancelled: '#7f8c8d',
  skipped: '#bdc3c7',
  running: '#2980b9',
  pending: '#ecf0f1',
};

const msText = (v: number | undefined) => (v === undefined ? '-' : `${formatMs(v)} (${exact(v)})`);

export function renderFleetMarkdown(r: FleetReport, chartFile = FLEET_CHART_FILE): string {
  const c = r.counts;
  const lines = [
    `# Fleet ${r.fleetId}: ${r.outcome.toUpperCase()}`,
    '',
    ...(r.reason ? [`> ${md(r.reason)}`, ''] : []),
    '| figure | value |',
    '|---|---|',
    `| databases | ${r.total} |`,
    `| completed | ${c.completed} |`,
    `| failed | ${c.failed} |`,
    `| rolled back | ${c['rolled-back']} |`,
    `| cancelled | ${c.cancelled} |`,
    `| not started | ${c.skipped + c.pending} |`,
    `| write-freeze window p50 | ${msText(r.windows.p50)} |`,
    `| write-freeze window p95 | ${msText(r.windows.p95)} |`,
    `| write-freeze window max | ${msText(r.windows.max)} |`,
    `| elapsed (first start to last end) | ${r.elapsedMs !== undefined ? formatMs(r.elapsedMs) : '-'} |`,
    `| completed migrations per hour | ${r.migrationsPerHour ?? '-'} |`,
    '',
    `![write-freeze windows](${chartFile})`,
    '',
    '## Databases',
    '',
    '| database | wave | size | method | outcome | window | duration | reason |',
    '|---|---|---|---|---|---|---|---|',
    ...r.rows.map(
      (row) =>
        `| ${md(row.database)} | ${md(row.wave)} | ${row.sizeBytes !== undefined ? formatBytes(row.sizeBytes) : '-'} | ${row.method ?? '-'} | ${row.outcome}${row.overBudget ? ' (over budget)' : ''} | ${row.windowMs !== undefined ? exact(row.windowMs) : '-'} | ${row.durationMs !== undefined ? formatMs(row.durationMs) : '-'} | ${md(row.reason ?? '')} |`,
    ),
    '',
    '## Failures',
    '',
    ...(r.failures.length
      ? r.failures.map((f) => `- **${md(f.database)}** (${f.outcome}, workflow \`${f.workflowId}\`): ${md(f.reason)}`)
      : ['none']),
    '',
  ];
  return lines.join('\n');
}

/** One bar per database (in the report's order) for its write-freeze window; p50 / p95 as dashed lines. */
export function renderFleetChart(r: FleetReport): string {
  const left = 260;
  const width = 900;
  const barH = 14;
  const top = 50;
  const rows = r.rows;
  const height = top + rows.length * (barH + 4) + 40;
  const max = Math.max(1, ...rows.map((x) => x.windowMs ?? 0));
  const scale = (v: number) => left + (v / max) * (width - left - 40);
  const out = svgOpen(width, height, 10, `Fleet ${r.fleetId}: write-freeze window per database (max ${exact(max)})`);
  rows.forEach((row, i) => {
    const y = top + i * (barH + 4);
    const label = row.database.length > 40 ? `${row.database.slice(0, 39)}…` : row.database;
    out.push(`<text x="${left - 6}" y="${y + barH - 3}" text-anchor="end">${esc(label)}</text>`);
    const colour = OUTCOME_COLOURS[row.outcome] ?? '#999';
    const w = row.windowMs !== undefined ? Math.max(1, scale(row.windowMs) - left) : 0;
    const title = `${row.database}: ${row.outcome}${row.windowMs !== undefined ? `, window ${exact(row.windowMs)}` : ''}${row.reason ? ` (${row.reason})` : ''}`;
    if (w)
      out.push(
        `<rect class="window" x="${left}" y="${y}" width="${w.toFixed(2)}" height="${barH}" fill="${colour}"><title>${esc(title)}</title></rect>`,
      );
    else out.push(`<text x="${left + 4}" y="${y + barH - 3}" fill="${colour}">${esc(row.outcome)}<title>${esc(title)}</title></text>`);
  });
  for (const [name, v] of [
    ['p50', r.windows.p50],
    ['p95', r.windows.p95],
  ] as const) {
    if (v === undefined) continue;
    const x = scale(v).toFixed(2);
    out.push(`<line class="${name}" x1="${x}" y1="${top - 8}" x2="${x}" y2="${height - 30}" stroke="black" stroke-dasharray="4 3"/>`);
    out.push(`<text x="${x}" y="${top - 12}" text-anchor="middle">${name} ${esc(exact(v))}</text>`);
  }
  let lx = left;
  for (const [outcome, colour] of Object.entries(OUTCOME_COLOURS).slice(0, 5)) {
    out.push(
      `<rect x="${lx}" y="${height - 20}" width="10" height="10" fill="${colour}"/><text x="${lx + 14}" y="${height - 11}">${outcome}</text>`,
    );
    lx += 100;
  }
  out.push('</svg>');
  return out.join('\n');
}

export async function writeFleetReportFiles(report: FleetReport, reportDir?: string): Promise<FleetReportFiles> {
  const dir = fleetReportDir(report.fleetId, reportDir);
  await mkdir(dir, { recursive: true });
  const files = { json: path.join(dir, 'fleet.json'), markdown: path.join(dir, 'fleet.md'), chart: path.join(dir, FLEET_CHART_FILE) };
  await writeFile(files.json, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(files.markdown, renderFleetMarkdown(report));
  await writeFile(files.chart, renderFleetChart(report));
  return files;
}
