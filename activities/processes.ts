/** Running PostgreSQL client programs (pg_dump, pg_restore) with heartbeats, cancellation and redacted errors. */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
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

/** Calls `onLine` with every complete line a child writes to stderr. */
export function onStderrLines(child: { stderr: NodeJS.ReadableStream | null }, onLine: (line: string) => void): void {
  let buffered = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  });
}

export interface RunOptions {
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Called with every stderr line (the verbose progress of pg_dump / pg_restore). */
  onLine?: (line: string) => void;
}

export async function runProgram(command: string, args: string[], opts: RunOptions): Promise<void> {
  const tail: string[] = [];
  const child = spawn(command, args, {
    env: { PATH: process.env.PATH, LANG: 'C.UTF-8', ...opts.env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const onAbort = () => child.kill('SIGTERM');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  onStderrLines(child, (line) => {
    tail.push(line);
    if (tail.length > 15) tail.shift();
    opts.onLine?.(line);
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c));
  }).finally(() => opts.signal?.removeEventListener('abort', onAbort));
  if (code !== 0) {
    const name = path.basename(command);
    const detail = redact(
      tail
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
