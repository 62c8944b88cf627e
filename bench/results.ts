/** Where the benchmarks keep their measurements: `bench/results/<kind>.json`, rendered to Markdown and SVG by `report.ts`. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as prettier from 'prettier';

export const RESULTS_DIR = path.join(__dirname, 'results');

export interface Machine {
  cores: number;
  cpuModel: string;
  /** os.loadavg() (1, 5, 15 min) when the bench started and when it ended. */
  loadAverage: { start: number[]; end: number[] };
  /** ISO time the bench started. */
  date: string;
  elapsedMs: number;
}

export function machine(loadStart: number[], startedMs: number): Machine {
  return {
    cores: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    loadAverage: { start: loadStart.map((x) => Math.round(x * 100) / 100), end: os.loadavg().map((x) => Math.round(x * 100) / 100) },
    date: new Date(startedMs).toISOString(),
    elapsedMs: Date.now() - startedMs,
  };
}

export function resultFile(kind: string): string {
  return path.join(RESULTS_DIR, `${kind}.json`);
}

/** Writes `text` to `file` as the repository's Prettier configuration formats it (so `npm run lint` stays clean). */
export async function writeFormatted(file: string, text: string): Promise<void> {
  const options = (await prettier.resolveConfig(file)) ?? {};
  const info = await prettier.getFileInfo(file);
  writeFileSync(file, info.inferredParser ? await prettier.format(text, { ...options, filepath: file }) : text);
}

export async function writeResult(report: { kind: string }): Promise<string> {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = resultFile(report.kind);
  await writeFormatted(
    file,
    JSON.stringify(report, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2),
  );
  return file;
}

export function readResult<T>(kind: string): T | undefined {
  const file = resultFile(kind);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : undefined;
}
