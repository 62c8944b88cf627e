/**
 * The pgcopydb method (Heroku's tool for its own fleet move): pgcopydb copies the source in parallel
 * and replays its changes (logical decoding with wal2json) until the sentinel's endpos. Pure
 * functions over *resolved* URLs; the activity wrappers forward `onProgress` to Context.heartbeat
 * and pass the activity's cancellation signal.
 *
 * This module runs the clone and the follow and is the method's one entry point (it re-exports
 * what callers use from the others). The rest, one module per responsibility:
 * - `names`: the run, the slot / origin / session names derived from the migration id, the work dir;
 * - `process`: spawning, stopping and reading pgcopydb (environment, errors, leftovers);
 * - `catalog`: slot and sentinel on the source, replication origin and baseline on the target, status;
 * - `cdc`: repair of the change files of a killed run, and the last transaction before endpos;
 * - `lsn`: LSN arithmetic.
 *
 * Found with real runs of pgcopydb 0.10 (Debian 12) and worked around here:
 * - Needs on the source: wal_level=logical, a REPLICATION role that may CREATE in the database (it
 *   creates the schema `pgcopydb` with the table `sentinel`), wal2json installed and, on PostgreSQL
 *   15.19+, listed in `output_plugin_libraries`. On the target: EXECUTE on the
 *   pg_replication_origin_* functions (RDS grants them to rds_superuser).
 * - `clone --follow` is not consistent: it exports its snapshot *before* creating the slot with
 *   pg_create_logical_replication_slot(), so writes committed in between are lost; and with an
 *   existing slot it needs `--resume --not-consistent`, whose table copies ignore `--snapshot`
 *   (writes applied twice). So: slot over the replication protocol with EXPORT_SNAPSHOT, sentinel,
 *   `pgcopydb follow --resume` (prefetch) alongside `pgcopydb clone --snapshot` (no --follow), then
 *   the sentinel's apply switched on (see `runAttempt`).
 * - The follow polls the sentinel every 10 s and applies one WAL-segment file at a time (a file is
 *   transformed to SQL when its segment is complete or endpos is reached): on a quiet source nothing
 *   reaches the target before endpos, and endpos -> exit takes 10-20 s.
 * - endpos: the receiver stops at the first message at or past endpos (the BEGIN of the next
 *   transaction) and the transform drops that unfinished transaction, so when the receiver learned
 *   endpos before streaming past it, the apply waits forever. We watch: once the receiver is done and
 *   the target applied the last transaction before endpos, we stop pgcopydb ourselves.
 * - A dropped replication connection makes the receiver stream again from the slot and append what
 *   it had already written (every transaction since applied twice): on "Streaming got interrupted"
 *   we kill pgcopydb before it does, repair the files (`cdc`) and resume.
 * - A dead sub-process neither stops nor fails pgcopydb (`follow` may even exit 0): any
 *   "process N has terminated [non-zero]" fails the attempt.
 * - Sequences are copied at clone time only (the workflow reconciles them); UNLOGGED tables arrive
 *   empty (not even copied at clone time); large objects are copied at clone time only; DDL is not
 *   replayed. Slot, origin and sentinel stay after exit: `cleanupPgcopydb` removes them.
 *
 * Retries (`prepare`): a run whose clone had completed (sentinel apply = true) and whose work dir
 * (with the prefetched change files) is still here resumes with `pgcopydb follow --resume`: the last
 * JSON file is cut after its last whole transaction (a SIGKILL leaves a torn line, and 0.10's resume
 * then fails or skips a transaction) and deduplicated, missing or torn SQL files are transformed
 * again. A run interrupted before its clone completed, or whose follow failed by itself, starts over:
 * stray pgcopydb processes stopped, slot, origin, sentinel and work dir dropped, the target reset to
 * its baseline. A retry on another host (no work dir) starts over too.
 */
