/**
 * The pgcopydb method (Heroku's tool for its own fleet move): `pgcopydb clone --follow` copies the
 * source in parallel and then replays its changes (logical decoding with wal2json) until the
 * sentinel's endpos is reached. Pure functions over *resolved* URLs; the activity wrappers forward
 * `onProgress` to Context.heartbeat and pass the activity's cancellation signal.
 *
 * What pgcopydb 0.10 (Debian 12) needs and does, found with real runs:
 * - Source: wal_level=logical, a REPLICATION role that may CREATE in the database (it creates the
 *   schema `pgcopydb` with the table `sentinel`), and wal2json usable as an output plugin (PostgreSQL
 *   15.19+ also wants it listed in `output_plugin_libraries`). Target: EXECUTE on the
 *   pg_replication_origin_* functions (RDS grants them to rds_superuser).
 * - Names: the slot (source cluster) and the replication origin (target cluster) are cluster-wide,
 *   so both are derived from the migration id (`pgcopydbNames`); the sentinel is always
 *   `pgcopydb.sentinel` in the source database (0.10 has no option to rename it), so one source
 *   database carries one pgcopydb migration at a time.
 * - Connection strings go through PGCOPYDB_SOURCE_PGURI / PGCOPYDB_TARGET_PGURI (pgcopydb hands the
 *   password to its pg_dump / pg_restore children through the environment too: none in argv).
 * - PGOPTIONS `-c default_transaction_read_only=off`: pgcopydb writes its sentinel on the source
 *   (write/flush/replay LSNs, endpos) and must keep doing so after the caller froze the source with
 *   `default_transaction_read_only`. A client option beats database and role defaults.
 * - The follow part polls the sentinel every 10 s, and applies changes one WAL-segment file at a
 *   time (a file is transformed to SQL when the segment is complete or endpos is reached), so
 *   nothing reaches the target between segment switches, and a set endpos takes 10-20 s to finish.
 * - After endpos, `clone --follow` copies sequence values once more (from the frozen source).
 *   UNLOGGED tables arrive empty (their data is not copied, even at clone time); large objects are
 *   copied at clone time only; DDL is not replayed. The slot, origin and sentinel stay after exit:
 *   `cleanupPgcopydb` removes them.
 *
 * Retries: a run whose clone had completed (sentinel apply = true) and whose work directory (with the
 * prefetched change files) is still here resumes with `pgcopydb follow --resume --not-consistent`:
 * the slot kept every change not yet written to those files and the origin says what was applied.
 * A run interrupted before the clone completed cannot resume consistently in 0.10 (`--resume`
 * requires `--not-consistent`: the remaining tables would be copied in a new snapshot while the slot
 * replays from the old one, applying their recent changes twice), so it starts over: the previous
 * pgcopydb is stopped, slot, origin, sentinel and work dir dropped, the target reset to its baseline.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from 'pg';
import { listUserSchemas } from './inventory';
import { connect, describeUrl, terminateByApplicationName, withClient } from './pg';
import { pgBinary } from './processes';
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

export type PgcopydbPhase = 'starting' | 'restarting' | 'clone' | 'follow' | 'sequences' | 'done';

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
  const clean = migrationId.toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 40);
  const name = `pgmig_${clean ? `${clean}_` : ''}${hash}`;
  return { slotName: name, origin: name, applicationName: `pgmig-${migrationId}`.slice(0, 50) + '-pgcopydb', sentinel: 'pgcopydb.sentinel' };
}

function pgcopydbDir(run: PgcopydbRun): string {
  return path.join(run.workDir, 'pgcopydb');
}

/** pgcopydb's output of every attempt of this run (redacted). */
export function logFile(run: PgcopydbRun): string {
  return path.join(run.workDir, 'pgcopydb.log');
}

function baselineFile(run: PgcopydbRun): string {
  return path.join(run.workDir, 'target-baseline.json');
}

/** pgcopydb runs its pg_dump / pg_restore from PATH: the newest installed PostgreSQL binaries first. */
function pgBinDir(): string | undefined {
  const dump = pgBinary('pg_dump');
  return path.isAbsolute(dump) ? path.dirname(dump) : undefined;
}

