/** The anchors' own copies, with the client programs as an operator would run them by hand. */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { libpqEnv } from '../activities/database/pg';
import { onStderrLines, pgBinary, runProgram } from '../activities/processes';
import { redact } from '../activities/secrets';

async function inScratchDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgmig-bench-anchor-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface DumpRestoreTiming {
  dumpMs: number;
  restoreMs: number;
}

/** `pg_dump -Fd -j N` of the source, then `pg_restore -j N --no-owner --no-acl` into the (empty) target; `schemaOnly` for a schema. */
export async function dumpAndRestore(
  sourceUrl: string,
  targetUrl: string,
  opts: { jobs: number; schemaOnly?: boolean },
): Promise<DumpRestoreTiming> {
  return inScratchDir(async (dir) => {
    const dump = path.join(dir, 'dump');
    const only = opts.schemaOnly ? ['--schema-only'] : [];
    const started = Date.now();
    await runProgram(pgBinary('pg_dump'), ['--format=directory', `--jobs=${opts.jobs}`, '--no-sync', ...only, `--file=${dump}`], {
      env: libpqEnv(sourceUrl, 'bench-anchor-dump'),
    });
    const dumped = Date.now();
    const target = libpqEnv(targetUrl, 'bench-anchor-restore');
    await runProgram(
      pgBinary('pg_restore'),
      ['--format=directory', `--jobs=${opts.jobs}`, '--no-owner', '--no-acl', '--exit-on-error', `--dbname=${target.PGDATABASE}`, dump],
      { env: target },
    );
    return { dumpMs: dumped - started, restoreMs: Date.now() - dumped };
  });
}

export const PGCOPYDB_BIN = process.env.PGCOPYDB_BIN || '/usr/bin/pgcopydb';

/** A bare `pgcopydb clone --table-jobs N --index-jobs N --no-owner --no-acl` (no follow) into the (empty) target. */
export async function pgcopydbClone(sourceUrl: string, targetUrl: string, jobs: number): Promise<void> {
  await inScratchDir(async (dir) => {
    const args = [
      'clone',
      '--dir',
      path.join(dir, 'clone'),
      '--table-jobs',
      String(jobs),
      '--index-jobs',
      String(jobs),
      '--no-owner',
      '--no-acl',
    ];
    const child = spawn(PGCOPYDB_BIN, args, {
      env: {
        PATH: [path.dirname(pgBinary('pg_dump')), process.env.PATH].filter(Boolean).join(':'),
        LANG: 'C.UTF-8',
        HOME: dir,
        TMPDIR: dir,
        XDG_DATA_HOME: dir,
        PGCOPYDB_SOURCE_PGURI: sourceUrl,
        PGCOPYDB_TARGET_PGURI: targetUrl,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const tail: string[] = [];
    onStderrLines(child, (line) => {
      tail.push(line);
      if (tail.length > 10) tail.shift();
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    if (code !== 0) throw new Error(redact(`pgcopydb clone exited with ${code}: ${tail.join(' | ')}`));
  });
}
