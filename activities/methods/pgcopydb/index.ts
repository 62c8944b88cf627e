/**
 * The `pgcopydb` method: pgcopydb's clone (schema and data from a slot's exported snapshot) and its
 * follow (wal2json) as one long activity beside the workflow; the drain sets its end position and
 * waits for the shared marker. pgcopydb keeps its state in a work dir on the worker host.
 */
import { existsSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { CdcArgs, ActivityContext } from '../../context';
import type { TargetBaseline } from '../../database/target-reset';
import { workDir } from '../../names';
import { ensureMarker } from '../cdc/marker';
import { pause, type ReplicationMethod, type ReplicationState } from '../method';
import { cleanupPgcopydb, logFile, pgcopydbStreaming, runCloneFollow, setEndpos, type PgcopydbRun } from './clone-follow';
import { lastErrors } from './process';

/**
 * The errors pgcopydb logged since its current attempt started, when its log is on this worker (the
 * clone-and-follow itself fails the migration when pgcopydb cannot go on; these are what it is
 * meanwhile struggling with, for `status.replication`).
 */
async function recentLogErrors(run: PgcopydbRun): Promise<string[]> {
  const file = logFile(run);
  if (!existsSync(file)) return [];
  try {
    const { size } = await stat(file);
    const length = Math.min(size, 64 * 1024);
    const handle = await open(file, 'r');
    const buffer = Buffer.alloc(length);
    try {
      await handle.read(buffer, 0, length, size - length);
    } finally {
      await handle.close();
    }
    const lines = buffer.toString('utf8').split('\n');
    let attempt = lines.length - 1;
    while (attempt >= 0 && !/^---- \S+ pgcopydb follow /.test(lines[attempt])) attempt--;
    const errors = lastErrors(lines.slice(attempt + 1).filter((l) => /\b(ERROR|FATAL)\b/.test(l)));
    return errors ? [`pgcopydb (log on this worker): ${errors}`] : [];
  } catch {
    return []; // the log is a convenience
  }
}

export function pgcopydbMethod({ endpoints, both }: ActivityContext): ReplicationMethod {
  /** Slot and origin names come from the migration id; the work dir is this worker's. */
  const runOf = async (args: CdcArgs & { jobs?: number; baseline?: TargetBaseline }): Promise<PgcopydbRun> => {
    const [sourceUrl, targetUrl] = await endpoints(args);
    const jobs = Math.max(1, args.jobs ?? 2);
    return {
      migrationId: args.migrationId,
      sourceUrl,
      targetUrl,
      workDir: path.join(workDir(args.migrationId), 'pgcopydb-run'),
      tableJobs: jobs,
      indexJobs: jobs,
      ...(args.baseline ? { baseline: args.baseline } : {}),
    };
  };

  return {
    /** Runs until the end position the drain sets, heartbeating; a retry resumes the follow when it can (see clone-follow.ts). */
    async cloneAndFollow(args) {
      const ctx = Context.current();
      const run = await runOf(args);
      await both(args, (s) => ensureMarker(s, args.migrationId));
      return runCloneFollow(run, { signal: ctx.cancellationSignal, onProgress: (p) => ctx.heartbeat(p) });
    },

    async watch(args): Promise<ReplicationState> {
      const ctx = Context.current();
      const run = await runOf(args);
      const until = Date.now() + args.reportAfterMs;
      for (;;) {
        const s = await pgcopydbStreaming(run);
        // pgcopydb reports no per-table progress: the clone is one unit, done when it streams.
        const errors = await recentLogErrors(run);
        const state: ReplicationState = {
          tablesTotal: 1,
          tablesReady: s.streaming ? 1 : 0,
          lagBytes: s.lagBytes ?? null,
          caughtUp: s.streaming && s.lagBytes !== undefined && s.lagBytes <= args.maxLagBytes,
          ...(errors.length ? { errors: { messages: errors } } : {}),
        };
        ctx.heartbeat(state);
        if (state.caughtUp || Date.now() >= until) return state;
        await pause(500);
      }
    },

    /** pgcopydb applies its last changes only once it knows where to stop. */
    async atFinalLsn(args, lsn) {
      await setEndpos(await runOf(args), lsn);
    },

    /** It stops by itself at its end position. */
    stopInWindow: () => Promise.resolve([]),

    async dropOwn(args) {
      return (await cleanupPgcopydb(await runOf(args))).dropped;
    },
  };
}