function pgcopydbEnv(run: PgcopydbRun, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
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
    ...extra,
  };
}

const PGCOPYDB = process.env.PGCOPYDB_BIN || 'pgcopydb';

/** Errors that no retry can fix: said plainly, non-retryable. */
const FATAL_PATTERNS: { re: RegExp; why: string }[] = [
  {
    re: /may not be used as an output plugin|could not access file "wal2json"/,
    why: 'the source cannot decode with wal2json (install it, e.g. Debian postgresql-15-wal2json, and on PostgreSQL 15.19+ add it to output_plugin_libraries)',
  },
  { re: /permission denied for function pg_replication_origin/, why: 'the target role may not use replication origins (grant EXECUTE on pg_replication_origin_* functions; on RDS use a member of rds_superuser)' },
  { re: /must be superuser or replication role|permission denied to create replication slot|must have REPLICATION/, why: 'the source role lacks the REPLICATION attribute' },
  { re: /logical decoding requires wal_level >= logical|wal_level must be set to "logical"/, why: 'the source does not have wal_level=logical' },
  { re: /password authentication failed|no pg_hba.conf entry/, why: 'a connection was rejected' },
];

interface ProcessOutcome {
  code: number | null;
  tail: string[];
}

/** A pgcopydb command that finishes quickly (sentinel set, stream cleanup). */
async function pgcopydbCommand(run: PgcopydbRun, args: string[], signal?: AbortSignal): Promise<ProcessOutcome> {
  const child = spawn(PGCOPYDB, args, { env: pgcopydbEnv(run), stdio: ['ignore', 'pipe', 'pipe'] });
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
      child.on('error', reject);
      child.on('close', resolve);
    });
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
  const errors = tail.filter((l) => /\b(ERROR|FATAL)\b/.test(l));
  return redact((errors.length ? errors : tail).slice(-4).map((l) => l.replace(/^\d\d:\d\d:\d\d \d+ /, '')).join(' | '));
}

// ---------------------------------------------------------------------------------------------
// Leftovers of a previous attempt

