/**
 * The freeze-copy with its verification inside it: the copy engine (pgcopydb clone, or pg_dump and
 * pg_restore) runs while the overlapping verification fingerprints the frozen source at once and each
 * target table as soon as its data is in. Heartbeats carry both: percent of the bytes, rate, time left,
 * tables copied and verified.
 *
 * Idempotent: every attempt starts over (sessions and processes of an earlier attempt ended, the target
 * back to its baseline, pgcopydb's work directory made anew); the source has been frozen throughout.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { CopyEngine } from '../../../contract/input';
import type { TableInventory } from '../../../contract/plan';
import { openPool, verificationFailure } from '../../database/activities';
import type { CatalogOptions } from '../../database/catalog';
import { connect, withClient } from '../../database/pg';
import type { TargetBaseline } from '../../database/target-reset';
import type { VerificationReport } from '../../database/verify';
import { VerificationDuringCopy } from '../../database/verify-during-copy';
import { HEARTBEAT_EVERY_MS } from '../../heartbeat';
import type { ActivityDeps } from '../../context';
import { progressReporter } from '../../progress';
import { ProgressMeter } from '../../../contract/progress';
import { appName, workDir } from '../../names';
import { killProcessesWithArgument } from '../../processes';
import { copyUnloggedTables } from '../cdc/window-copy';
import type { CopyProgress } from '../method';
import { dumpRestore, startOver } from './dump-restore';
import { resolveEngine, tablesBytes } from './engine';
import { pgcopydbClone, sizeInBytes } from './pgcopydb-clone';

export interface FreezeCopyResult {
  engine: 'pgcopydb' | 'pg-dump';
  /** From the start of the copy to its end. */
  copyMs: number;
  /** How long the verification went on after the copy ended (the rest ran during it). */
  verifyAfterCopyMs: number;
  bytes: number;
  report: VerificationReport;
}

export interface FreezeCopyProgress extends CopyProgress {
  engine: 'pgcopydb' | 'pg-dump';
  stage: 'preparing' | 'copying' | 'verifying the last tables' | 'done';
  tablesVerified: number;
  elapsedMs: number;
}

