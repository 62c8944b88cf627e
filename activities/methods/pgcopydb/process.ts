/**
 * The pgcopydb process: how it is started, what it is told, how its output becomes an error, and
 * how it is stopped (including the leftovers of a killed worker on this host).
 *
 * - Connection strings travel in PGCOPYDB_SOURCE_PGURI / PGCOPYDB_TARGET_PGURI (pgcopydb gives its
 *   pg_dump / pg_restore children the URI without the password): no password in any argv; every line
 *   of its output is redacted before it is logged or put in an error.
 * - pgcopydb runs as a process group leader: its sub-processes (copy and index workers) do not die
 *   with it, so every signal goes to the group.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { onStderrLines, pgBinary } from '../../processes';
import { redact } from '../../secrets';
import { cloneDir, pgcopydbAppName, type PgcopydbRun } from './names';

const PGCOPYDB = process.env.PGCOPYDB_BIN || 'pgcopydb';

/** pgcopydb runs its pg_dump / pg_restore from PATH: the newest installed PostgreSQL binaries first. */
function pgBinDir(): string | undefined {
  const dump = pgBinary('pg_dump');
  return path.isAbsolute(dump) ? path.dirname(dump) : undefined;
}

function pgcopydbEnv(run: PgcopydbRun): NodeJS.ProcessEnv {
  const bin = pgBinDir();
  return {
    PATH: [bin, process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'].filter(Boolean).join(':'),
    LANG: 'C.UTF-8',
    HOME: run.workDir,
    TMPDIR: run.workDir,
    XDG_DATA_HOME: run.workDir,
    PGCOPYDB_SOURCE_PGURI: run.sourceUrl,
    PGCOPYDB_TARGET_PGURI: run.targetUrl,
    PGAPPNAME: pgcopydbAppName(run.migrationId),
    PGCONNECT_TIMEOUT: '10',
  };
}

function spawnFailure(err: unknown): Error {
  if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
    return ApplicationFailure.nonRetryable(
      `${PGCOPYDB} is not installed on this worker (Debian: apt-get install pgcopydb; or set PGCOPYDB_BIN)`,
      'PgcopydbMissing',
    );
  }
  return err as Error;
}

// ---------------------------------------------------------------------------------------------
// Errors

/** Errors that no retry can fix: said plainly, non-retryable. */
const FATAL_PATTERNS: { re: RegExp; why: string }[] = [
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

/** A failed step as an ApplicationFailure: non-retryable for a missing prerequisite, retryable otherwise. */
export function failure(what: string, tail: string[]): ApplicationFailure {
  const text = tail.join('\n');
  for (const f of FATAL_PATTERNS) {
    if (f.re.test(text)) return ApplicationFailure.nonRetryable(`${what}: ${f.why}: ${lastErrors(tail)}`, 'PgcopydbPrerequisite');
  }
  return ApplicationFailure.retryable(`${what}: ${lastErrors(tail) || '(no error output)'}`, 'PgcopydbFailed');
}

/** The few lines of pgcopydb's output that say what went wrong (its timestamp and pid prefix dropped). */
export function lastErrors(tail: string[]): string {
  const errors = tail.filter((l) => /\b(ERROR|FATAL)\b|^\(exit code/.test(l));
  return redact(
    (errors.length ? errors : tail)
      .slice(-4)
      .map((l) => l.replace(/^\d\d:\d\d:\d\d \d+ /, ''))
      .join(' | '),
  );
}

// ---------------------------------------------------------------------------------------------
// The clone

/** One pgcopydb process (a group leader: its sub-processes are signalled with it), logging to the run's log. */
export interface Pgcopydb {
  args: string[];
  exited: Promise<number | null>;
  stop: (sig: NodeJS.Signals) => void;
  tail: string[];
}

export function startPgcopydb(run: PgcopydbRun, args: string[], log: WriteStream, onLine: (line: string) => void): Pgcopydb {
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

// ---------------------------------------------------------------------------------------------
// Leftovers of a previous attempt

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
  const dirs = [cloneDir(run)];
  const pids: number[] = [];
  let entries: string[];
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
export async function stopPreviousPgcopydb(run: PgcopydbRun): Promise<boolean> {
  let stopped = false;
  for (const dir of [cloneDir(run)]) {
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
