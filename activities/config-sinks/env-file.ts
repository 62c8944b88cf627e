/** A dotenv file on the worker host: what a systemd unit, a Procfile runner or docker `env_file` reads. */
import { randomBytes } from 'node:crypto';
import { constants, existsSync } from 'node:fs';
import { access, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { parse } from 'dotenv';
import { fingerprint, type ConfigSinkDriver, type RestoreReceipt, type SwapReceipt } from './driver';

function formatLine(key: string, value: string): string {
  return /^[A-Za-z0-9_@:/?&=%.+,;~!*()[\]-]*$/.test(value) ? `${key}=${value}` : `${key}='${value.replace(/'/g, "'\\''")}'`;
}

/** Replaces (or appends, or with `undefined` removes) one key, keeping every other line as it was. */
export function setKey(text: string, key: string, value: string | undefined): string {
  const lines = text.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const matcher = new RegExp(`^\\s*(export\\s+)?${key}\\s*=`);
  const kept = lines.filter((l) => !matcher.test(l));
  if (value !== undefined) {
    const at = lines.findIndex((l) => matcher.test(l));
    const line = formatLine(key, value);
    if (at >= 0) kept.splice(Math.min(at, kept.length), 0, line);
    else kept.push(line);
  }
  return kept.length ? `${kept.join('\n')}\n` : '';
}

/** Written beside `file` under a name no other attempt uses, then renamed over it (0600: it may hold a password). */
async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = `${file}.pgmig-tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await writeFile(tmp, text, { mode: 0o600 });
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
}

interface Backup {
  present: boolean;
  value?: string;
}

export class EnvFileSink implements ConfigSinkDriver {
  constructor(
    private readonly path: string,
    private readonly key: string,
  ) {}

  describe(): string {
    return `env-file ${this.path} (${this.key})`;
  }

  /** The directory must exist and be writable (atomic replace, backup beside the file); the file, if there, read- and writable. */
  async check(): Promise<string[]> {
    const dir = dirname(this.path);
    const where = `on this worker (${hostname()})`;
    const dirStat = await stat(dir).catch(() => undefined);
    if (!dirStat) return [`configSink.path: directory ${dir} does not exist ${where}`];
    if (!dirStat.isDirectory()) return [`configSink.path: ${dir} is not a directory ${where}`];
    const problems: string[] = [];
    if (
      !(await access(dir, constants.W_OK | constants.X_OK).then(
        () => true,
        () => false,
      ))
    ) {
      problems.push(
        `configSink.path: directory ${dir} is not writable ${where} (the file is replaced atomically, its backup kept beside it)`,
      );
    }
    const fileStat = await stat(this.path).catch(() => undefined);
    if (fileStat && !fileStat.isFile()) problems.push(`configSink.path: ${this.path} is not a regular file`);
    else if (
      fileStat &&
      !(await access(this.path, constants.R_OK | constants.W_OK).then(
        () => true,
        () => false,
      ))
    ) {
      problems.push(`configSink.path: ${this.path} is not readable and writable ${where}`);
    }
    return problems;
  }

  private backupPath(migrationId: string): string {
    return `${this.path}.pgmig-${migrationId}.bak`;
  }

  private async text(): Promise<string> {
    return existsSync(this.path) ? readFile(this.path, 'utf8') : '';
  }

  async read(): Promise<string | undefined> {
    return parse(await this.text())[this.key];
  }

  /** Atomic replace: the application never reads a half-written file. */
  private async writeText(text: string): Promise<void> {
    await writeAtomically(this.path, text);
  }

  async swap(migrationId: string, value: string): Promise<SwapReceipt> {
    const backup = this.backupPath(migrationId);
    const text = await this.text();
    const previous = parse(text)[this.key];
    if (!existsSync(backup)) {
      // First attempt: keep the value the application used before us. A retry finds the backup and leaves it.
      const record: Backup = previous === undefined ? { present: false } : { present: true, value: previous };
      // Atomically too: a backup half-written by an attempt that died would make the retry and the restore fail.
      await writeAtomically(backup, JSON.stringify(record));
    }
    const kept = JSON.parse(await readFile(backup, 'utf8')) as Backup;
    await this.writeText(setKey(text, this.key, value));
    return { sink: this.describe(), key: this.key, previousFingerprint: fingerprint(kept.value), newFingerprint: fingerprint(value)! };
  }

  /**
   * The rollback path is given up: the backup (it holds the previous URL, with its password) goes.
   * Called at decommission, and at completion when there is no hold.
   */
  async release(migrationId: string): Promise<string[]> {
    const backup = this.backupPath(migrationId);
    if (!existsSync(backup)) return [];
    await rm(backup, { force: true });
    return [`backup ${backup}`];
  }

  async restore(migrationId: string, _receipt?: SwapReceipt): Promise<RestoreReceipt> {
    const backup = this.backupPath(migrationId);
    if (!existsSync(backup)) return { sink: this.describe(), restored: false, fingerprint: fingerprint(await this.read()) };
    let kept: Backup;
    try {
      kept = JSON.parse(await readFile(backup, 'utf8')) as Backup;
    } catch (err) {
      throw ApplicationFailure.nonRetryable(
        `${this.describe()}: backup ${backup} is unreadable: ${(err as Error).message}`,
        'ConfigBackupCorrupt',
      );
    }
    await this.writeText(setKey(await this.text(), this.key, kept.present ? kept.value : undefined));
    await rm(backup, { force: true });
    return { sink: this.describe(), restored: true, fingerprint: fingerprint(kept.value) };
  }
}
