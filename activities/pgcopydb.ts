/**
 * The pgcopydb method (Heroku's tool for its own fleet move): pgcopydb copies the source in parallel
 * and replays its changes (logical decoding with wal2json) until the sentinel's endpos. Pure
 * functions over *resolved* URLs; the activity wrappers forward `onProgress` to Context.heartbeat
 * and pass the activity's cancellation signal.
 *
 * Found with real runs of pgcopydb 0.10 (Debian 12) and worked around here:
 * - Needs on the source: wal_level=logical, a REPLICATION role that may CREATE in the database (it
 *   creates the schema `pgcopydb` with the table `sentinel`), wal2json installed and, on PostgreSQL
 *   15.19+, listed in `output_plugin_libraries`. On the target: EXECUTE on the
 *   pg_replication_origin_* functions (RDS grants them to rds_superuser).
 * - Names: the slot (source cluster) and the replication origin (target cluster) are cluster-wide,
 *   so both are derived from the migration id (`pgcopydbNames`); the sentinel is always
 *   `pgcopydb.sentinel` in the source database (0.10 cannot rename it): one source database carries
 *   one pgcopydb migration at a time.
 * - Connection strings travel in PGCOPYDB_SOURCE_PGURI / PGCOPYDB_TARGET_PGURI (pgcopydb gives its
 *   pg_dump / pg_restore children the URI without the password): no password in any argv.
 * - PGOPTIONS `-c default_transaction_read_only=off`: pgcopydb writes its sentinel on the source
 *   (LSNs, endpos, apply) and must keep doing so after the caller froze the source with
 *   `default_transaction_read_only` (a client option beats database and role defaults).
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
 *   we kill pgcopydb before it does, repair the files and resume.
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
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, readdirSync, readFileSync, type WriteStream } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { Client, type ClientConfig } from 'pg';
import { listUserSchemas } from './inventory';
import { connect, describeUrl, qi, terminateByApplicationName, withClient } from './pg';
import { onStderrLines, pgBinary } from './processes';
import { redact } from './secrets';
import { resetTargetToBaseline, type TargetBaseline } from './target-reset';

export interface PgcopydbRun {
  migrationId: string;
  sourceUrl: string;
  targetUrl: string;
  /** Owned by this module: pgcopydb's own --dir is `<workDir>/pgcopydb`, CDC files included. */
  workDir: string;
  tableJobs: number;
  indexJobs: number;
  /**
   * What the target held before the migration (preflight's baseline), restored when a run has to
   * start over. Without it, the first attempt records the target as it found it in the work dir.
   */
  baseline?: TargetBaseline;
}

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

export interface PgcopydbNames {
  /** Logical replication slot on the source cluster. */
  slotName: string;
  /** Replication origin on the target cluster. */
  origin: string;
  /** application_name of every pgcopydb session (prefix match finds the leftovers of a killed run). */
  applicationName: string;
  /** Schema and table pgcopydb 0.10 creates in the source database (fixed names). */
  sentinel: 'pgcopydb.sentinel';
}

/** Slot and origin names are [a-z0-9_], at most 63 bytes; the hash keeps sanitized ids apart. */
export function pgcopydbNames(migrationId: string): PgcopydbNames {
  const hash = createHash('sha256').update(migrationId).digest('hex').slice(0, 8);
  const clean = migrationId
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 40);
  const name = `pgmig_${clean ? `${clean}_` : ''}${hash}`;
  return {
    slotName: name,
    origin: name,
    applicationName: `pgmig-${migrationId}`.slice(0, 50) + '-pgcopydb',
    sentinel: 'pgcopydb.sentinel',
  };
}

/** Our own sessions: a name that the prefix of pgcopydb's (terminated on retries) does not match. */
function adminAppName(run: PgcopydbRun, role: 'admin' | 'status' | 'cli' | 'slot'): string {
  return `pgmig-${run.migrationId}`.slice(0, 50) + `-pgc-${role}`;
}

function pgcopydbDir(run: PgcopydbRun): string {
  return path.join(run.workDir, 'pgcopydb');
}

/** pgcopydb's output of every attempt of this run (redacted). */
export function logFile(run: PgcopydbRun): string {
  return path.join(run.workDir, 'pgcopydb.log');
}

/** The --dir of the `pgcopydb clone` (its own: two pgcopydb processes cannot share a work dir). */
function cloneDir(run: PgcopydbRun): string {
  return path.join(run.workDir, 'clone');
}

