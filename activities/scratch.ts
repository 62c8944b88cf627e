/**
 * A worker process's scratch directory when it starts: the files an earlier process with this
 * directory left behind (a dump with customer data, a pgcopydb work directory, a schema dump) are
 * removed. Nothing needs them: that process's groups have started over on other workers
 * (workflows/host-group.ts), and the one step that reads a file another wrote (copySchemaAfterData)
 * dumps again when it is missing. Only for a directory of the worker's own (WORKER_SCRATCH_DIR set,
 * not the shared PGMIG_WORK_DIR), and only the names the activities write there.
 */
import { existsSync } from 'node:fs';
import { readdir, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { scratchRoot, sharedRoot } from './names';

/** Per migration (`workDir`): the dump and its marker, pgcopydb's directory, the schema dump (and a half-written one). */
const MIGRATION_FILES = /^(dump|dump\.complete|pgcopydb|schema|schema\.tmp-.*)$/;

async function removeFrom(dir: string, names: RegExp, label: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(dir)) {
    if (!names.test(name)) continue;
    await rm(path.join(dir, name), { recursive: true, force: true });
    removed.push(`${label}/${name}`);
  }
  // The directory itself once nothing else is in it.
  await rmdir(dir).catch(() => undefined);
  return removed;
}

export async function sweepScratch(env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const root = scratchRoot(env);
  if (!env.WORKER_SCRATCH_DIR || path.resolve(root) === path.resolve(sharedRoot(env)) || !existsSync(root)) return [];
  const removed: string[] = [];
  for (const entry of await readdir(root)) {
    const dir = path.join(root, entry);
    if (!(await stat(dir)).isDirectory()) continue;
    if (entry === 'rehearsals') {
      for (const rehearsal of await readdir(dir))
        removed.push(...(await removeFrom(path.join(dir, rehearsal), /^dump$/, `rehearsals/${rehearsal}`)));
    } else {
      removed.push(...(await removeFrom(dir, MIGRATION_FILES, entry)));
    }
  }
  return removed;
}