import { createWriteStream, existsSync } from 'node:fs';
import { appendFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/common';
import { connect, terminateByApplicationName, withClient } from '../../database/pg';
import { redact } from '../../secrets';
import { resetTargetToBaseline } from '../../database/target-reset';
import {
  createSlotWithSnapshot,
  dropOrigin,
  dropSentinel,
  dropSlot,
  originExists,
  pgcopydbStreaming,
  sourceState,
  startSentinel,
  stopSentinelApply,
  targetBaseline,
  writableSession,
  type SlotSnapshot,
} from './catalog';
import { lastCommitBefore, repairCdcForResume } from './cdc';
import { lsnToNumber } from './lsn';
import {
  adminAppName,
  baselineFile,
  cloneDir,
  filtersFile,
  followFailedMarker,
  label,
  logFile,
  pgcopydbDir,
  pgcopydbNames,
  type PgcopydbRun,
} from './names';
import { failure, lastErrors, pgcopydbCommandRetrying, startPgcopydb, stopPreviousPgcopydb, type Pgcopydb } from './process';

export { pgcopydbStreaming, setEndpos, type PgcopydbStatus } from './catalog';
export { repairCdcForResume } from './cdc';
export { lsnToNumber } from './lsn';
export { logFile, pgcopydbNames, type PgcopydbNames, type PgcopydbRun } from './names';

export type PgcopydbPhase = 'starting' | 'restarting' | 'clone' | 'follow' | 'done';

export interface PgcopydbProgress {
  phase: PgcopydbPhase;
  /** The last meaningful pgcopydb log line (redacted), e.g. the STEP or the file being applied. */
  detail?: string;
  /** How this attempt started: from scratch, resuming the follow, or over after an interrupted clone. */
  mode: StartMode;
  elapsedMs: number;
}

export type StartMode = 'fresh' | 'resume-follow' | 'restart';

/** pgcopydb's own schema (the sentinel) is never copied. */
const FILTERS = '[exclude-schema]\npgcopydb\n';

interface AttemptOutcome {
  /**
   * Stopped on purpose, to resume after a repair of the change files: the replication connection
   * dropped (0.10 would re-stream and apply twice), or the apply met a transaction split across files.
   */
  reconnect: boolean;
  lastError?: string;
}

interface ProgressState {
  mode: StartMode;
  phase: PgcopydbPhase;
  detail?: string;
}

/**
 * Runs pgcopydb's clone and follow until the follow has applied everything before the sentinel's
 * endpos (see `setEndpos`), resuming the follow after an interruption when it can (see the header).
 * Throws a retryable ApplicationFailure when pgcopydb fails, a non-retryable one for missing
 * prerequisites, and the signal's reason when aborted (every pgcopydb process is stopped).
 */
export async function runCloneFollow(
  run: PgcopydbRun,
  opts: { signal?: AbortSignal; onProgress?: (p: PgcopydbProgress) => void; progressIntervalMs?: number } = {},
): Promise<{ mode: StartMode; elapsedMs: number; attempts: number }> {
  const started = Date.now();
  const state: ProgressState = { mode: 'fresh', phase: 'starting', detail: undefined };
  const emit = () => opts.onProgress?.({ phase: state.phase, detail: state.detail, mode: state.mode, elapsedMs: Date.now() - started });
  const report = (p: PgcopydbPhase, d: string) => {
    state.phase = p;
    state.detail = d;
    emit();
  };
  emit();
  const aborted = () => opts.signal?.reason ?? ApplicationFailure.retryable('pgcopydb was stopped (activity cancelled)', 'Cancelled');
  const timer = setInterval(emit, opts.progressIntervalMs ?? 2_000);
  let firstMode: StartMode | undefined;
  try {
    for (let attempt = 1; ; attempt++) {
      if (opts.signal?.aborted) throw aborted();
      state.mode = await prepare(run, report);
      firstMode ??= state.mode;
      const outcome = await runAttempt(run, state, report, opts.signal, aborted);
      if (!outcome.reconnect) {
        report('done', state.detail ?? 'endpos reached');
        return { mode: firstMode, elapsedMs: Date.now() - started, attempts: attempt };
      }
      if (attempt >= 5) {
        throw ApplicationFailure.retryable(
          `pgcopydb had to be stopped and resumed 5 times in a row; last: ${outcome.lastError ?? '-'}`,
          'PgcopydbFailed',
        );
      }
      state.detail =
        'pgcopydb stopped to repair its change files (a dropped replication connection, or a transaction split across files); resuming';
    }
  } finally {
    clearInterval(timer);
  }
}

/**
 * One attempt. From scratch (fresh / restart), three steps instead of 0.10's `clone --follow`:
 * 1. the slot, created over the replication protocol with EXPORT_SNAPSHOT, and the sentinel
 *    (apply off): 0.10's own `clone --follow` exports its snapshot *before* it creates the slot, so
 *    transactions committed in between were neither copied nor streamed (the tests lost writes), and
 *    its `--snapshot` is ignored by the table copies once `--resume --not-consistent` (which an
 *    existing slot requires) is given, which applied changes twice;
 * 2. `pgcopydb follow --resume --not-consistent` prefetches from the slot while
 *    `pgcopydb clone --snapshot` copies exactly that snapshot;
 * 3. once the clone exited 0, the snapshot is released and the sentinel's apply switched on.
 * Resuming (resume-follow) is step 2's follow alone, over the repaired CDC files.
 */
async function runAttempt(
  run: PgcopydbRun,
  state: ProgressState,
  report: (phase: PgcopydbPhase, detail: string) => void,
  signal: AbortSignal | undefined,
  aborted: () => unknown,
): Promise<AttemptOutcome> {
  const names = pgcopydbNames(run.migrationId);
  const resume = state.mode === 'resume-follow';
  report(
    resume ? 'follow' : 'clone',
    resume ? 'resuming the follow from the slot, the origin and the prefetched changes' : 'creating the slot and its snapshot',
  );

  const log = createWriteStream(logFile(run), { flags: 'a', mode: 0o600 });
  log.on('error', () => undefined); // the log is a convenience: never a reason to fail the run
  let slot: SlotSnapshot | undefined;
  const releaseSnapshot = () => {
    void slot?.connection.end().catch(() => undefined);
    slot = undefined;
  };
  let childFailed: string | undefined;
  let prefetchDone = false;
  let catchupDone = false;
  let stoppedAtEndpos = false;
  let reconnect = false;
  let follow: Pgcopydb | undefined;
  let clone: Pgcopydb | undefined;
  const stopAll = (sig: NodeJS.Signals) => {
    follow?.stop(sig);
    clone?.stop(sig);
  };
  const onLine = (line: string) => {
    if (/Streaming got interrupted/.test(line) && !reconnect && !stoppedAtEndpos && !childFailed) {
      // In 0.10 the reconnect streams again from the slot's confirmed position and appends what it
      // had already written: every transaction since would be applied twice. Stop before it does
      // (it waits 1 s); the next attempt resumes from the files instead.
      reconnect = true;
      stopAll('SIGKILL');
    }
    if (
      /Failed to setup replication origin transaction at origin LSN 0\/0|Failed to parse SQL query/.test(line) &&
      !reconnect &&
      !stoppedAtEndpos &&
      !childFailed
    ) {
      // The apply met a transaction split across two change files (see cdc.ts, stitchTransactions): a
      // COMMIT without its BEGIN; or it read an SQL file that the transform was still writing (0.10
      // looks for the file, not for its end): a torn last line. Either way the transaction was
      // rolled back; the repair of the next attempt stitches or transforms again, and it resumes.
      reconnect = true;
      stopAll('SIGKILL');
    }
    if (/Catch-up process \d+ has terminated \[[1-9]\d*\]/.test(line) && !reconnect && !stoppedAtEndpos && !childFailed) {
      // Any other failure of the apply (0.10 also reads an SQL file that is still being written and
      // fails on its torn last line, with a syntax error this time): the failed transaction rolled
      // back and the origin says what is applied, so resuming is safe; a real, lasting error
      // (a constraint on the target, say) comes back and ends the run after a few attempts.
      reconnect = true;
      stopAll('SIGKILL');
    }
    if (/Prefetch process \d+ has terminated \[0\]/.test(line)) prefetchDone = true;
    if (/Catch-up process \d+ has terminated \[0\]/.test(line)) catchupDone = true;
    // 0.10's supervisor neither stops nor fails when a sub-process dies: a dead prefetch leaves the
    // apply waiting forever, and `follow` may even exit 0. A dead sub-process fails the attempt.
    if (/\S+ process \d+ has terminated \[[1-9]\d*\]/.test(line) && !childFailed && !stoppedAtEndpos && !reconnect) {
      childFailed = line;
      stopAll('SIGTERM');
    }
    const c = classifyLine(line);
    const order: PgcopydbPhase[] = ['starting', 'restarting', 'clone', 'follow', 'done'];
    // A new phase, or a new STEP of the clone, is reported at once; other lines ride on the next beat.
    if (c.phase && order.indexOf(c.phase) >= order.indexOf(state.phase)) return report(c.phase, c.detail ?? '');
    if (c.detail) state.detail = c.detail;
  };
  // pgcopydb 0.10's receiver stops at the first message at or past endpos, which is the BEGIN of the
  // next transaction; the transform drops that unfinished transaction, so when the receiver knew
  // endpos before streaming past it (it polls the sentinel every 10 s, and re-reads it whenever it
  // starts) the apply waits forever for an LSN >= endpos. Once the receiver is done, the files hold
  // every transaction committed before endpos: when the target has applied the last one of them,
  // the run is complete and we stop pgcopydb ourselves.
  let watching = false;
  let satisfiedSince: number | undefined;
  const lastCommits = new Map<string, string | undefined>();
  const watcher = setInterval(() => {
    if (!prefetchDone || catchupDone || watching || stoppedAtEndpos || childFailed || reconnect) return;
    watching = true;
    applyState(run, lastCommits)
      .then((st) => {
        if (!st.complete) return void (satisfiedSince = undefined);
        satisfiedSince ??= Date.now();
        if (Date.now() - satisfiedSince < 3_000 || catchupDone) return; // let pgcopydb finish by itself if it can
        stoppedAtEndpos = true;
        state.detail = `applied through ${st.lastCommit ?? st.applied ?? '-'} (endpos ${st.endpos}): stopping pgcopydb, whose apply waits for the unfinished transaction at endpos`;
        if (!log.writableEnded) log.write(`---- ${new Date().toISOString()} pgmig: ${state.detail}\n`);
        follow?.stop('SIGTERM');
      })
      .catch(() => undefined)
      .finally(() => (watching = false));
  }, 1_000);
  const onAbort = () => stopAll('SIGTERM');
  signal?.addEventListener('abort', onAbort, { once: true });
  const followStarted = () => resume || state.phase === 'follow';
  // pgcopydb failed by itself (not killed by a signal, which a resume repairs): start over next time.
  const markFollowFailed = async () => {
    if (followStarted()) await writeFile(followFailedMarker(run), new Date().toISOString()).catch(() => undefined);
  };
  try {
    const common = ['--dir', pgcopydbDir(run), '--slot-name', names.slotName, '--origin', names.origin];
    if (!resume) {
      slot = await createSlotWithSnapshot(run);
      await startSentinel(run, slot.lsn);
      await writeFile(filtersFile(run), FILTERS);
    }
    follow = startPgcopydb(run, ['follow', ...common, '--resume', '--not-consistent'], log, onLine);
    if (!resume) {
      clone = startPgcopydb(
        run,
        [
          'clone',
          '--dir',
          cloneDir(run),
          '--snapshot',
          slot!.snapshot,
          '--filters',
          filtersFile(run),
          '--table-jobs',
          String(run.tableJobs),
          '--index-jobs',
          String(run.indexJobs),
          '--no-owner',
          '--no-acl',
        ],
        log,
        onLine,
      );
      const cloneCode = await Promise.race([clone.exited, follow.exited.then(() => 'follow-exited' as const)]);
      if (cloneCode !== 0) {
        stopAll('SIGTERM');
        await Promise.all([clone.exited, follow.exited]);
        if (signal?.aborted) throw aborted();
        if (reconnect) return { reconnect: true, lastError: lastErrors(follow.tail) };
        if (cloneCode === 'follow-exited')
          throw failure('pgcopydb follow stopped during the clone', [...follow.tail, ...(childFailed ? [childFailed] : [])]);
        throw failure(`pgcopydb clone exited with ${cloneCode}`, clone.tail);
      }
      releaseSnapshot(); // every copy worker imported it: the source may vacuum again
      const apply = await pgcopydbCommandRetrying(run, ['stream', 'sentinel', 'set', 'apply']);
      if (apply.code !== 0) {
        stopAll('SIGTERM');
        throw failure('pgcopydb stream sentinel set apply', apply.tail);
      }
      report('follow', 'clone done; applying the changes prefetched since its snapshot');
    }
    const code = await follow.exited;
    if (signal?.aborted) throw aborted();
    if (reconnect) return { reconnect: true, lastError: lastErrors(follow.tail) };
    if (childFailed || (code !== 0 && !stoppedAtEndpos)) {
      if (childFailed || code !== null) await markFollowFailed();
      throw failure(`pgcopydb follow ${childFailed ? 'lost a sub-process' : `exited with ${code}`}`, [
        ...follow.tail,
        ...(childFailed ? [childFailed] : []),
      ]);
    }
    const end = await applyState(run);
    if (!end.complete) {
      await markFollowFailed();
      throw ApplicationFailure.retryable(
        `pgcopydb follow exited 0 but the target misses changes before endpos (endpos ${end.endpos ?? 'unset'}, last commit ${end.lastCommit ?? '-'}, applied ${end.applied ?? 'nothing'}): ${lastErrors(follow.tail)}`,
        'PgcopydbFailed',
      );
    }
    return { reconnect: false };
  } catch (err) {
    stopAll('SIGKILL');
    if (signal?.aborted) throw aborted();
    throw err;
  } finally {
    clearInterval(watcher);
    releaseSnapshot();
    signal?.removeEventListener('abort', onAbort);
    // Both must be gone before the next attempt (or the caller's cleanup) starts; how they ended was handled above.
    for (const p of [follow, clone]) await p?.exited.catch(() => undefined);
    log.end();
  }
}

/** Log lines worth showing as progress (the rest is per-table chatter). */
function classifyLine(line: string): { phase?: PgcopydbPhase; detail?: string } {
  const msg = line.replace(/^\d\d:\d\d:\d\d \d+ +\w+ +/, '').trim();
  if (/^STEP \d+:/.test(msg)) return { phase: 'clone', detail: msg };
  if (
    /Resuming streaming at LSN|Now streaming changes to|Catching up from LSN|Replaying changes from file|Streaming got interrupted|reconnecting|Transformed JSON messages|Streaming is now finished|Applied reached end position|Report write_lsn/.test(
      msg,
    )
  ) {
    return { detail: msg };
  }
  if (/\b(ERROR|FATAL|WARN)\b/.test(line)) return { detail: msg };
  return {};
}

interface ApplyState {
  /** The sentinel's endpos, once someone set it. */
  endpos?: string;
  /** Last transaction with changes committed before endpos (from the CDC files), and what the target applied. */
  lastCommit?: string;
  applied?: string;
  complete: boolean;
}

/**
 * Whether the target has every change committed before the sentinel's endpos: the origin's progress
 * (the commit LSN of the last transaction applied) reached the last such transaction in the files.
 */
async function applyState(run: PgcopydbRun, cache?: Map<string, string | undefined>): Promise<ApplyState> {
  const status = await pgcopydbStreaming(run);
  const endpos = status.endpos && status.endpos !== '0/0' && status.endpos !== status.startpos ? status.endpos : undefined;
  if (!endpos) return { complete: false, applied: status.appliedLsn };
  // Once the receiver has stopped its files do not change: scan them once per endpos.
  if (cache && !cache.has(endpos)) cache.set(endpos, await lastCommitBefore(run, endpos));
  const lastCommit = cache ? cache.get(endpos) : await lastCommitBefore(run, endpos);
  const applied = status.appliedLsn; // not the sentinel's replay_lsn: only the origin moves with the data
  const complete = lastCommit === undefined || (applied !== undefined && lsnToNumber(applied) >= lsnToNumber(lastCommit));
  return { endpos, lastCommit, applied, complete };
}

async function appendLog(run: PgcopydbRun, line: string): Promise<void> {
  await appendFile(logFile(run), `---- ${new Date().toISOString()} ${line}\n`, { mode: 0o600 }).catch(() => undefined);
}

/** Decides how this attempt starts, and clears what cannot be reused. */
async function prepare(run: PgcopydbRun, report: (phase: PgcopydbPhase, detail: string) => void): Promise<StartMode> {
  const names = pgcopydbNames(run.migrationId);
  await stopPreviousPgcopydb(run);
  const source = await connect(run.sourceUrl, { label: 'source', applicationName: adminAppName(run, 'admin') });
  const target = await connect(run.targetUrl, { label: 'target', applicationName: adminAppName(run, 'admin') });
  try {
    await writableSession(source);
    await writableSession(target);
    // Sessions of a previous pgcopydb (its walsender holds the slot) must be gone before we start.
    await terminateByApplicationName(source, names.applicationName);
    await terminateByApplicationName(target, names.applicationName);
    const src = await sourceState(source, names);
    const hasOrigin = await originExists(target, names.origin);
    const canResume = src.sentinel?.apply && src.slotExists && hasOrigin && !existsSync(followFailedMarker(run));
    if (canResume) {
      const repair = await repairCdcForResume(run);
      if (repair.ok) return 'resume-follow';
      report('restarting', `cannot resume the follow: ${repair.why}`);
      await appendLog(run, `pgmig: cannot resume the follow: ${repair.why}`);
    }

    await mkdir(run.workDir, { recursive: true, mode: 0o700 });
    const leftovers =
      src.slotExists || src.sentinel !== undefined || hasOrigin || existsSync(pgcopydbDir(run)) || existsSync(cloneDir(run));
    if (!leftovers) {
      await targetBaseline(run, target); // recorded before anything is copied
      return 'fresh';
    }
    report('restarting', 'the previous attempt stopped before its clone completed (or lost its work dir): starting over');
    await appendLog(run, 'pgmig: starting over (slot, origin and target reset)');
    if (!run.baseline && !existsSync(baselineFile(run))) {
      // The target holds a previous attempt's partial copy and nothing says what it held before.
      throw ApplicationFailure.nonRetryable(
        `pgcopydb must start over on ${label('target', run.targetUrl)}, which holds a previous attempt's copy, but its pre-migration baseline is unknown on this worker: pass the preflight baseline`,
        'BaselineUnknown',
      );
    }
    const baseline = await targetBaseline(run, target);
    await dropSlot(source, names);
    // The sentinel stays: the caller may have set endpos already (startSentinel resets the rest of it).
    if (src.sentinel) await stopSentinelApply(source);
    await dropOrigin(target, names);
    await resetTargetToBaseline(target, baseline);
    await rm(pgcopydbDir(run), { recursive: true, force: true });
    await rm(cloneDir(run), { recursive: true, force: true });
    return 'restart';
  } finally {
    await source.end().catch(() => undefined);
    await target.end().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// Cleanup

export interface CleanupResult {
  /** What existed and was removed, e.g. "slot pgmig_x on source", "work dir /tmp/...". */
  dropped: string[];
}

/**
 * Drops everything pgcopydb left: a still-running pgcopydb of this run, its sessions, the
 * replication slot on the source, the sentinel (`pgcopydb.sentinel`, and the schema if empty), the
 * replication origin on the target, and the work dir. Idempotent; works on a frozen source.
 */
export async function cleanupPgcopydb(run: PgcopydbRun): Promise<CleanupResult> {
  const names = pgcopydbNames(run.migrationId);
  const dropped: string[] = [];
  const errors: string[] = [];
  // Every step is tried even when one fails (a retry then finishes the rest).
  const step = async (fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      errors.push(redact((err as Error).message));
    }
  };
  await step(async () => {
    if (await stopPreviousPgcopydb(run)) dropped.push('pgcopydb process');
  });
  await step(() =>
    withClient(run.sourceUrl, { label: 'source', applicationName: adminAppName(run, 'admin') }, async (c) => {
      await writableSession(c);
      if (await dropSlot(c, names)) dropped.push(`replication slot ${names.slotName} on ${label('source', run.sourceUrl)}`);
      if (await dropSentinel(c)) dropped.push(`pgcopydb.sentinel on ${label('source', run.sourceUrl)}`);
    }),
  );
  await step(() =>
    withClient(run.targetUrl, { label: 'target', applicationName: adminAppName(run, 'admin') }, async (c) => {
      await writableSession(c);
      if (await dropOrigin(c, names)) dropped.push(`replication origin ${names.origin} on ${label('target', run.targetUrl)}`);
    }),
  );
  await step(async () => {
    if (!existsSync(run.workDir)) return;
    await rm(run.workDir, { recursive: true, force: true });
    dropped.push(`work dir ${run.workDir}`);
  });
  if (errors.length) {
    throw ApplicationFailure.retryable(
      `pgcopydb cleanup incomplete (done: ${dropped.join(', ') || 'nothing'}): ${errors.join(' | ')}`,
      'PgcopydbCleanupFailed',
    );
  }
  return { dropped };
}
