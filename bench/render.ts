/** Pure rendering of the benchmark results: Markdown tables and an SVG bar chart (no external tools). */
import { formatBytes } from '../contract/plan';
import type { CopyReport } from './copy';
import type { CutoverReport } from './cutover';
import type { OrchestrationOverhead } from './measure';
import type { Machine } from './results';

/** Seconds with two decimals ("-" when not measured; JSON stores NaN as null). */
export function seconds(ms: number | null | undefined): string {
  return ms == null || !Number.isFinite(ms) ? '-' : `${(ms / 1000).toFixed(2)} s`;
}

export function times(x: number | null | undefined): string {
  return x == null || !Number.isFinite(x) ? '-' : `${x.toFixed(2)}x`;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export interface BarGroup {
  label: string;
  bars: { name: string; value: number }[];
}

const PALETTE = ['#4269d0', '#efb118', '#ff725c', '#6cc5b0', '#3ca951', '#ff8ab7', '#a463f2'];

/** A horizontal grouped bar chart: one group per label, one bar per series, values in `unit`, scaled to the largest. */
export function barChartSvg(opts: { title: string; unit: string; groups: BarGroup[] }): string {
  const names = [...new Set(opts.groups.flatMap((g) => g.bars.map((b) => b.name)))];
  const color = (name: string) => PALETTE[names.indexOf(name) % PALETTE.length];
  const max = Math.max(1e-9, ...opts.groups.flatMap((g) => g.bars.map((b) => (Number.isFinite(b.value) ? b.value : 0))));
  const [left, width, barH, gap, top] = [170, 420, 16, 14, 40];
  const lines: string[] = [];
  let y = top;
  for (const g of opts.groups) {
    lines.push(`<text x="8" y="${y + 12}" font-weight="bold">${escapeXml(g.label)}</text>`);
    y += 18;
    for (const b of g.bars) {
      const value = Number.isFinite(b.value) ? b.value : 0;
      const w = Math.max(1, Math.round((value / max) * width));
      lines.push(`<text x="${left - 6}" y="${y + 12}" text-anchor="end">${escapeXml(b.name)}</text>`);
      lines.push(`<rect x="${left}" y="${y}" width="${w}" height="${barH}" fill="${color(b.name)}"/>`);
      const label = Number.isFinite(b.value) ? `${b.value.toFixed(2)} ${opts.unit}` : 'not measured';
      lines.push(`<text x="${left + w + 6}" y="${y + 12}">${escapeXml(label)}</text>`);
      y += barH + 4;
    }
    y += gap;
  }
  const height = y + 8;
  const totalWidth = left + width + 110;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${totalWidth}" height="${height}" viewBox="0 0 ${totalWidth} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="8" y="22" font-size="14" font-weight="bold">${escapeXml(opts.title)}</text>`,
    ...lines,
    '</svg>',
    '',
  ].join('\n');
}

export function machineLine(m: Machine): string {
  const load = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' / ');
  return `Measured ${m.date.slice(0, 16).replace('T', ' ')} UTC on ${m.cores} cores (${m.cpuModel}), load average ${load(m.loadAverage.start)} at the start and ${load(m.loadAverage.end)} at the end (1 / 5 / 15 min); the bench took ${seconds(m.elapsedMs)}.`;
}

function overheadRow(label: string, o: OrchestrationOverhead | undefined): string {
  if (!o) return `| ${label} | - | - | - | - |`;
  return `| ${label} | ${seconds(o.wallMs)} | ${seconds(o.activityMs)} | ${Math.round(o.overheadMs)} ms | ${o.overheadPct.toFixed(1)}% |`;
}

const OVERHEAD_HEAD = [
  '| run | workflow wall time | its activities | orchestration overhead | of wall time |',
  '| --- | ------------------ | -------------- | ---------------------- | ------------ |',
];

export function copyChart(report: CopyReport): string {
  return barChartSvg({
    title: `Freeze-copy: product window vs bare tools (-j ${report.options.jobs})`,
    unit: 's',
    groups: report.summary.map((s) => ({
      label: `${formatBytes(s.databaseBytes)} (scale ${s.scale})`,
      bars: [
        { name: 'product window', value: s.productMs / 1000 },
        { name: 'pgcopydb clone', value: s.pgcopydbMs / 1000 },
        { name: 'pg_dump+restore', value: s.pgDumpRestoreMs / 1000 },
        ...(s.cdcCopyMs !== undefined ? [{ name: 'CDC initial copy', value: s.cdcCopyMs / 1000 }] : []),
      ],
    })),
  });
}

/** The copy results as Markdown; `chart` is the SVG's path relative to where the Markdown goes. */
export function copyMarkdown(report: CopyReport, chart: string): string {
  const { jobs, repeats } = report.options;
  return [
    `### Freeze-copy vs the bare tools (\`npm run bench -- copy --scales ${report.options.scales.join(',')} --repeats ${repeats}\`)`,
    '',
    `The product's \`dump-restore\` write-freeze window (copy, sequences and verification; its copy and verify steps in brackets) against a bare \`pgcopydb clone --table-jobs ${jobs} --index-jobs ${jobs}\` and \`pg_dump -Fd -j ${jobs}\` + \`pg_restore -j ${jobs}\`, on the same source database, each into a fresh empty database; medians of ${repeats}, the order rotated per round. The CDC initial copy is the \`pgcopydb\` method's \`snapshot-copy\` step (a new slot's exported snapshot copied by \`pgcopydb clone --snapshot\`, no freeze, no verification inside); its throughput is the bare clone's time over its time.`,
    '',
    '| size (scale) | product window (copy + verify) | pgcopydb clone | pg_dump + pg_restore | product / pgcopydb | product / pg_dump+restore | CDC initial copy | its throughput / pgcopydb | ran first |',
    '| ------------ | ------------------------------ | -------------- | -------------------- | ------------------ | ------------------------- | ---------------- | ------------------------- | --------- |',
    ...report.summary.map(
      (s) =>
        `| ${formatBytes(s.databaseBytes)} (${s.scale}) | ${seconds(s.productMs)} (${seconds(s.productCopyMs)} + ${seconds(s.productVerifyMs)}) | ${seconds(s.pgcopydbMs)} | ${seconds(s.pgDumpRestoreMs)} | ${times(s.productOverPgcopydb)} | ${times(s.productOverPgDumpRestore)} | ${seconds(s.cdcCopyMs)} | ${times(s.cdcCopyThroughputVsPgcopydb)} | ${s.ranFirst.join(', ')} |`,
    ),
    '',
    `![freeze-copy chart](${chart})`,
    '',
    ...OVERHEAD_HEAD,
    ...report.runs
      .filter((r) => r.contender === 'product')
      .map((r) => overheadRow(`dump-restore, scale ${r.scale}, round ${r.repeat + 1}`, r.overhead)),
    '',
    machineLine(report.machine),
    '',
  ].join('\n');
}

