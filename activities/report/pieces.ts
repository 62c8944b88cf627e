/**
 * What the rehearsal report and the migration report render alike: escaping, the exact-ms figure,
 * phase colours (so a step has the same colour in both charts), the approvals and compensation
 * sections, and the SVG frame. Pure string building.
 */
import { formatMs } from '../../contract/plan';
import type { PhaseTiming } from '../../contract/rehearsal-report';
import type { CompensationRecord, GateDecision } from '../../signals';

export const exact = (ms: number) => `${ms.toLocaleString('en-US')} ms`;
/** Text safe inside one Markdown table cell. */
export const md = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
/** Text safe inside SVG/XML content and attribute values. */
export const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * Colours by phase name, stable within one chart and distinct however many phases there are: the
 * migration's steps get hues a golden angle apart, its undos shades of red, snapshot and teardown
 * dark fixed colours, the overhead grey. Names are taken in order of first appearance.
 */
export function phaseColours(phases: Iterable<Pick<PhaseTiming, 'name' | 'kind'>>): Map<string, string> {
  const all = [...phases];
  const colours = new Map<string, string>();
  const byKind = (kind: PhaseTiming['kind']) => [...new Set(all.filter((p) => p.kind === kind).map((p) => p.name))];
  for (const n of byKind('snapshot')) colours.set(n, '#1f3b73');
  byKind('migration').forEach((n, i) => colours.set(n, `hsl(${Math.round((30 + i * 137.508) % 360)}, 62%, ${i % 2 ? 62 : 48}%)`));
  byKind('undo').forEach((n, i) => colours.set(n, `hsl(350, 70%, ${30 + ((i * 11) % 45)}%)`));
  for (const n of byKind('teardown')) colours.set(n, '#5b4636');
  for (const n of byKind('overhead')) colours.set(n, '#d9d9d9');
  return colours;
}

/** The Markdown section listing the gate decisions; none when there were none. */
export function approvalsSection(decisions: GateDecision[]): string[] {
  if (!decisions.length) return [];
  return [
    '## Approvals',
    '',
    ...decisions.map(
      (d) =>
        `- ${d.gate}: ${d.approved ? 'approved' : 'rejected'} by **${d.approver}** (${d.via}, ${d.decidedAt})${d.reason ? `: ${d.reason}` : ''}`,
    ),
    '',
  ];
}

/** The Markdown section listing the migration's undo steps; none when nothing was undone. */
export function compensationSection(compensations: CompensationRecord[]): string[] {
  if (!compensations.length) return [];
  return [
    "## The migration's compensation",
    '',
    ...compensations.map((c) => `- ${c.step}: ${c.state} in ${formatMs(c.durationMs)}${c.error ? `: ${c.error}` : ''}`),
    '',
  ];
}

/** The opening of a chart: white background and a bold title. The caller closes it with `</svg>`. */
export function svgOpen(width: number, height: number, titleX: number, title: string): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${titleX}" y="22" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
}

const FREEZE_STYLE = 'fill="#c0392b" fill-opacity="0.12" stroke="black" stroke-width="2"';

/** The write-freeze window over the part of a chart it covers; the same look in every chart and its legend. */
export function freezeMarker(box: { x: number; y: number; width: number; height: number }, title: string): string {
  return `<rect class="freeze-window" x="${box.x.toFixed(2)}" y="${box.y.toFixed(2)}" width="${box.width.toFixed(2)}" height="${box.height.toFixed(2)}" ${FREEZE_STYLE}><title>${esc(title)}</title></rect>`;
}

export function freezeLegend(x: number, y: number, text: string): string {
  return `<rect x="${x + 1}" y="${y - 10}" width="12" height="10" ${FREEZE_STYLE}/><text x="${x + 20}" y="${y}">${esc(text)}</text>`;
}