function baselineFile(run: PgcopydbRun): string {
  return path.join(run.workDir, 'target-baseline.json');
}

/** pgcopydb runs its pg_dump / pg_restore from PATH: the newest installed PostgreSQL binaries first. */
function pgBinDir(): string | undefined {
  const dump = pgBinary('pg_dump');
  return path.isAbsolute(dump) ? path.dirname(dump) : undefined;
}

function pgcopydbEnv(run: PgcopydbRun): NodeJS.ProcessEnv {
  const bin = pgBinDir();
  const names = pgcopydbNames(run.migrationId);
  return {
    PATH: [bin, process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'].filter(Boolean).join(':'),
    LANG: 'C.UTF-8',
    HOME: run.workDir,
    TMPDIR: run.workDir,
    XDG_DATA_HOME: run.workDir,
    PGCOPYDB_SOURCE_PGURI: run.sourceUrl,
    PGCOPYDB_TARGET_PGURI: run.targetUrl,
    PGAPPNAME: names.applicationName,
    PGCONNECT_TIMEOUT: '10',
    // The sentinel is written on the source even after the caller froze it (see the header).
    PGOPTIONS: '-c default_transaction_read_only=off',
  };
}

const PGCOPYDB = process.env.PGCOPYDB_BIN || 'pgcopydb';

function spawnFailure(err: unknown): Error {
  if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
    return ApplicationFailure.nonRetryable(
      `${PGCOPYDB} is not installed on this worker (Debian: apt-get install pgcopydb postgresql-15-wal2json)`,
      'PgcopydbMissing',
    );
  }
  return err as Error;
}

/** Errors that no retry can fix: said plainly, non-retryable. */
const FATAL_PATTERNS: { re: RegExp; why: string }[] = [
  {
    re: /may not be used as an output plugin|could not access file "wal2json"/,
    why: 'the source cannot decode with wal2json (install it, e.g. Debian postgresql-15-wal2json, and on PostgreSQL 15.19+ add it to output_plugin_libraries)',
  },
  {
    re: /permission denied for function pg_replication_origin/,
    why: 'the target role may not use replication origins (grant EXECUTE on pg_replication_origin_* functions; on RDS use a member of rds_superuser)',
  },
  {
    re: /must be superuser or replication role|permission denied to create replication slot|must have REPLICATION/,
    why: 'the source role lacks the REPLICATION attribute',
  },
  {
    re: /logical decoding requires wal_level >= logical|wal_level must be set to "logical"/,
    why: 'the source does not have wal_level=logical',
  },
  { re: /password authentication failed|no pg_hba.conf entry/, why: 'a connection was rejected' },
];

interface ProcessOutcome {
  code: number | null;
  tail: string[];
}

/**
 * A pgcopydb command that finishes quickly (sentinel create / set, transform). It gets a scratch
 * TMPDIR of its own: without --dir, pgcopydb writes its pid file into $TMPDIR/pgcopydb, which is the
 * running follow's work dir, and then fails now and then without a word.
 */
