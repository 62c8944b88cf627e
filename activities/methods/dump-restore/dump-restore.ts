/**
 * The copy of the dump-restore method: `pg_dump -Fd -j N` of the frozen source, then
 * `pg_restore -j N --no-owner --no-acl` into the target, heartbeating progress.
 *
 * Idempotent: a retry (say, after the worker was killed) first ends the previous attempt's sessions
 * by application_name, puts the target back to its preflight baseline, and reuses a dump only if
 * it was completed by an attempt of the same workflow run (the source has been frozen since, so it is
 * still the current data; a dump another run left on this host is not). A retry on another host, or
 * after the dump was removed, dumps again.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { countUserObjects } from '../../database/inventory';
import { libpqEnv, terminateByApplicationName, withClient } from '../../database/pg';
import { appName, workDir } from '../../names';
import { pgBinary, runProgram } from '../../processes';
import { resetTargetToBaseline, type TargetBaseline } from '../../database/target-reset';

export interface CopyProgress {
  stage: 'preparing' | 'dump' | 'restore' | 'done';
  tablesDone: number;
  tablesTotal: number;
  dumpBytes: number;
  elapsedMs: number;
  attempt: number;
}

export interface DumpRestoreResult {
  dumpMs: number;
  restoreMs: number;
  dumpBytes: number;
  reusedDump: boolean;
  resetBeforeRestore: boolean;
}

async function directoryBytes(dir: string): Promise<number> {
  if (!existsSync(dir)) return 0;
  let total = 0;
  for (const entry of await readdir(dir)) total += (await stat(path.join(dir, entry))).size;
  return total;
}

/**
 * What a previous attempt left is ended first: its pg_dump / pg_restore / pgcopydb sessions (they may
 * still run on a dead worker's host), then the target back to its preflight baseline. True when the
 * target had to be reset.
 */
export async function startOver(args: { migrationId: string; sourceUrl: string; targetUrl: string; baseline: TargetBaseline }) {
  await withClient(args.sourceUrl, { label: 'source', applicationName: appName(args.migrationId, 'admin') }, async (c) => {
    await terminateByApplicationName(c, appName(args.migrationId, 'dump'));
    await terminateByApplicationName(c, appName(args.migrationId, 'copy'));
  });
  return withClient(args.targetUrl, { label: 'target', applicationName: appName(args.migrationId, 'admin') }, async (c) => {
    await terminateByApplicationName(c, appName(args.migrationId, 'restore'));
    await terminateByApplicationName(c, appName(args.migrationId, 'copy'));
    if ((await countUserObjects(c)) === 0) return false;
    await resetTargetToBaseline(c, args.baseline);
    return true;
  });
}

/**
 * The dump's table-data items by id (`pg_restore -l`: "3350; 0 16400 TABLE DATA public accounts owner"),
 * matched against the known tables (names may hold spaces, so the list line alone is ambiguous).
 */
async function tableDataItems(dumpDir: string, env: NodeJS.ProcessEnv, tables: { schema: string; name: string }[]) {
  const items = new Map<string, { schema: string; name: string }>();
  await runProgram(pgBinary('pg_restore'), ['--list', dumpDir], {
    env,
    stdout: (line) => {
      const m = /^(\d+); \d+ \d+ TABLE DATA (.*)$/.exec(line);
      const table = m && tables.find((t) => m[2].startsWith(`${t.schema} ${t.name} `));
      if (table) items.set(m[1], table);
    },
  });
  return items;
}

export async function dumpRestore(args: {
  migrationId: string;
  sourceUrl: string;
  targetUrl: string;
  jobs: number;
  tablesTotal: number;
  baseline: TargetBaseline;
  /** The tables whose data may be reported in as the restore goes (parallel restores report each item). */
  tables?: { schema: string; name: string }[];
  onTableCopied?: (t: { schema: string; name: string }) => void;
  /** Progress goes here instead of into this activity's heartbeats (the caller heartbeats more than the copy). */
  onProgress?: (p: CopyProgress) => void;
}): Promise<DumpRestoreResult> {
  const ctx = Context.current();
  const started = Date.now();
  const progress: CopyProgress = {
    stage: 'preparing',
    tablesDone: 0,
    tablesTotal: args.tablesTotal,
    dumpBytes: 0,
    elapsedMs: 0,
    attempt: ctx.info.attempt,
  };
  const beat = () => (args.onProgress ?? ((p: CopyProgress) => ctx.heartbeat(p)))({ ...progress, elapsedMs: Date.now() - started });
  beat();
  const timer = setInterval(beat, 1000);
  try {
    const dir = workDir(args.migrationId);
    const dumpDir = path.join(dir, 'dump');
    const marker = `${dumpDir}.complete`;

    const resetBeforeRestore = await startOver(args);

    const jobs = String(args.jobs);
    // The marker names the run that completed the dump: only that run's source freeze covers it.
    const runId = ctx.info.workflowExecution?.runId;
    const reusedDump = !!runId && existsSync(marker) && (await readFile(marker, 'utf8').catch(() => '')) === `run ${runId}`;
    const dumpStarted = Date.now();
    if (!reusedDump) {
      await rm(marker, { force: true });
      await rm(dumpDir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true, mode: 0o700 });
      progress.stage = 'dump';
      const sizer = setInterval(
        () =>
          void directoryBytes(dumpDir)
            .then((b) => (progress.dumpBytes = b))
            .catch(() => undefined),
        1000,
      );
      try {
        await runProgram(pgBinary('pg_dump'), ['--format=directory', `--jobs=${jobs}`, '--no-sync', '--verbose', `--file=${dumpDir}`], {
          env: libpqEnv(args.sourceUrl, appName(args.migrationId, 'dump')),
          signal: ctx.cancellationSignal,
          onLine: (line) => {
            if (/dumping contents of table|finished item \d+ TABLE DATA/.test(line)) progress.tablesDone += 1;
          },
        });
      } finally {
        clearInterval(sizer);
      }
      if (runId) await writeFile(marker, `run ${runId}`);
    }
    const dumpMs = Date.now() - dumpStarted;
    progress.dumpBytes = await directoryBytes(dumpDir);

    progress.stage = 'restore';
    progress.tablesDone = 0;
    const restoreEnv = libpqEnv(args.targetUrl, appName(args.migrationId, 'restore'));
    const items = args.onTableCopied ? await tableDataItems(dumpDir, restoreEnv, args.tables ?? []) : new Map<string, never>();
    const restoreStarted = Date.now();
    await runProgram(
      pgBinary('pg_restore'),
      [
        '--format=directory',
        `--jobs=${jobs}`,
        '--no-owner',
        '--no-acl',
        '--exit-on-error',
        '--verbose',
        `--dbname=${libpqEnv(args.targetUrl, '').PGDATABASE}`,
        dumpDir,
      ],
      {
        env: restoreEnv,
        signal: ctx.cancellationSignal,
        onLine: (line) => {
          if (/finished item \d+ TABLE DATA|processing data for table/.test(line)) progress.tablesDone += 1;
          const finished = /finished item (\d+) TABLE DATA/.exec(line);
          const table = finished && items.get(finished[1]);
          if (table) args.onTableCopied?.(table);
        },
      },
    );
    const restoreMs = Date.now() - restoreStarted;
    progress.stage = 'done';
    beat();
    // The dump holds customer data: keep it no longer than needed.
    await rm(dir, { recursive: true, force: true });
    return { dumpMs, restoreMs, dumpBytes: progress.dumpBytes, reusedDump, resetBeforeRestore };
  } finally {
    clearInterval(timer);
  }
}
