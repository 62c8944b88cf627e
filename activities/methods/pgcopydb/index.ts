/**
 * The `pgcopydb` method: pgcopydb's parallel copy of the snapshot a new replication slot exported
 * (snapshot-copy.ts), then native logical replication from that slot. From the subscription on it is
 * the `logical` method (watch, drain to the marker, stop, drop): only its start (a subscription
 * without a copy or a slot of its own) and its leftovers on the worker differ.
 *
 * `snapshotCopy` is also what `logical` runs with `replication.initialCopy: pgcopydb`.
 */
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { TableInventory } from '../../../contract/plan';
import type { ActivityContext, CdcArgs } from '../../context';
import type { TargetBaseline } from '../../database/target-reset';
import { workDir } from '../../names';
import { copyStepProgress, progressReporter } from '../../progress';
import { ProgressMeter } from '../../../contract/progress';
import { sizeInBytes } from '../dump-restore/pgcopydb-clone';
import { logicalMethod } from '../logical';
import type { ReplicationMethod } from '../method';
import { dropLegacyFollow } from './legacy';
import type { PgcopydbRun } from './names';
import { copyFromNewSlot, removeCopyLeftovers, type SnapshotCopyResult } from './snapshot-copy';

export type SnapshotCopyArgs = CdcArgs & {
  jobs: number;
  baseline: TargetBaseline;
  tables: TableInventory[];
  /**
   * `copy.splitTablesLargerThan`. Absent (the default): no table is copied in parts; pgcopydb 0.10 reads
   * each part with a WHERE on the key, which measured slower than one COPY per table (426 MB: 4.3 s
   * unsplit, 5.0 s split at 100 MB), as for dump-restore's copy.
   */
  splitTablesLargerThan?: string;
};

/** The copy's run: its endpoints, this worker's work dir for it, its parallelism. */
async function runOf(
  { endpoints }: ActivityContext,
  args: CdcArgs & { jobs?: number; splitTablesLargerThan?: string },
): Promise<PgcopydbRun> {
  const [sourceUrl, targetUrl] = await endpoints(args);
  const jobs = Math.max(1, args.jobs ?? 2);
  return {
    migrationId: args.migrationId,
    sourceUrl,
    targetUrl,
    workDir: path.join(workDir(args.migrationId), 'pgcopydb'),
    tableJobs: jobs,
    splitTablesLargerThan: args.splitTablesLargerThan ? sizeInBytes(args.splitTablesLargerThan) : 0,
  };
}

/** The copy of a new slot's snapshot, heartbeating its progress (tables and bytes done, rate, ETA). */
export async function snapshotCopy(context: ActivityContext, args: SnapshotCopyArgs): Promise<SnapshotCopyResult> {
  const ctx = Context.current();
  const reporter = progressReporter(context.deps);
  const meter = new ProgressMeter('snapshot-copy', 'bytes');
  return copyFromNewSlot(await runOf(context, args), {
    tables: args.tables,
    baseline: args.baseline,
    signal: ctx.cancellationSignal,
    onProgress: (p) => reporter.beat(copyStepProgress(meter, p, `pgcopydb ${p.stage}`), p),
  });
}

/** This worker's files of a snapshot copy and any pgcopydb of it still running here (none: nothing). */
export async function removeSnapshotCopy(context: ActivityContext, args: CdcArgs): Promise<string[]> {
  return removeCopyLeftovers(await runOf(context, args));
}

export function pgcopydbMethod(context: ActivityContext): ReplicationMethod {
  const logical = logicalMethod(context);
  return {
    ...logical,
    /** The subscription streams from the slot whose snapshot pgcopydb copied: no copy, no slot of its own. */
    start: (args) => logical.start!({ ...args, initialCopy: 'pgcopydb' }),

    /** What a migration begun on pgcopydb 0.10's follow left (the copy's own files go for every method: see removeSnapshotCopy). */
    dropOwn: (args) => context.both(args, (s, t) => dropLegacyFollow(s, t, args.migrationId)),
  };
}