/** The pid pgcopydb recorded in its work dir, if that process is still a pgcopydb of this run. */
function livePgcopydbPid(run: PgcopydbRun): number | undefined {
  const file = path.join(pgcopydbDir(run), 'pgcopydb.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (!cmdline.some((a) => a.endsWith('pgcopydb')) || !cmdline.includes(pgcopydbDir(run))) return undefined;
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

/** Stops a pgcopydb of this run left by a killed worker on this host (it does not die with its parent). */
async function stopPreviousPgcopydb(run: PgcopydbRun): Promise<boolean> {
  const pid = livePgcopydbPid(run);
  if (pid === undefined) return false;
  signalGroup(pid, 'SIGTERM');
  if (!(await waitExit(pid, 10_000))) {
    signalGroup(pid, 'SIGKILL');
    await waitExit(pid, 5_000);
  }
  return true;
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
  if (await stopPreviousPgcopydb(run)) dropped.push('pgcopydb process');
  await withClient(run.sourceUrl, { label: 'source', applicationName: `${names.applicationName}-admin` }, async (c) => {
    await writableSession(c);
    if (await dropSlot(c, names)) dropped.push(`replication slot ${names.slotName} on ${label('source', run.sourceUrl)}`);
    if (await dropSentinel(c)) dropped.push(`pgcopydb.sentinel on ${label('source', run.sourceUrl)}`);
  });
  await withClient(run.targetUrl, { label: 'target', applicationName: `${names.applicationName}-admin` }, async (c) => {
    await writableSession(c);
    if (await dropOrigin(c, names)) dropped.push(`replication origin ${names.origin} on ${label('target', run.targetUrl)}`);
  });
  if (existsSync(run.workDir)) {
    await rm(run.workDir, { recursive: true, force: true });
    dropped.push(`work dir ${run.workDir}`);
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
  /** Source LSN applied on the target: the replication origin's progress (authoritative) or the sentinel's. */
  replayLsn?: string;
  /** pg_current_wal_lsn() on the source and the bytes of WAL not yet applied on the target. */
  currentLsn: string;
  lagBytes?: number;
}

/** Reads the sentinel (source), the slot (source) and the origin's progress (target). Read-only. */
export async function pgcopydbStreaming(run: PgcopydbRun): Promise<PgcopydbStatus> {
  const names = pgcopydbNames(run.migrationId);
  const src = await withClient(run.sourceUrl, { label: 'source', applicationName: `${names.applicationName}-status` }, async (c) => {
    const state = await sourceState(c, names);
    const lsn = await c.query('SELECT pg_current_wal_lsn()::text AS lsn');
    return { ...state, currentLsn: lsn.rows[0].lsn as string };
  });
  const originLsn = await withClient(run.targetUrl, { label: 'target', applicationName: `${names.applicationName}-status` }, async (c) => {
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
 * Sets the sentinel endpos (`pgcopydb stream sentinel set endpos <lsn>`): the follow stops once it
 * has applied everything up to `lsn` and `runCloneFollow` returns. Works on a frozen source.
 */
export async function setEndpos(run: PgcopydbRun, lsn: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
  if (!LSN_RE.test(lsn)) throw ApplicationFailure.nonRetryable(`setEndpos: "${lsn}" is not an LSN (like 0/16B3748)`, 'BadLsn');
  const out = await pgcopydbCommand(run, ['stream', 'sentinel', 'set', 'endpos', lsn], opts.signal);
  if (out.code !== 0) {
    if (out.tail.some((l) => /relation "pgcopydb.sentinel" does not exist/.test(l))) {
      throw ApplicationFailure.retryable(`setEndpos: pgcopydb has not set up its sentinel on ${label('source', run.sourceUrl)} yet`, 'PgcopydbNotStarted');
    }
    throw failure('pgcopydb stream sentinel set endpos', out.tail);
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

/** Decides how this attempt starts, and clears what cannot be reused. */
async function prepare(run: PgcopydbRun, report: (phase: PgcopydbPhase, detail: string) => void): Promise<StartMode> {
  const names = pgcopydbNames(run.migrationId);
  await stopPreviousPgcopydb(run);
  const source = await connect(run.sourceUrl, { label: 'source', applicationName: `${names.applicationName}-admin` });
  const target = await connect(run.targetUrl, { label: 'target', applicationName: `${names.applicationName}-admin` });
  try {
    await writableSession(source);
    await writableSession(target);
    // Sessions of a previous pgcopydb (its walsender holds the slot) must be gone before we start.
    await terminateByApplicationName(source, names.applicationName);
    await terminateByApplicationName(target, names.applicationName);
    const src = await sourceState(source, names);
    const hasOrigin = await originExists(target, names.origin);
    const hasCdcFiles = existsSync(path.join(pgcopydbDir(run), 'cdc'));
    if (src.sentinel?.apply && src.slotExists && hasOrigin && hasCdcFiles) return 'resume-follow';

    await mkdir(run.workDir, { recursive: true, mode: 0o700 });
    const leftovers = src.slotExists || src.sentinel !== undefined || hasOrigin || existsSync(pgcopydbDir(run));
    if (!leftovers) {
      await targetBaseline(run, target); // recorded before anything is copied
      return 'fresh';
    }
    report('restarting', 'the previous attempt stopped before its clone completed (or lost its work dir): starting over');
    const baseline = await targetBaseline(run, target);
    await dropSlot(source, names);
    await dropSentinel(source);
    await dropOrigin(target, names);
    await resetTargetToBaseline(target, baseline);
    await rm(pgcopydbDir(run), { recursive: true, force: true });
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
  if (/Updating the pgcopydb.sentinel to enable applying changes|sentinel has enabled applying changes/.test(msg)) return { phase: 'follow', detail: msg };
  if (/Resuming streaming at LSN|Now streaming changes to|Catching up from LSN|Replaying changes from file|Streaming got interrupted|reconnecting|Transformed JSON messages|Streaming is now finished|Applied reached end position|Report write_lsn/.test(msg)) {
    return { detail: msg };
  }
  if (/Fetching information for \d+ sequences|Reset sequences values/.test(msg)) return { phase: 'sequences', detail: msg };
  if (/\b(ERROR|FATAL|WARN)\b/.test(line)) return { detail: msg };
  return {};
}

/**
 * Runs `pgcopydb clone --follow` until it exits (it exits once the sentinel's endpos is applied),
 * or resumes `pgcopydb follow` after an interrupted follow (see the header for what resumes).
 * Throws a retryable ApplicationFailure when pgcopydb fails, a non-retryable one for missing
 * prerequisites, and the signal's reason when aborted (pgcopydb and its children are stopped).
 */
export async function runCloneFollow(
  run: PgcopydbRun,
  opts: { signal?: AbortSignal; onProgress?: (p: PgcopydbProgress) => void; progressIntervalMs?: number } = {},
): Promise<{ mode: StartMode; elapsedMs: number }> {
  const started = Date.now();
  const names = pgcopydbNames(run.migrationId);
  let mode: StartMode = 'fresh';
  let phase: PgcopydbPhase = 'starting';
  let detail: string | undefined;
  const emit = () => opts.onProgress?.({ phase, detail, mode, elapsedMs: Date.now() - started });
  const report = (p: PgcopydbPhase, d: string) => {
    phase = p;
    detail = d;
    emit();
  };
  emit();
  const aborted = () => opts.signal?.reason ?? ApplicationFailure.retryable('pgcopydb was stopped (activity cancelled)', 'Cancelled');
  if (opts.signal?.aborted) throw aborted();

  mode = await prepare(run, report);
  report(mode === 'resume-follow' ? 'follow' : 'clone', mode === 'resume-follow' ? 'resuming the follow from the slot and the origin' : 'starting pgcopydb clone --follow');

  const common = ['--dir', pgcopydbDir(run), '--slot-name', names.slotName, '--origin', names.origin];
  const args =
    mode === 'resume-follow'
      ? ['follow', ...common, '--resume', '--not-consistent']
      : ['clone', '--follow', ...common, '--table-jobs', String(run.tableJobs), '--index-jobs', String(run.indexJobs), '--no-owner', '--no-acl'];

  const child = spawn(PGCOPYDB, args, { env: pgcopydbEnv(run), stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  // Every attempt's log, kept with the work dir (pgcopydb masks passwords itself; we redact too).
  const log = createWriteStream(logFile(run), { flags: 'a', mode: 0o600 });
  log.write(`---- ${new Date().toISOString()} pgcopydb ${args.join(' ')} (mode ${mode})\n`);
  const tail: string[] = [];
  let buffered = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const raw of lines) {
      if (!raw.trim()) continue;
      const line = redact(raw);
      log.write(line + '\n');
      tail.push(line);
      if (tail.length > 40) tail.shift();
      const c = classifyLine(line);
      if (c.phase && c.phase !== phase) {
        // Phases only move forward (a late STEP line of the clone does not undo 'follow').
        const order: PgcopydbPhase[] = ['starting', 'restarting', 'clone', 'follow', 'sequences', 'done'];
        if (order.indexOf(c.phase) > order.indexOf(phase)) {
          report(c.phase, c.detail ?? '');
          continue;
        }
      }
      if (c.detail) detail = c.detail;
    }
  });
  const timer = setInterval(emit, opts.progressIntervalMs ?? 2_000);
  let killTimer: NodeJS.Timeout | undefined;
  const onAbort = () => {
    if (child.pid === undefined) return;
    signalGroup(child.pid, 'SIGTERM');
    killTimer = setTimeout(() => child.pid !== undefined && signalGroup(child.pid, 'SIGKILL'), 10_000);
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (c) => resolve(c));
    });
    if (opts.signal?.aborted) {
      // Sub-processes that outlived the leader (they share its process group).
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
      throw aborted();
    }
    if (code !== 0) throw failure(`pgcopydb ${args[0]} exited with ${code}`, tail);
  } finally {
    clearInterval(timer);
    log.end();
    if (killTimer) clearTimeout(killTimer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
  report('done', detail ?? 'endpos reached');
  return { mode, elapsedMs: Date.now() - started };
}
