/** Running PostgreSQL client programs (pg_dump, pg_restore) with heartbeats, cancellation and redacted errors. */
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { redact } from './secrets';

/** The newest installed PostgreSQL client binaries (pg_dump must be at least the server's version). */
export function pgBinary(name: string): string {
  if (process.env.PG_BIN) return path.join(process.env.PG_BIN, name);
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .map(Number)
      .filter((v) => Number.isFinite(v) && existsSync(path.join(root, String(v), 'bin', name)))
      .sort((a, b) => b - a);
    if (versions.length) return path.join(root, String(versions[0]), 'bin', name);
  }
  return name;
}

/** The path of `name` on this worker's PATH (or `name` itself when it is a path to an executable), if any. */
export function which(name: string): string | undefined {
  const candidates = name.includes('/')
    ? [name]
    : (process.env.PATH ?? '')
        .split(':')
        .filter(Boolean)
        .map((d) => path.join(d, name));
  return candidates.find((c) => {
    try {
      accessSync(c, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Calls `onLine` with every complete line of a stream. */
function onLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  let buffered = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  });
}

/** Calls `onLine` with every complete line a child writes to stderr. */
export function onStderrLines(child: { stderr: NodeJS.ReadableStream | null }, onLine: (line: string) => void): void {
  onLines(child.stderr, onLine);
}

export interface RunOptions {
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Called with every stderr line (the verbose progress of pg_dump / pg_restore). */
  onLine?: (line: string) => void;
  /** Called with every stdout line (otherwise stdout is ignored). */
  stdout?: (line: string) => void;
  /**
   * The program starts sub-processes that do not die with it (pgcopydb): it leads a process group,
   * which is signalled as one, and whatever of it outlives the leader is killed when the leader exits.
   */
  group?: boolean;
}

/** Signals a process group (a leader started detached), or the process alone when it leads none. */
export function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

/**
 * Kills every process on this host whose command line has `arg` as one of its arguments (a work
 * directory of this migration): what a SIGKILLed worker's programs left running. Without procfs, none.
 */
export async function killProcessesWithArgument(arg: string): Promise<number> {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e) && Number(e) !== process.pid);
  } catch {
    return 0;
  }
  const pids = entries.map(Number).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(arg);
    } catch {
      return false; // exited meanwhile
    }
  });
  for (const pid of pids) signalGroup(pid, 'SIGKILL');
  for (const pid of pids) {
    for (let i = 0; i < 50; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return pids.length;
}

export async function runProgram(command: string, args: string[], opts: RunOptions): Promise<void> {
  const tail: string[] = [];
  const child = spawn(command, args, {
    env: { PATH: process.env.PATH, LANG: 'C.UTF-8', ...opts.env },
    stdio: ['ignore', opts.stdout ? 'pipe' : 'ignore', 'pipe'],
    detached: !!opts.group,
  });
  if (opts.stdout) onLines(child.stdout, opts.stdout);
  const onAbort = () => (opts.group && child.pid !== undefined ? signalGroup(child.pid, 'SIGTERM') : child.kill('SIGTERM'));
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  onStderrLines(child, (line) => {
    tail.push(line);
    if (tail.length > 40) tail.shift();
    opts.onLine?.(line);
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    if (!opts.group) child.on('close', (c) => resolve(c));
    // 'exit', not 'close': sub-processes that outlive the leader keep its stderr pipe open; they go with it.
    else
      child.on('exit', (c) => {
        if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
        resolve(c);
      });
  }).finally(() => opts.signal?.removeEventListener('abort', onAbort));
  if (code !== 0) {
    const name = path.basename(command);
    // Error lines when the program says which (pgcopydb logs INFO lines too), else its last words.
    const errors = tail.filter((l) => /\b(ERROR|FATAL|error:)/.test(l));
    const detail = redact(
      (errors.length ? errors : tail)
        .filter(
          (l) => !/^\S+: (processing|finished|dumping|creating|launching|reading|identifying|saving|last|executing|connecting)/.test(l),
        )
        .slice(-6)
        .join(' | '),
    );
    // The abort reason is the SDK's CancelledFailure: rethrown, it reports the activity as cancelled.
    if (opts.signal?.aborted)
      throw opts.signal.reason ?? ApplicationFailure.retryable(`${name} was stopped (activity cancelled)`, 'Cancelled');
    throw ApplicationFailure.retryable(`${name} exited with ${code}: ${detail || '(no error output)'}`, 'ProgramFailed');
  }
}