export async function copyAndVerify(
  args: {
    migrationId: string;
    sourceUrl: string;
    targetUrl: string;
    jobs: number;
    engine: CopyEngine;
    splitTablesLargerThan?: string;
    tables: TableInventory[];
    baseline: TargetBaseline;
    /** What the catalog comparison covers (catalog.ts): ownership and grants off by default. */
    catalog?: CatalogOptions;
  },
  deps?: Pick<ActivityDeps, 'signalWorkflow'>,
): Promise<FreezeCopyResult> {
  const ctx = Context.current();
  const reporter = progressReporter(deps);
  const meter = new ProgressMeter('copy', 'bytes');
  const bytesTotal = tablesBytes(args.tables);
  const engine = resolveEngine(args.engine, bytesTotal);
  const started = Date.now();
  const progress: FreezeCopyProgress = {
    engine,
    stage: 'preparing',
    tablesDone: 0,
    tablesTotal: args.tables.filter((t) => !t.partitioned).length,
    tablesVerified: 0,
    bytesDone: 0,
    bytesTotal,
    rows: 0,
    percent: 0,
    bytesPerSecond: 0,
    etaSeconds: null,
    elapsedMs: 0,
  };
  let copyStarted = started;
  const beat = () => {
    const elapsed = Date.now() - copyStarted;
    progress.elapsedMs = Date.now() - started;
    progress.bytesPerSecond = elapsed > 0 ? Math.round((progress.bytesDone / elapsed) * 1000) : 0;
    const { bytesDone, bytesTotal } = progress;
    progress.percent = bytesTotal > 0 ? Math.min(100, Math.round((bytesDone / bytesTotal) * 1000) / 10) : 0;
    const left = Math.max(0, bytesTotal - bytesDone);
    progress.etaSeconds = progress.stage === 'done' ? 0 : progress.bytesPerSecond > 0 ? Math.round(left / progress.bytesPerSecond) : null;
    const stage = progress.stage === 'copying' ? '' : `; ${progress.stage}`;
    reporter.beat(
      meter.measure({
        done: bytesDone,
        total: bytesTotal,
        percent: progress.stage === 'done' ? 100 : progress.percent,
        detail: `${engine}, ${args.jobs} jobs: ${progress.tablesDone}/${progress.tablesTotal} tables copied, ${progress.tablesVerified} verified${stage}`,
      }),
      progress,
    );
  };
  beat();
  const timer = setInterval(beat, HEARTBEAT_EVERY_MS);
  const dir = path.join(workDir(args.migrationId), 'pgcopydb');
  try {
    if (engine === 'pgcopydb') {
      // A dead worker's pgcopydb on this host would go on writing into the target being reset.
      await killProcessesWithArgument(dir);
      await startOver(args);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true, mode: 0o700 });
    }
    // The verification's sessions: half the copy's jobs per side (at least one), beside the copy's.
    const size = Math.max(1, Math.ceil(args.jobs / 2));
    const opts = (label: string) => ({ label, applicationName: appName(args.migrationId, 'verify') });
    const sources = await openPool(() => connect(args.sourceUrl, opts('source')), size);
    const targets = await openPool(() => connect(args.targetUrl, opts('target')), size, sources);
    try {
      const verifier = new VerificationDuringCopy(
        sources,
        targets,
        args.tables,
        (done) => (progress.tablesVerified = done),
        args.catalog,
      ).start();
      progress.tablesTotal = verifier.total;
      progress.stage = 'copying';
      copyStarted = Date.now();
      let bytes: number;
      try {
        if (engine === 'pgcopydb') {
          // pgcopydb 0.10 creates UNLOGGED tables but copies none of their rows: they are copied after it,
          // and verified only then.
          const unlogged = args.tables.filter((t) => t.unlogged && !t.partitioned);
          const isUnlogged = (t: { schema: string; name: string }) => unlogged.some((u) => u.schema === t.schema && u.name === t.name);
          const cloned = await pgcopydbClone({
            sourceUrl: args.sourceUrl,
            targetUrl: args.targetUrl,
            dir,
            jobs: args.jobs,
            splitTablesLargerThan: args.splitTablesLargerThan ? sizeInBytes(args.splitTablesLargerThan) : 0,
            tables: args.tables,
            applicationName: appName(args.migrationId, 'copy'),
            signal: ctx.cancellationSignal,
            onTableCopied: (t) => {
              if (!isUnlogged(t)) verifier.tableCopied(t.schema, t.name);
            },
            // pgcopydb's own sizes (table data only) once it has them: the plan's count indexes too.
            onProgress: (p) =>
              Object.assign(progress, {
                tablesDone: p.tablesDone,
                bytesDone: p.bytesDone,
                bytesTotal: p.bytesTotal || progress.bytesTotal,
              }),
          });
          if (unlogged.length) {
            const copy = (label: string) => ({ label, applicationName: appName(args.migrationId, 'copy') });
            await withClient(args.sourceUrl, copy('source'), (source) =>
              withClient(args.targetUrl, copy('target'), (target) => copyUnloggedTables(source, target, unlogged)),
            );
            for (const t of unlogged) verifier.tableCopied(t.schema, t.name);
          }
          bytes = cloned.bytesDone;
        } else {
          const dumped = await dumpRestore({
            ...args,
            tablesTotal: verifier.total,
            onTableCopied: (t) => {
              verifier.tableCopied(t.schema, t.name);
              progress.tablesDone += 1;
              progress.bytesDone += args.tables.find((x) => x.schema === t.schema && x.name === t.name)?.bytes ?? 0;
            },
            // The dump is most of the work before any table is restored: its bytes count as half the way.
            onProgress: (p) => {
              if (p.stage === 'dump') progress.bytesDone = Math.min(progress.bytesTotal / 2, p.dumpBytes / 2);
            },
          });
          bytes = dumped.dumpBytes;
        }
      } catch (err) {
        verifier.abandon();
        throw err;
      }
      const copyMs = Date.now() - copyStarted;
      progress.bytesDone = progress.bytesTotal;
      progress.tablesDone = progress.tablesTotal;
      progress.stage = 'verifying the last tables';
      const copyEnded = Date.now();
      const report = await verifier.finish();
      progress.stage = 'done';
      beat();
      if (!report.ok) throw verificationFailure(report);
      return { engine, copyMs, verifyAfterCopyMs: Date.now() - copyEnded, bytes, report };
    } finally {
      await Promise.all([...sources, ...targets].map((c) => c.end().catch(() => undefined)));
    }
  } finally {
    clearInterval(timer);
    // pgcopydb's work directory holds the schema dump: no longer than needed.
    if (engine === 'pgcopydb') await rm(dir, { recursive: true, force: true });
  }
}