async function pgcopydbCommand(run: PgcopydbRun, args: string[], signal?: AbortSignal): Promise<ProcessOutcome> {
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'pgmig-pgcopydb-cli-'));
  try {
    return await pgcopydbCommandIn(run, args, scratch, signal);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** The same, tried up to 3 times: the sentinel commands are idempotent, and 0.10 crashes on a lost connection. */
async function pgcopydbCommandRetrying(run: PgcopydbRun, args: string[], signal?: AbortSignal): Promise<ProcessOutcome> {
  for (let attempt = 1; ; attempt++) {
    const out = await pgcopydbCommand(run, args, signal);
    if (out.code === 0 || attempt >= 3 || signal?.aborted) return out;
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function pgcopydbCommandIn(run: PgcopydbRun, args: string[], scratch: string, signal?: AbortSignal): Promise<ProcessOutcome> {
  // Its own application_name: a concurrent (re)start terminates the sessions of pgcopydb's by name.
  const env = { ...pgcopydbEnv(run), TMPDIR: scratch, HOME: scratch, XDG_DATA_HOME: scratch, PGAPPNAME: adminAppName(run, 'cli') };
  const child = spawn(PGCOPYDB, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const tail: string[] = [];
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) tail.push(redact(line));
    while (tail.length > 20) tail.shift();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const onAbort = () => child.kill('SIGTERM');
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', (err) => reject(spawnFailure(err)));
      child.on('close', resolve);
    });
    if (code !== 0) tail.push(`(exit code ${code}${child.signalCode ? `, signal ${child.signalCode}` : ''})`);
    return { code, tail };
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

function failure(what: string, tail: string[]): ApplicationFailure {
  const text = tail.join('\n');
  for (const f of FATAL_PATTERNS) {
    if (f.re.test(text)) return ApplicationFailure.nonRetryable(`${what}: ${f.why}: ${lastErrors(tail)}`, 'PgcopydbPrerequisite');
  }
  return ApplicationFailure.retryable(`${what}: ${lastErrors(tail) || '(no error output)'}`, 'PgcopydbFailed');
}

function lastErrors(tail: string[]): string {
  const errors = tail.filter((l) => /\b(ERROR|FATAL)\b|^\(exit code/.test(l));
  return redact(
    (errors.length ? errors : tail)
      .slice(-4)
      .map((l) => l.replace(/^\d\d:\d\d:\d\d \d+ /, ''))
      .join(' | '),
  );
}

// ---------------------------------------------------------------------------------------------
// Leftovers of a previous attempt

/** The pid pgcopydb recorded in its work dir, if that process is still a pgcopydb of this run. */
/** The pid a pgcopydb of this run recorded in `dir`, if that process is still running here. */
function livePgcopydbPid(dir: string): number | undefined {
  const file = path.join(dir, 'pgcopydb.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (!cmdline.some((a) => a.endsWith('pgcopydb')) || !cmdline.includes(dir)) return undefined;
    return pid;
  } catch {
    return undefined; // not running (or not on this host)
  }
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig); // pgcopydb and its sub-processes (we start it as a group leader)
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

async function waitExit(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every pgcopydb process on this host whose command line names one of this run's directories. */
function strayPgcopydbPids(run: PgcopydbRun): number[] {
  const dirs = [pgcopydbDir(run), cloneDir(run)];
  const pids: number[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return pids; // no procfs: the pid files are all we have
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (args.some((a) => a.endsWith('pgcopydb')) && args.some((a) => dirs.includes(a))) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** Stops the pgcopydb processes of this run left by a killed worker on this host (they do not die with their parent). */
async function stopPreviousPgcopydb(run: PgcopydbRun): Promise<boolean> {
  let stopped = false;
  for (const dir of [pgcopydbDir(run), cloneDir(run)]) {
    const pid = livePgcopydbPid(dir);
    if (pid === undefined) continue;
    stopped = true;
    signalGroup(pid, 'SIGTERM');
    if (!(await waitExit(pid, 10_000))) {
      signalGroup(pid, 'SIGKILL');
      await waitExit(pid, 5_000);
    }
  }
  // Sub-processes whose leader is gone (a SIGKILLed leader does not take its children along).
  for (const pid of strayPgcopydbPids(run)) {
    stopped = true;
    signalGroup(pid, 'SIGKILL');
    await waitExit(pid, 5_000);
  }
  return stopped;
}

async function writableSession(client: Client): Promise<void> {
  // The source may be frozen (default_transaction_read_only) by the time we clean up.
  await client.query('SET default_transaction_read_only = off');
}

interface SourceState {
  slotExists: boolean;
  slotActivePid: number | null;
  sentinel?: SentinelRow;
}

interface SentinelRow {
  startpos: string;
  endpos: string;
  apply: boolean;
  write_lsn: string;
  flush_lsn: string;
  replay_lsn: string;
}

async function readSentinel(client: Client): Promise<SentinelRow | undefined> {
  const exists = await client.query(`SELECT to_regclass('pgcopydb.sentinel') IS NOT NULL AS e`);
  if (!exists.rows[0].e) return undefined;
  const res = await client.query(
    'SELECT startpos::text, endpos::text, apply, write_lsn::text, flush_lsn::text, replay_lsn::text FROM pgcopydb.sentinel LIMIT 1',
  );
  return res.rows[0] as SentinelRow | undefined;
}

async function sourceState(client: Client, names: PgcopydbNames): Promise<SourceState> {
  const slot = await client.query('SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [names.slotName]);
  return { slotExists: (slot.rowCount ?? 0) > 0, slotActivePid: slot.rows[0]?.active_pid ?? null, sentinel: await readSentinel(client) };
}

async function originExists(client: Client, origin: string): Promise<boolean> {
  const res = await client.query('SELECT 1 FROM pg_replication_origin WHERE roname = $1', [origin]);
  return (res.rowCount ?? 0) > 0;
}

/** Drops the slot, retrying while its walsender (just terminated) lets go of it. */
async function dropSlot(client: Client, names: PgcopydbNames): Promise<boolean> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    await terminateByApplicationName(client, names.applicationName);
    const slot = await client.query('SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [names.slotName]);
    if (!slot.rowCount) return false;
    const pid = slot.rows[0].active_pid as number | null;
    if (pid !== null) await client.query('SELECT pg_terminate_backend($1)', [pid]).catch(() => undefined);
    try {
      await client.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [names.slotName]);
      return true;
    } catch (err) {
      // 55006: slot is active for another PID (its walsender is still exiting)
      if ((err as { code?: string }).code !== '55006' || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function dropOrigin(client: Client, names: PgcopydbNames): Promise<boolean> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    await terminateByApplicationName(client, names.applicationName);
    if (!(await originExists(client, names.origin))) return false;
    try {
      await client.query('SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname = $1', [names.origin]);
      return true;
    } catch (err) {
      // 55006: replication origin is in use by a session that is still exiting
      if ((err as { code?: string }).code !== '55006' || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function dropSentinel(client: Client): Promise<boolean> {
  const had = await client.query(`SELECT to_regclass('pgcopydb.sentinel') IS NOT NULL AS e`);
  await client.query('DROP TABLE IF EXISTS pgcopydb.sentinel');
  // The schema is pgcopydb's; leave it if someone put something else in it.
  await client.query(`DO $$ BEGIN DROP SCHEMA IF EXISTS pgcopydb; EXCEPTION WHEN dependent_objects_still_exist THEN NULL; END $$`);
  return had.rows[0].e as boolean;
}

function label(kind: 'source' | 'target', url: string): string {
  return `${kind} (${describeUrl(url)})`;
}

// ---------------------------------------------------------------------------------------------
// Public API

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

export interface PgcopydbStatus {
  /** True once the clone is done and pgcopydb applies changes (its sentinel's apply flag). */
  streaming: boolean;
  /** The sentinel exists (pgcopydb set up CDC on the source). */
  setUp: boolean;
  slotExists: boolean;
  /** Whether a walsender is reading the slot right now. */
  slotActive: boolean;
  startpos?: string;
  /** 0/0 or the startpos until someone set it. */
  endpos?: string;
  /** Received (written to the CDC files) and flushed, as pgcopydb reports them. */
  writeLsn?: string;
  flushLsn?: string;
  /** Commit LSN of the last source transaction applied on the target: the replication origin's progress, updated atomically with the apply. */
  appliedLsn?: string;
  /** The furthest of appliedLsn and the sentinel's replay_lsn (pgcopydb's own report, every 10 s). */
  replayLsn?: string;
  /** pg_current_wal_lsn() on the source and the bytes of WAL not yet applied on the target. */
  currentLsn: string;
  lagBytes?: number;
}

/** Reads the sentinel (source), the slot (source) and the origin's progress (target). Read-only. */
export async function pgcopydbStreaming(run: PgcopydbRun): Promise<PgcopydbStatus> {
  const names = pgcopydbNames(run.migrationId);
  const src = await withClient(run.sourceUrl, { label: 'source', applicationName: adminAppName(run, 'status') }, async (c) => {
    const state = await sourceState(c, names);
    const lsn = await c.query('SELECT pg_current_wal_lsn()::text AS lsn');
    return { ...state, currentLsn: lsn.rows[0].lsn as string };
  });
  const originLsn = await withClient(run.targetUrl, { label: 'target', applicationName: adminAppName(run, 'status') }, async (c) => {
    if (!(await originExists(c, names.origin))) return undefined;
    const res = await c.query('SELECT pg_replication_origin_progress($1, true)::text AS lsn', [names.origin]);
    return (res.rows[0]?.lsn as string | null) ?? undefined;
  });
  const s = src.sentinel;
  const replayLsn = maxLsn(originLsn, s && s.replay_lsn !== '0/0' ? s.replay_lsn : undefined);
  const lagBytes = s?.apply && replayLsn ? Math.max(0, lsnToNumber(src.currentLsn) - lsnToNumber(replayLsn)) : undefined;
  return {
    streaming: s?.apply === true,
    setUp: s !== undefined,
    slotExists: src.slotExists,
    slotActive: src.slotActivePid !== null,
    startpos: s?.startpos,
    endpos: s?.endpos,
    writeLsn: s?.write_lsn,
    flushLsn: s?.flush_lsn,
    appliedLsn: originLsn,
    replayLsn,
    currentLsn: src.currentLsn,
    lagBytes,
  };
}

const LSN_RE = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;

export function lsnToNumber(lsn: string): number {
  const [hi, lo] = lsn.split('/');
  return parseInt(hi!, 16) * 2 ** 32 + parseInt(lo!, 16);
}

function maxLsn(a?: string, b?: string): string | undefined {
  if (!a) return b;
  if (!b) return a;
  return lsnToNumber(a) >= lsnToNumber(b) ? a : b;
}

/**
 * Sets the sentinel endpos (`pgcopydb stream sentinel set endpos <lsn>`): the follow stops once
 * everything committed before `lsn` is applied, and `runCloneFollow` returns. Works on a frozen
 * source and from any worker (SQL on the source through the pgcopydb CLI).
 */
export async function setEndpos(run: PgcopydbRun, lsn: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
  if (!LSN_RE.test(lsn)) throw ApplicationFailure.nonRetryable(`setEndpos: "${lsn}" is not an LSN (like 0/16B3748)`, 'BadLsn');
  // Idempotent: a lost connection (0.10 may even crash on it) is tried again at once.
  for (let attempt = 1; ; attempt++) {
    const out = await pgcopydbCommand(run, ['stream', 'sentinel', 'set', 'endpos', lsn], opts.signal);
    if (out.code === 0) return;
    if (out.tail.some((l) => /relation "pgcopydb.sentinel" does not exist/.test(l))) {
      throw ApplicationFailure.retryable(
        `setEndpos: pgcopydb has not set up its sentinel on ${label('source', run.sourceUrl)} yet`,
        'PgcopydbNotStarted',
      );
    }
    if (attempt >= 3 || opts.signal?.aborted) throw failure('pgcopydb stream sentinel set endpos', out.tail);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The target as the first attempt found it: what a restart puts it back to. */
async function targetBaseline(run: PgcopydbRun, client: Client): Promise<TargetBaseline> {
  if (run.baseline) return run.baseline;
  if (existsSync(baselineFile(run))) return JSON.parse(await readFile(baselineFile(run), 'utf8')) as TargetBaseline;
  const extensions = (await client.query('SELECT extname FROM pg_extension ORDER BY 1')).rows.map((r) => r.extname as string);
  const largeObjects = Number((await client.query('SELECT count(*) AS n FROM pg_largeobject_metadata')).rows[0].n);
  const baseline: TargetBaseline = { schemas: await listUserSchemas(client), extensions, largeObjects };
  await writeFile(baselineFile(run), JSON.stringify(baseline), { mode: 0o600 });
  return baseline;
}

/** Written when a follow failed: its next attempt starts over instead of resuming again. */
function followFailedMarker(run: PgcopydbRun): string {
  return path.join(pgcopydbDir(run), 'pgmig-follow-failed');
}

/** Whether an SQL change file is whole: empty, or ending with a complete COMMIT line (missing counts as whole). */
async function sqlComplete(file: string): Promise<boolean> {
  if (!existsSync(file)) return true;
  const sql = await readFile(file, 'utf8');
  if (sql.length === 0) return true;
  const lines = sql.split('\n');
  const last = lines[lines.length - 2] ?? '';
  if (!sql.endsWith('\n') || !/^COMMIT;/.test(last)) return false;
  try {
    JSON.parse(last.replace(/^COMMIT; -- /, ''));
    return true;
  } catch {
    return false;
  }
}

/** The highest commit LSN of the complete transactions in a JSON change file. */
async function lastCommitIn(file: string): Promise<number> {
  let max = 0;
  for (const line of (await readFile(file, 'utf8')).split('\n')) {
    const lsn = /^\{"action":"C".*?"lsn":"([0-9A-Fa-f]+\/[0-9A-Fa-f]+)"/.exec(line)?.[1];
    if (lsn) max = Math.max(max, lsnToNumber(lsn));
  }
  return max;
}

/**
 * The lines of a JSON change file worth resuming from: whole transactions only (a SIGKILL leaves a
 * torn line or a transaction without its COMMIT), and none that committed at or before `after` (a
 * re-stream appends transactions again).
 */
function wholeTransactions(content: string, after: number): { kept: string[]; orphans: number } {
  // Every element but the last of split('\n') is a complete line (the last one is '' or torn).
  const kept: string[] = [];
  let orphans = 0;
  let block: string[] | undefined;
  let blockCommit = 0;
  let maxCommit = after;
  for (const line of content.split('\n').slice(0, -1)) {
    const m = /^\{"action":"(\w)".*?"lsn":"([0-9A-Fa-f]+\/[0-9A-Fa-f]+)"/.exec(line);
    const action = m?.[1];
    if (action === 'B') {
      block = [line]; // a previous BEGIN without its COMMIT is dropped: the server sends it again
      blockCommit = lsnToNumber(m![2]!);
    } else if (action === 'C' && block) {
      block.push(line);
      if (blockCommit > maxCommit) {
        kept.push(...block);
        maxCommit = blockCommit;
      } // else: already written once (a reconnect streamed it again)
      block = undefined;
    } else if (block) {
      block.push(line);
    } else if (action && /^[IUDTC]$/.test(action)) {
      orphans += 1; // a change or COMMIT whose BEGIN is nowhere: this file cannot be resumed from
    } else {
      kept.push(line); // outside a transaction (pgcopydb's own markers, e.g. the SWITCH "X")
    }
  }
  return { kept, orphans };
}

const xidOf = (line: string): string | undefined => /^\{"action":"\w","xid":(\d+)/.exec(line)?.[1];

/**
 * 0.10 writes a message into the file of the WAL segment it comes from: a transaction whose first
 * record is in segment N and whose COMMIT is in N+1 has its BEGIN (and early changes) appended to
 * N's file after the segment switch, and the rest in N+1's. pgcopydb's running transform keeps that
 * transaction in memory; a transform in a new process (after a resume) meets a COMMIT without its
 * BEGIN ("Failed to setup replication origin transaction at origin LSN 0/0"). We move such a
 * transaction's lines from the end of `previous` to just before the rest of it in `current`.
 * Returns whether `current` changed.
 */
async function stitchTransactions(previous: string, current: string): Promise<boolean> {
  const prevLines = (await readFile(previous, 'utf8')).split('\n');
  const tail = prevLines.pop() ?? ''; // '' or a torn line
  const open = new Map<string, number>(); // xid -> index of its BEGIN, for transactions without COMMIT here
  prevLines.forEach((line, i) => {
    const action = /^\{"action":"(\w)"/.exec(line)?.[1];
    const xid = xidOf(line);
    if (action === 'B' && xid) open.set(xid, i);
    else if (action === 'C' && xid) open.delete(xid);
  });
  if (!open.size) return false;
  let curLines = (await readFile(current, 'utf8')).split('\n');
  const moved = new Set<number>();
  for (const [xid, begin] of open) {
    const at = curLines.findIndex((l) => xidOf(l) === xid);
    if (at < 0) continue; // its COMMIT is further on (or never came): leave it
    const lines = prevLines.filter((l, i) => i >= begin && xidOf(l) === xid);
    prevLines.forEach((l, i) => i >= begin && xidOf(l) === xid && moved.add(i));
    curLines = [...curLines.slice(0, at), ...lines, ...curLines.slice(at)];
  }
  if (!moved.size) return false;
  await writeFile(current, curLines.join('\n'));
  await writeFile(previous, [...prevLines.filter((_, i) => !moved.has(i)), tail].join('\n'));
  return true;
}

/**
 * Makes the CDC files of a killed pgcopydb resumable (0.10 does not do it itself). pgcopydb resumes
 * streaming after the last message of the newest JSON file (the `latest` link), appending to it;
 * the server then skips every transaction that committed before that point. So the newest file must
 * end with a whole transaction: a SIGKILL leaves a torn line ("Failed to parse JSON message") or a
 * transaction without its COMMIT, which the resumed stream would then never complete ("logical
 * message xid is X, which is different from the current transaction xid"). We cut the newest file
 * after its last whole transaction (dropping newer files that hold none) and re-point `latest`; an
 * older JSON file whose SQL is missing or torn (killed during the transform) is transformed again.
 */
export async function repairCdcForResume(run: PgcopydbRun): Promise<{ ok: true } | { ok: false; why: string }> {
  const cdc = path.join(pgcopydbDir(run), 'cdc');
  if (!existsSync(cdc)) return { ok: false, why: 'the work dir holds no prefetched changes (another host, or removed)' };
  const jsonFiles = (await readdir(cdc)).filter((f) => /^[0-9A-F]{24}\.json$/.test(f)).sort();
  const sqlOf = (json: string) => path.join(cdc, json.replace(/\.json$/, '.sql'));
  for (;;) {
    const latest = jsonFiles[jsonFiles.length - 1];
    if (!latest) return { ok: false, why: 'no prefetched change file holds a complete transaction' };
    const latestPath = path.join(cdc, latest);
    const previous = jsonFiles[jsonFiles.length - 2];
    if (previous && (await stitchTransactions(path.join(cdc, previous), latestPath))) await rm(sqlOf(latest), { force: true });
    const after = previous ? await lastCommitIn(path.join(cdc, previous)) : 0;
    const content = await readFile(latestPath, 'utf8');
    const { kept, orphans } = wholeTransactions(content, after);
    if (orphans) return { ok: false, why: `${latest} holds changes of a transaction whose BEGIN is lost` };
    if (!kept.some((l) => l.startsWith('{"action":"C"'))) {
      // Nothing whole in it: nothing of it was applied either. Resume from the file before.
      await rm(latestPath, { force: true });
      await rm(sqlOf(latest), { force: true });
      jsonFiles.pop();
      continue;
    }
    const repaired = kept.map((l) => l + '\n').join('');
    if (repaired !== content || !(await sqlComplete(sqlOf(latest)))) {
      if (repaired !== content) await writeFile(latestPath, repaired);
      await rm(sqlOf(latest), { force: true }); // transformed again when the receiver closes the file
    }
    const link = path.join(cdc, 'latest');
    await rm(link, { force: true });
    await symlink(latestPath, link);
    break;
  }
  for (const [i, json] of jsonFiles.slice(0, -1).entries()) {
    const sqlPath = sqlOf(json);
    const previous = jsonFiles[i - 1];
    if (previous && (await stitchTransactions(path.join(cdc, previous), path.join(cdc, json)))) await rm(sqlPath, { force: true });
    if (existsSync(sqlPath) && (await sqlComplete(sqlPath))) continue;
    const out = await pgcopydbCommand(run, ['stream', 'transform', path.join(cdc, json), `${sqlPath}.tmp`]);
    if (out.code !== 0) return { ok: false, why: `pgcopydb stream transform ${json} failed: ${lastErrors(out.tail)}` };
    await rename(`${sqlPath}.tmp`, sqlPath);
  }
  return { ok: true };
}

/**
 * The commit LSN of the last transaction with changes that committed before `endpos`, read from the
 * prefetched JSON files (newest first). pgcopydb's receiver writes every transaction that committed
 * before endpos in full; undefined when none has changes.
 */
async function lastCommitBefore(run: PgcopydbRun, endpos: string): Promise<string | undefined> {
  const cdc = path.join(pgcopydbDir(run), 'cdc');
  if (!existsSync(cdc)) return undefined;
  const end = lsnToNumber(endpos);
  const files = (await readdir(cdc)).filter((f) => /^[0-9A-F]{24}\.json$/.test(f)).sort();
  const read = async (f: string | undefined) => (f ? (await readFile(path.join(cdc, f), 'utf8')).split('\n') : []);
  for (let i = files.length - 1; i >= 0; i--) {
    // A transaction may begin in the file before (see stitchTransactions): read both, in order, and
    // take the COMMITs of this one.
    const before = await read(files[i - 1]);
    const lines = await read(files[i]);
    const withChanges = new Set<string>();
    let best: number | undefined;
    let bestLsn: string | undefined;
    [...before, ...lines].forEach((line, n) => {
      const action = /^\{"action":"(\w)"/.exec(line)?.[1];
      const xid = xidOf(line);
      if (!action || !xid) return;
      if (action === 'I' || action === 'U' || action === 'D' || action === 'T') withChanges.add(xid);
      else if (action === 'C' && n >= before.length && withChanges.has(xid)) {
        const lsn = /"lsn":"([0-9A-Fa-f]+\/[0-9A-Fa-f]+)"/.exec(line)?.[1];
        if (lsn && lsnToNumber(lsn) < end && (best === undefined || lsnToNumber(lsn) > best)) {
          best = lsnToNumber(lsn);
          bestLsn = lsn;
        }
      }
    });
    if (bestLsn) return bestLsn;
  }
  return undefined;
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
    // The sentinel stays: the caller may have set endpos already (runAttempt resets the rest of it).
    if (src.sentinel) await source.query('UPDATE pgcopydb.sentinel SET apply = false');
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

/** A consistent start: the slot made over the replication protocol exports the snapshot to copy with. */
interface SlotSnapshot {
  lsn: string;
  snapshot: string;
  /** Holds the exported snapshot: open until the copy has imported it everywhere. */
  connection: Client;
}

/**
 * pgcopydb 0.10 exports its snapshot first and creates the slot afterwards with
 * pg_create_logical_replication_slot(): transactions that commit in between are neither copied nor
 * streamed (the tests lost writes there). We create the slot first, over the replication protocol
 * with EXPORT_SNAPSHOT, create the sentinel ourselves and hand the snapshot to pgcopydb
 * (`--snapshot`; `--resume --not-consistent` makes it accept an existing slot and sentinel).
 */
async function createSlotWithSnapshot(run: PgcopydbRun): Promise<SlotSnapshot> {
  const names = pgcopydbNames(run.migrationId);
  const connection = new Client({
    connectionString: run.sourceUrl,
    replication: 'database',
    application_name: adminAppName(run, 'slot'),
    connectionTimeoutMillis: 10_000,
  } as ClientConfig & { replication: string });
  connection.on('error', () => undefined);
  try {
    await connection.connect();
    const res = await connection.query(`CREATE_REPLICATION_SLOT ${qi(names.slotName)} LOGICAL "wal2json" EXPORT_SNAPSHOT`);
    const row = res.rows[0] as { consistent_point: string; snapshot_name: string };
    return { lsn: row.consistent_point, snapshot: row.snapshot_name, connection };
  } catch (err) {
    await connection.end().catch(() => undefined);
    throw failure('creating the replication slot', [redact((err as Error).message)]);
  }
}

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

/** One pgcopydb process (a group leader: its sub-processes are signalled with it), logging to the run's log. */
interface Pgcopydb {
  args: string[];
  exited: Promise<number | null>;
  stop: (sig: NodeJS.Signals) => void;
  tail: string[];
}

function startPgcopydb(run: PgcopydbRun, args: string[], log: WriteStream, onLine: (line: string) => void): Pgcopydb {
  const child = spawn(PGCOPYDB, args, { env: pgcopydbEnv(run), stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  log.write(`---- ${new Date().toISOString()} pgcopydb ${args.join(' ')}\n`);
  const tail: string[] = [];
  let killTimer: NodeJS.Timeout | undefined;
  onStderrLines(child, (raw) => {
    if (!raw.trim()) return;
    const line = redact(raw);
    if (!log.writableEnded) log.write(line + '\n');
    tail.push(line);
    if (tail.length > 40) tail.shift();
    onLine(line);
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', (err) => reject(spawnFailure(err)));
    // 'exit', not 'close': sub-processes that outlive the leader keep its stderr pipe open.
    child.on('exit', (code) => {
      if (killTimer) clearTimeout(killTimer);
      // Sub-processes that outlived the leader share its process group.
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
      resolve(code);
    });
  });
  const stop = (sig: NodeJS.Signals) => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    signalGroup(child.pid, sig);
    if (sig === 'SIGTERM' && !killTimer) killTimer = setTimeout(() => child.pid !== undefined && signalGroup(child.pid, 'SIGKILL'), 10_000);
  };
  return { args, exited, stop, tail };
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
      // The apply met a transaction split across two change files (see stitchTransactions): a
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
      const startpos = slot.lsn;
      const reset = await withClient(run.sourceUrl, { label: 'source', applicationName: adminAppName(run, 'admin') }, async (c) => {
        await writableSession(c);
        if (!(await readSentinel(c))) return false;
        // A start-over keeps the endpos someone may have set meanwhile; the rest starts again.
        await c.query(
          `UPDATE pgcopydb.sentinel SET startpos = $1, apply = false, write_lsn = '0/0', flush_lsn = '0/0', replay_lsn = '0/0'`,
          [startpos],
        );
        return true;
      });
      if (!reset) {
        const sentinel = await pgcopydbCommandRetrying(run, ['stream', 'sentinel', 'create', '--startpos', startpos]);
        if (sentinel.code !== 0) throw failure('pgcopydb stream sentinel create', sentinel.tail);
      }
      await writeFile(path.join(run.workDir, 'filters.ini'), FILTERS);
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
          path.join(run.workDir, 'filters.ini'),
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
    await Promise.all([follow?.exited, clone?.exited].map((p) => p?.catch(() => undefined)));
    log.end();
  }
}
