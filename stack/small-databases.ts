/**
 * Small databases for fleets (the fleet test and `npm run bench -- fleet`): a source database on the
 * source cluster (owned by `app`, two tables with keys, a foreign key and sequences, a few hundred rows)
 * and an empty target, with environment variables holding their URLs (what fleet inputs reference) and
 * an env-file the application reads its DATABASE_URL from.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { createSourceDatabase, createTargetDatabase, dropDatabase } from './databases';
import type { StackEnv } from './env-file';

export interface SmallDatabase {
  /** The databases are src_<name> and tgt_<name>. */
  name: string;
  sourceRef: string;
  targetRef: string;
  sourceUrl: string;
  targetUrl: string;
  configFile: string;
  accounts: number;
}

export async function createSmallDatabase(
  env: StackEnv,
  name: string,
  opts: { accounts: number; configDir: string; refPrefix: string },
): Promise<SmallDatabase> {
  const sourceUrl = await createSourceDatabase(env, `src_${name}`);
  const targetUrl = await createTargetDatabase(env, `tgt_${name}`);
  const client = new Client({ connectionString: sourceUrl });
  await client.connect();
  try {
    await client.query(
      `CREATE TABLE public.accounts (id bigserial PRIMARY KEY, email text NOT NULL, balance numeric NOT NULL DEFAULT 0);
       INSERT INTO public.accounts (email, balance) SELECT 'user' || g || '@example.com', g * 1.5 FROM generate_series(1, ${opts.accounts}) g;
       CREATE TABLE public.events (id bigserial PRIMARY KEY, account_id bigint REFERENCES public.accounts(id), at timestamptz NOT NULL DEFAULT now());
       INSERT INTO public.events (account_id) SELECT 1 + g % 50 FROM generate_series(1, 200) g;`,
    );
  } finally {
    await client.end();
  }
  const sourceRef = `${opts.refPrefix}_SRC_${name.toUpperCase()}`;
  const targetRef = `${opts.refPrefix}_TGT_${name.toUpperCase()}`;
  process.env[sourceRef] = sourceUrl;
  process.env[targetRef] = targetUrl;
  const configFile = path.join(opts.configDir, `${name}.env`);
  writeFileSync(configFile, `DATABASE_URL=${sourceUrl}\n`);
  return { name, sourceRef, targetRef, sourceUrl, targetUrl, configFile, accounts: opts.accounts };
}

/** `count` of them, `parallel` at a time (CREATE DATABASE and the seed are most of the setup). */
export async function createSmallDatabases(
  env: StackEnv,
  names: string[],
  opts: { accounts: (i: number) => number; configDir: string; refPrefix: string; parallel?: number },
): Promise<SmallDatabase[]> {
  const out: SmallDatabase[] = [];
  const parallel = opts.parallel ?? 4;
  for (let i = 0; i < names.length; i += parallel) {
    const batch = names.slice(i, i + parallel);
    out.push(...(await Promise.all(batch.map((n, j) => createSmallDatabase(env, n, { ...opts, accounts: opts.accounts(i + j) })))));
  }
  return out;
}

export async function dropSmallDatabase(env: StackEnv, db: SmallDatabase): Promise<void> {
  delete process.env[db.sourceRef];
  delete process.env[db.targetRef];
  await dropDatabase(env.SOURCE_ADMIN_URL, `src_${db.name}`);
  await dropDatabase(env.TARGET_ADMIN_URL, `tgt_${db.name}`);
}

/** The dump-restore migration of a small database, gates left to the fleet. */
export function smallDatabaseMigration(db: SmallDatabase) {
  return {
    migrationId: db.name.replace(/_/g, '-'),
    source: { url: { env: db.sourceRef } },
    target: { url: { env: db.targetRef } },
    method: 'dump-restore' as const,
    parallelJobs: 1,
    freeze: { drainTimeout: '1s' },
    configSink: { type: 'env-file' as const, path: db.configFile },
    gates: { 'go-live': { timeout: '2m' } },
    roles: { application: 'master' as const },
  };
}
