/**
 * Where rehearsal reports live: one directory per migration (default `.stack/rehearsals/<migrationId>/`,
 * `PGMIG_REHEARSAL_DIR` moves the root, the rehearsal input's `reportDir` names the directory itself),
 * holding `<rehearsalId>.json`, `<rehearsalId>.md` and `phases.svg` (all rehearsals of the migration).
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { computeTrend, trendPoint, type RehearsalReport, type Trend } from '../../contract/rehearsal-report';
import type { ReportFiles } from '../../signals/rehearsal';
import { renderChart, renderMarkdown } from './render';

export const CHART_FILE = 'phases.svg';

export function defaultReportRoot(): string {
  return process.env.PGMIG_REHEARSAL_DIR ? path.resolve(process.env.PGMIG_REHEARSAL_DIR) : path.resolve(__dirname, '../.stack/rehearsals');
}

export function reportDirFor(migrationId: string, override?: string): string {
  return override ? path.resolve(override) : path.join(defaultReportRoot(), migrationId);
}

function isReport(value: unknown): value is RehearsalReport {
  const r = value as RehearsalReport;
  return !!r && r.version === 1 && typeof r.rehearsalId === 'string' && Array.isArray(r.phases);
}

/** The reports in one directory, oldest first (files that are not reports are skipped). */
export async function readReports(dir: string): Promise<RehearsalReport[]> {
  if (!existsSync(dir)) return [];
  const out: RehearsalReport[] = [];
  for (const name of await readdir(dir)) {
    if (!name.endsWith('.json')) continue;
    try {
      const parsed = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as unknown;
      if (isReport(parsed)) out.push(parsed);
    } catch {
      // a half-written or foreign file: not a report
    }
  }
  return out.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
}

/** Every report under a root: its own reports and those of its subdirectories (one per migration). */
export async function readAllReports(root: string = defaultReportRoot()): Promise<{ dir: string; report: RehearsalReport }[]> {
  if (!existsSync(root)) return [];
  const dirs = [root];
  for (const entry of await readdir(root, { withFileTypes: true })) if (entry.isDirectory()) dirs.push(path.join(root, entry.name));
  const out: { dir: string; report: RehearsalReport }[] = [];
  for (const dir of dirs) for (const report of await readReports(dir)) out.push({ dir, report });
  return out.sort((a, b) => a.report.startedAt.localeCompare(b.report.startedAt));
}

async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, text, { mode: 0o644 });
  await rename(tmp, file);
}

/**
 * Adds the trend against the earlier reports of the directory, then writes the JSON, the Markdown
 * and the chart of all rehearsals. Idempotent: a retry rewrites the same files.
 */
export async function storeReport(
  report: RehearsalReport,
  dir: string,
): Promise<{ files: ReportFiles; trend: Trend; report: RehearsalReport }> {
  await mkdir(dir, { recursive: true });
  const earlier = (await readReports(dir)).filter((r) => r.rehearsalId !== report.rehearsalId && r.migrationId === report.migrationId);
  const trend = computeTrend(trendPoint(report), earlier.map(trendPoint));
  const full: RehearsalReport = { ...report, trend };
  const files: ReportFiles = {
    dir,
    json: path.join(dir, `${report.rehearsalId}.json`),
    markdown: path.join(dir, `${report.rehearsalId}.md`),
    chart: path.join(dir, CHART_FILE),
  };
  await writeAtomic(files.json, `${JSON.stringify(full, null, 2)}\n`);
  await writeAtomic(files.markdown, renderMarkdown(full, CHART_FILE));
  await writeAtomic(files.chart, renderChart([...earlier, full]));
  return { files, trend, report: full };
}
