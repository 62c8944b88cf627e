/**
 * The schema of a replication method, in two halves around the initial copy: pre-data plus primary
 * keys and unique constraints before it (the apply worker finds rows by them), the rest after it
 * (indexes, foreign keys, triggers: faster to build once than to maintain during the copy).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Client } from 'pg';
import { appName, workDir } from '../../names';
import { countUserObjects } from '../../database/inventory';
import { libpqEnv, terminateByApplicationName } from '../../database/pg';
import { CAPTURE_SCHEMA_PATTERN, ensureMarker, MARKER_SCHEMA } from '../cdc/marker';
import { pgBinary, runProgram } from '../../processes';
import { resetTargetToBaseline, type TargetBaseline } from '../../database/target-reset';

/**
 * Splits `pg_restore -l` output: primary keys / unique constraints before the copy, the rest after;
 * without the triggers method's capture triggers (`_pgmig...`, the last word before the owner), which
 * belong to the source alone.
 */
export function splitPostData(list: string): { keys: string; rest: string } {
  const isCapture = (l: string) => /^\d+; \d+ \d+ TRIGGER .* _pgmig\S* \S+$/.test(l);
  const entries = list.split('\n').filter((l) => l.trim() && !l.startsWith(';') && !isCapture(l));
  const isKey = (l: string) => /^\d+; \d+ \d+ CONSTRAINT /.test(l);
  return { keys: entries.filter(isKey).join('\n') + '\n', rest: entries.filter((l) => !isKey(l)).join('\n') + '\n' };
}

interface SchemaArgs {
  migrationId: string;
  sourceUrl: string;
  targetUrl: string;
  baseline: TargetBaseline;
  signal?: AbortSignal;
}

/** The schema dump and its two lists live in one directory that is either complete or absent. */
function schemaPaths(migrationId: string) {
  const dir = path.join(workDir(migrationId), 'schema');
  return { dir, dump: path.join(dir, 'schema.dump'), keys: path.join(dir, 'keys.list'), rest: path.join(dir, 'rest.list') };
}
type SchemaFiles = ReturnType<typeof schemaPaths>;

/**
 * `pg_dump --schema-only` of the source and its post-data split in two, written into a scratch
 * directory and renamed into place: a reader (a retry, another step) finds all of it or nothing, never
 * the half of a dump an attempt killed mid-way left behind.
 */
async function dumpSchema(args: SchemaArgs): Promise<SchemaFiles> {
  const p = schemaPaths(args.migrationId);
  const parent = path.dirname(p.dir);
  await mkdir(parent, { recursive: true, mode: 0o700 });
  const scratch = await mkdtemp(path.join(parent, 'schema.tmp-'));
  try {
    const dump = path.join(scratch, 'schema.dump');
    await runProgram(
      pgBinary('pg_dump'),
      ['--format=custom', '--schema-only', `--exclude-schema=${CAPTURE_SCHEMA_PATTERN}`, `--file=${dump}`],
      {
        env: libpqEnv(args.sourceUrl, appName(args.migrationId, 'dump')),
        signal: args.signal,
      },
    );
    const listing = path.join(scratch, 'post-data.list');
    await runProgram(pgBinary('pg_restore'), ['--list', '--section=post-data', `--file=${listing}`, dump], {
      env: {},
      signal: args.signal,
    });
    const { keys, rest } = splitPostData(await readFile(listing, 'utf8'));
    await writeFile(path.join(scratch, 'keys.list'), keys);
    await writeFile(path.join(scratch, 'rest.list'), rest);
    await rm(p.dir, { recursive: true, force: true });
    await rename(scratch, p.dir);
    return p;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** The dump `copySchema` made, when this worker has it; else a new one (another host, or removed by an earlier attempt). */
async function schemaDump(args: SchemaArgs): Promise<{ files: SchemaFiles; recreated: boolean }> {
  const p = schemaPaths(args.migrationId);
  if (existsSync(p.dump) && existsSync(p.keys) && existsSync(p.rest)) return { files: p, recreated: false };
  return { files: await dumpSchema(args), recreated: true };
}

/**
 * Removes this worker's schema dump: once the schema is complete on the target nothing needs it (the
 * cleanup after go-live; the compensation removes the whole work dir with the target reset).
 */
export async function removeSchemaDump(migrationId: string): Promise<string[]> {
  const p = schemaPaths(migrationId);
  const removed = existsSync(p.dir);
  await rm(p.dir, { recursive: true, force: true });
  // The work dir itself too once nothing else is in it (a method's own files go with its dropOwn first).
  await rmdir(path.dirname(p.dir)).catch(() => undefined);
  return removed ? [`schema dump ${p.dir}`] : [];
}

/**
 * Creates the cutover marker on the source, dumps the schema, and restores on the target the
 * pre-data section plus primary keys / unique constraints. A retry resets the target first.
 */
export async function copySchemaBeforeData(source: Client, target: Client, args: SchemaArgs): Promise<{ objects: number }> {
  await ensureMarker(source, args.migrationId);

  await terminateByApplicationName(target, appName(args.migrationId, 'restore'));
  if (
    (await countUserObjects(target)) > 0 ||
    (await target.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [MARKER_SCHEMA])).rowCount
  ) {
    await resetTargetToBaseline(target, args.baseline);
  }
  // Always a new dump: it defines what this attempt restores (a retry starts from the reset target).
  const p = await dumpSchema(args);
  const restoreEnv = libpqEnv(args.targetUrl, appName(args.migrationId, 'restore'));
  const dbName = restoreEnv.PGDATABASE!;
  await runProgram(
    pgBinary('pg_restore'),
    ['--section=pre-data', '--no-owner', '--no-acl', '--exit-on-error', `--dbname=${dbName}`, p.dump],
    { env: restoreEnv, signal: args.signal },
  );
  await runProgram(
    pgBinary('pg_restore'),
    ['--no-owner', '--no-acl', '--exit-on-error', `--use-list=${p.keys}`, `--dbname=${dbName}`, p.dump],
    { env: restoreEnv, signal: args.signal },
  );
  return { objects: await countUserObjects(target) };
}

/**
 * Indexes, foreign keys, triggers: created once the initial copy is done (faster than maintaining them
 * during it). Idempotent and host-independent: it uses the dump `copySchema` made when this worker has
 * it, and dumps the source schema again when not (another host, or an attempt that died after it was
 * removed); the source schema cannot have changed unnoticed in between, as the drain compares the
 * schemas. The dump is kept for a retry of this step and removed at the cleanup after go-live or by
 * the compensation.
 */
export async function copySchemaAfterData(args: SchemaArgs & { jobs: number }): Promise<{ schemaDump: 'reused' | 'recreated' }> {
  const { files: p, recreated } = await schemaDump(args);
  const restoreEnv = libpqEnv(args.targetUrl, appName(args.migrationId, 'restore'));
  // --clean --if-exists: a retry after a partial run drops and recreates what the first attempt made.
  await runProgram(
    pgBinary('pg_restore'),
    [
      '--no-owner',
      '--no-acl',
      '--clean',
      '--if-exists',
      `--jobs=${args.jobs}`,
      `--use-list=${p.rest}`,
      `--dbname=${restoreEnv.PGDATABASE}`,
      p.dump,
    ],
    { env: restoreEnv, signal: args.signal },
  );
  return { schemaDump: recreated ? 'recreated' : 'reused' };
}