export function cutoverChart(report: CutoverReport): string {
  const scales = [...new Set(report.ratios.map((r) => r.scale))];
  return barChartSvg({
    title: 'Longest application write gap: product vs logical cutover by hand',
    unit: 's',
    groups: scales.map((scale) => {
      const mine = report.ratios.filter((r) => r.scale === scale);
      const bytes =
        report.anchors.find((a) => a.scale === scale)?.databaseBytes ?? report.runs.find((r) => r.scale === scale)?.databaseBytes ?? 0;
      return {
        label: `${formatBytes(bytes)} (scale ${scale})`,
        bars: [
          ...mine.map((r) => ({ name: r.method, value: r.productGapMs / 1000 })),
          { name: 'by hand (logical)', value: (mine[0]?.anchorGapMs ?? NaN) / 1000 },
        ],
      };
    }),
  });
}

export function cutoverMarkdown(report: CutoverReport, chart: string): string {
  const { methods, scales, intervalMs } = report.options;
  return [
    `### Cutover vs a logical cutover by hand (\`npm run bench -- cutover --methods ${methods.join(',')} --scales ${scales.join(',')}\`)`,
    '',
    `The application writing every ${intervalMs} ms; per size one source database, migrated by each method to a fresh target and, under the same load, cut over by hand (publication, subscription with copy_data, catch-up, the same freeze, drain to the source's LSN, setval, drop the subscription, repoint).`,
    '',
    '| method | size (scale) | longest application write gap | write-freeze window | copy | lost writes |',
    '| ------ | ------------ | ----------------------------- | ------------------- | ---- | ----------- |',
    ...report.runs.map(
      (r) =>
        `| ${r.method} | ${formatBytes(r.databaseBytes)} (${r.scale}) | ${seconds(r.longestGapMs)} | ${seconds(r.freezeWindowMs)} | ${seconds(r.copyMs)} | ${r.lost} of ${r.acked} |`,
    ),
    ...report.anchors.map(
      (a) =>
        `| by hand (logical${a.ranFirst ? ', ran first' : ''}) | ${formatBytes(a.databaseBytes)} (${a.scale}) | ${seconds(a.longestGapMs)} | ${seconds(a.windowMs)} | ${seconds(a.initialCopyMs)} | ${a.lost} of ${a.acked} |`,
    ),
    '',
    '| method | scale | product gap | by-hand gap | product / by hand |',
    '| ------ | ----- | ----------- | ----------- | ----------------- |',
    ...report.ratios.map(
      (r) => `| ${r.method} | ${r.scale} | ${seconds(r.productGapMs)} | ${seconds(r.anchorGapMs)} | ${times(r.ratio)} |`,
    ),
    '',
    ...report.anchors.map(
      (a) =>
        `By hand at scale ${a.scale}: schema ${seconds(a.schemaMs)}, initial copy ${seconds(a.initialCopyMs)}, catch-up ${seconds(a.catchUpMs)}; after the freeze the subscriber had received the source's LSN in ${seconds(a.drainReceivedMs)} and confirmed it flushed in ${seconds(a.drainMs)}, of a ${seconds(a.windowMs)} window.`,
    ),
    '',
    `![cutover chart](${chart})`,
    '',
    ...OVERHEAD_HEAD,
    ...report.runs.map((r) => overheadRow(`${r.method}, scale ${r.scale}`, r.overhead)),
    '',
    machineLine(report.machine),
    '',
  ].join('\n');
}

/** `text` with what lies between the two marker lines replaced by `body`; the markers appended at `fallbackBefore` (or the end) when absent. */
export function replaceBetweenMarkers(text: string, start: string, end: string, body: string, fallbackBefore?: string): string {
  const block = `${start}\n${body.trimEnd()}\n${end}`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i >= 0 && j > i) return text.slice(0, i) + block + text.slice(j + end.length);
  const at = fallbackBefore ? text.indexOf(fallbackBefore) : -1;
  if (at >= 0) return `${text.slice(0, at)}${block}\n\n${text.slice(at)}`;
  return `${text.trimEnd()}\n\n${block}\n`;
}
