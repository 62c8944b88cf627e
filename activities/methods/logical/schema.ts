/**
 * The schema of a replication method, in two halves around the initial copy: pre-data plus primary
 * keys and unique constraints before it (the apply worker finds rows by them), the rest after it
 * (indexes, foreign keys, triggers: faster to build once than to maintain during the copy).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Client } from 'pg';
import { appName, workDir } from '../../names';
import { countUserObjects } from '../../database/inventory';
import { libpqEnv, terminateByApplicationName } from '../../database/pg';
import { ensureMarker, MARKER_SCHEMA } from '../cdc/marker';
import { pgBinary, runProgram } from '../../processes';
import { resetTargetToBaseline, type TargetBaseline } from '../../database/target-reset';

/** Splits `pg_restore -l` output: primary keys / unique constraints before the copy, the rest after. */
export function splitPostData(list: string): { keys: string; rest: string } {
  const entries = list.split('\n').filter((l) => l.trim() && !l.startsWith(';'));
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

function schemaPaths(migrationId: string) {
  const dir = workDir(migrationId);
  return { dir, dump: path.join(dir, 'schema.dump'), keys: path.join(dir, 'keys.list'), rest: path.join(dir, 'rest.list') };
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
  const p = schemaPaths(args.migrationId);
  await mkdir(p.dir, { recursive: true, mode: 0o700 });
  await runProgram(pgBinary('pg_dump'), ['--format=custom', '--schema-only', `--file=${p.dump}`], {
    env: libpqEnv(args.sourceUrl, appName(args.migrationId, 'dump')),
    signal: args.signal,
  });
  await runProgram(pgBinary('pg_restore'), ['--list', '--section=post-data', `--file=${p.keys}.all`, p.dump], {
    env: {},
    signal: args.signal,
  });
  const listing = await readFile(`${p.keys}.all`, 'utf8');
  const { keys, rest } = splitPostData(listing);
  await writeFile(p.keys, keys);
  await writeFile(p.rest, rest);
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

/** Indexes, foreign keys, triggers: created once the initial copy is done (faster than maintaining them during it). */
export async function copySchemaAfterData(args: SchemaArgs & { jobs: number }): Promise<void> {
  const p = schemaPaths(args.migrationId);
  if (!existsSync(p.dump)) throw new Error(`schema dump ${p.dump} is missing on this worker; the schema step must run again`);
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
  await rm(p.dir, { recursive: true, force: true });
}
