/**
 * A worker that runs one snapshot copy and can be SIGKILLed mid-way (test/integration/pgcopydb.test.ts):
 * its pgcopydb, a process group of its own, outlives it, and its snapshot's session dies with it, as
 * when a worker's host loses the worker. Reads the copy from PGMIG_COPY_JSON; prints progress as JSON lines.
 */
import { copyFromNewSlot, type SnapshotCopyOptions } from '../../activities/methods/pgcopydb/snapshot-copy';
import type { PgcopydbRun } from '../../activities/methods/pgcopydb/names';

const { run, tables, baseline } = JSON.parse(process.env.PGMIG_COPY_JSON ?? '{}') as {
  run: PgcopydbRun;
  tables: SnapshotCopyOptions['tables'];
  baseline: SnapshotCopyOptions['baseline'];
};

copyFromNewSlot(run, { tables, baseline, progressEveryMs: 100, onProgress: (p) => console.log(JSON.stringify(p)) }).then(
  (result) => console.log(JSON.stringify({ result })),
  (err: unknown) => {
    console.log(JSON.stringify({ error: (err as Error).message }));
    process.exitCode = 1;
  },
);
