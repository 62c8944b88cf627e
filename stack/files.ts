/**
 * File helpers shared by the stack's state, secrets and env file.
 */
import * as fs from 'node:fs';

/** The parsed JSON in `file`, or undefined when it is missing or unreadable (a first `up`, or a half-written file). */
export function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/**
 * Write via a temp file and rename, so a concurrent reader (another `up`, a test loading the env
 * file) sees the old or the new content, never a torn one; the chmod applies `mode` even where the
 * umask narrowed it.
 */
export function writeFileAtomic(file: string, content: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, content, { mode });
  fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, file);
}
