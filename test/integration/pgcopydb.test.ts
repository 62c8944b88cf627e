/**
 * The pgcopydb method's activities on the real stack (pgcopydb 0.10, wal2json on the source):
 * clone + follow while the stand-in application writes, a freeze that also cuts pgcopydb's
 * connections, endpos, exactly-once delivery of every acknowledged write, cleanup; abort; resume of
 * the follow after pgcopydb was killed; and a start-over after it was killed during the clone.
 * The four scenarios run concurrently (each on its own databases): pgcopydb 0.10 spends most of a
 * run waiting on its 10 s sentinel polls.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Client } from 'pg';
import {
  cleanupPgcopydb,
  pgcopydbNames,
  pgcopydbStreaming,
  runCloneFollow,
  setEndpos,
  lsnToNumber,
  logFile,
  type PgcopydbProgress,
  type PgcopydbRun,
} from '../../activities/methods/pgcopydb/clone-follow';
import { createSourceDatabase, createTargetDatabase, databaseUrl, dropDatabase, loadStackEnv, type StackEnv } from '../../stack';
import { AppWriter, type WriterStats } from '../../stack/app-writer';
import { DEMO_TABLES, seedDemoData } from '../../stack/demo-data';

let env: StackEnv;
const databases: { source: string; target: string }[] = [];
/** Every run of the file: aborted and cleaned up in afterAll, so a failed test leaves no pgcopydb running. */
const runs: { run: PgcopydbRun; controller: AbortController }[] = [];
const workRoot = path.join(os.tmpdir(), `pgmig-pgcopydb-test-${randomBytes(3).toString('hex')}`);
/** Copies of pgcopydb's logs of this file's runs (the work dirs are removed by the cleanup). */
const logDir = path.join(os.tmpdir(), 'pgmig-pgcopydb-test-logs');

async function sql<T = Record<string, unknown>>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const client = new Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query(text, params)).rows as T[];
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function scenario(
  name: string,
): Promise<PgcopydbRun & { sourceAdmin: string; targetAdmin: string; db: { source: string; target: string } }> {
  const id = `${name}_${randomBytes(3).toString('hex')}`;
  const db = { source: `pgc_src_${id}`, target: `pgc_tgt_${id}` };
  databases.push(db);
  const sourceUrl = await createSourceDatabase(env, db.source);
  const targetUrl = await createTargetDatabase(env, db.target);
  await seedDemoData(sourceUrl, { scale: 1 });
  const run = {
    migrationId: `pgcopydb-test-${id}`,
    sourceUrl,
    targetUrl,
    workDir: path.join(workRoot, id),
    tableJobs: 2,
    indexJobs: 2,
    sourceAdmin: databaseUrl(env.SOURCE_ADMIN_URL, db.source),
    targetAdmin: databaseUrl(env.TARGET_ADMIN_URL, db.target),
    db,
  };
  runs.push({ run, controller: new AbortController() });
  return run;
}

/** The abort signal the teardown uses for this run. */
function teardownSignal(run: PgcopydbRun): AbortSignal {
  return runs.find((r) => r.run === run)!.controller.signal;
}

async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs: number,
  settled?: Promise<unknown>,
): Promise<T> {
  let failedEarly: unknown;
  let done = false;
  settled?.then(
    () => (done = true),
    (e) => ((failedEarly = e), (done = true)),
  );
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (done) throw new Error(`${what}: the run ended first${failedEarly ? `: ${(failedEarly as Error).message}` : ''}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const streaming = (run: PgcopydbRun, settled?: Promise<unknown>) =>
  waitFor('pgcopydb streaming', async () => (await pgcopydbStreaming(run)).streaming, 90_000, settled);

/** pgcopydb processes of this run (their argv names the work dir). */
function pgcopydbPids(run: PgcopydbRun): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (/\) Z /.test(stat)) continue; // zombies are gone already
      if (args.some((a) => a.endsWith('pgcopydb')) && args.some((a) => a.startsWith(run.workDir))) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** Every pgcopydb process of the run, SIGKILLed: a crash of the worker's host. */
function killPgcopydb(run: PgcopydbRun): void {
  for (const pid of pgcopydbPids(run)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

/** The cutover's freeze, harder than freeze.ts: every session of the source database is terminated, walsenders included. */
async function freezeSource(run: Awaited<ReturnType<typeof scenario>>): Promise<void> {
  await sql(env.SOURCE_ADMIN_URL, `ALTER DATABASE ${run.db.source} SET default_transaction_read_only = on`);
  await sql(env.SOURCE_ADMIN_URL, `ALTER ROLE app IN DATABASE ${run.db.source} SET default_transaction_read_only = on`);
  const killed = await sql<{ backend_type: string }>(
    env.SOURCE_ADMIN_URL,
    `SELECT backend_type, pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
    [run.db.source],
  );
  expect(killed.some((k) => k.backend_type === 'walsender')).toBe(true);
  await expect(sql(run.sourceUrl, `INSERT INTO public.audit_log (event, payload, at) VALUES ('probe', '{}', now())`)).rejects.toThrow(
    /read-only/,
  );
}

/** Every acknowledged write is on the target exactly once, and every table has the source's row count. */
async function expectSameData(run: PgcopydbRun, writes: WriterStats): Promise<void> {
  expect(writes.acked.length).toBeGreaterThan(20);
  const seqs = await sql<{ seq: number; n: number }>(
    run.targetUrl,
    `SELECT (payload->>'seq')::int AS seq, count(*)::int AS n FROM public.audit_log WHERE event = 'app-write' GROUP BY 1`,
  );
  const onTarget = new Map(seqs.map((r) => [r.seq, r.n]));
  const missing = writes.acked.filter((w) => onTarget.get(w.seq) === undefined).map((w) => w.seq);
  const duplicated = seqs.filter((r) => r.n !== 1).map((r) => r.seq);
  expect({ missing, duplicated }).toEqual({ missing: [], duplicated: [] });
  for (const table of DEMO_TABLES) {
    const [s] = await sql<{ n: string }>(run.sourceUrl, `SELECT count(*) AS n FROM ${table}`);
    const [t] = await sql<{ n: string }>(run.targetUrl, `SELECT count(*) AS n FROM ${table}`);
    expect({ table, rows: t.n }).toEqual({ table, rows: s.n });
  }
}

async function expectNothingLeft(run: Awaited<ReturnType<typeof scenario>>): Promise<void> {
  const names = pgcopydbNames(run.migrationId);
  expect(await sql(env.SOURCE_ADMIN_URL, 'SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [names.slotName])).toEqual([]);
  expect(await sql(env.TARGET_ADMIN_URL, 'SELECT 1 FROM pg_replication_origin WHERE roname = $1', [names.origin])).toEqual([]);
  expect(await sql(run.sourceAdmin, `SELECT 1 FROM pg_namespace WHERE nspname = 'pgcopydb'`)).toEqual([]);
  expect(existsSync(run.workDir)).toBe(false);
  expect(pgcopydbPids(run)).toEqual([]);
  const sessions = await sql(env.SOURCE_ADMIN_URL, `SELECT 1 FROM pg_stat_activity WHERE application_name LIKE $1 || '%'`, [
    names.applicationName,
  ]);
  expect(sessions).toEqual([]);
}

beforeAll(() => {
  env = loadStackEnv();
  // pgcopydb 0.10 decodes with wal2json: it must be installed on the source's server.
  const libdir = path.join(path.dirname(env.PG_BIN || '/usr/lib/postgresql/15/bin'), 'lib');
  if (!existsSync(path.join(libdir, 'wal2json.so'))) {
    throw new Error(`wal2json is not installed for the stack's PostgreSQL (${libdir}): apt-get install postgresql-15-wal2json`);
  }
});

afterAll(async () => {
  for (const { run, controller } of runs) {
    controller.abort(new Error('test teardown'));
    // A work dir still here means the test failed before its cleanup: keep pgcopydb's log for whoever debugs it.
    if (existsSync(logFile(run))) {
      mkdirSync(logDir, { recursive: true });
      copyFileSync(logFile(run), path.join(logDir, `${run.migrationId}.log`));
      const cdc = path.join(run.workDir, 'pgcopydb', 'cdc');
      if (existsSync(cdc)) cpSync(cdc, path.join(logDir, `${run.migrationId}-cdc`), { recursive: true });
      console.error(`pgcopydb log of ${run.migrationId}: ${path.join(logDir, `${run.migrationId}.log`)}`);
    }
    await cleanupPgcopydb(run).catch((e) => console.error(`cleanup of ${run.migrationId}: ${(e as Error).message}`));
  }
  for (const db of databases) {
    await dropDatabase(env.SOURCE_ADMIN_URL, db.source).catch(() => undefined);
    await dropDatabase(env.TARGET_ADMIN_URL, db.target).catch(() => undefined);
  }
  rmSync(workRoot, { recursive: true, force: true });
});

describe.concurrent('pgcopydb clone --follow', () => {
  test('copies, follows the writes across a freeze that cuts its connections, stops at endpos, cleans up', async () => {
    const run = await scenario('main');
    const names = pgcopydbNames(run.migrationId);
    const progress: PgcopydbProgress[] = [];
    const writer = new AppWriter(() => run.sourceUrl, 10);
    writer.start();
    const t0 = Date.now();
    const done = runCloneFollow(run, { signal: teardownSignal(run), onProgress: (p) => progress.push(p), progressIntervalMs: 500 });
    done.catch(() => undefined);
    await streaming(run, done);
    const tStreaming = Date.now();
    // Slot and origin carry this migration's names; pgcopydb's sessions its application_name.
    expect(await sql(env.SOURCE_ADMIN_URL, 'SELECT plugin FROM pg_replication_slots WHERE slot_name = $1', [names.slotName])).toEqual([
      { plugin: 'wal2json' },
    ]);
    expect(await sql(env.TARGET_ADMIN_URL, 'SELECT roname FROM pg_replication_origin WHERE roname = $1', [names.origin])).toEqual([
      { roname: names.origin },
    ]);
    await new Promise((r) => setTimeout(r, 2_000));
    const writes = await writer.stop();
    expect(writes.failures).toBe(0);

    await freezeSource(run);
    const [{ lsn }] = (await sql<{ lsn: string }>(run.sourceUrl, 'SELECT pg_current_wal_lsn()::text AS lsn')) as [{ lsn: string }];
    const tEndpos = Date.now();
    await setEndpos(run, lsn);
    const result = await done;
    const tDone = Date.now();
    console.log(
      `[pgcopydb] clone->streaming ${tStreaming - t0} ms; endpos->exit ${tDone - tEndpos} ms; ${result.attempts} attempt(s); ${writes.acked.length} acked writes; phases ${[...new Set(progress.map((p) => p.phase))].join(' > ')}`,
    );
    expect(result.mode).toBe('fresh');
    expect([...new Set(progress.map((p) => p.phase))]).toEqual(['starting', 'clone', 'follow', 'done']);
    expect(progress.every((p) => !JSON.stringify(p).includes(new URL(run.sourceUrl).password))).toBe(true);

    await expectSameData(run, writes);
    const status = await pgcopydbStreaming(run);
    // The origin records the last transaction applied: the last application write, before endpos.
    expect(status.endpos).toBe(lsn);
    expect(lsnToNumber(status.appliedLsn!)).toBeLessThan(lsnToNumber(lsn));
    expect(status.slotActive).toBe(false);
    const cleaned = await cleanupPgcopydb(run);
    expect(cleaned.dropped).toEqual([
      expect.stringContaining(`replication slot ${names.slotName}`),
      expect.stringContaining('pgcopydb.sentinel'),
      expect.stringContaining(`replication origin ${names.origin}`),
      `work dir ${run.workDir}`,
    ]);
    await expectNothingLeft(run);
    expect((await cleanupPgcopydb(run)).dropped).toEqual([]);
  }, 120_000);

  test('an aborted run stops pgcopydb and its sub-processes; cleanup leaves nothing', async () => {
    const run = await scenario('abort');
    const controller = new AbortController();
    const done = runCloneFollow(run, { signal: AbortSignal.any([controller.signal, teardownSignal(run)]) });
    done.catch(() => undefined);
    await streaming(run, done);
    expect(pgcopydbPids(run).length).toBeGreaterThan(1);
    controller.abort(new Error('activity cancelled'));
    await expect(done).rejects.toThrow('activity cancelled');
    await waitFor('pgcopydb processes gone', async () => pgcopydbPids(run).length === 0, 15_000);
    await cleanupPgcopydb(run);
    await expectNothingLeft(run);
  }, 120_000);

  test('a killed follow resumes where it was, also when the dead worker left its pgcopydb running', async () => {
    const run = await scenario('resume');
    const writer = new AppWriter(() => run.sourceUrl, 10);
    writer.start();
    const first = runCloneFollow(run, { signal: teardownSignal(run) });
    first.catch(() => undefined);
    await streaming(run, first);
    await new Promise((r) => setTimeout(r, 1_000));
    killPgcopydb(run); // a crash of the host: pgcopydb gets no chance to flush or clean up
    await expect(first).rejects.toThrow(/pgcopydb (clone|follow)/);

    // A worker process that resumes, then is SIGKILLed: its pgcopydb lives on as an orphan.
    const worker = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        `require(${JSON.stringify(path.resolve(__dirname, '../../activities/methods/pgcopydb/clone-follow.ts'))}).runCloneFollow(JSON.parse(process.env.RUN), { onProgress: (p) => console.log(p.mode) })`,
      ],
      { cwd: path.resolve(__dirname, '../..'), env: { ...process.env, RUN: JSON.stringify(run) }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let workerOut = '';
    worker.stdout.on('data', (d: Buffer) => (workerOut += d.toString()));
    await waitFor('the worker resuming pgcopydb', async () => workerOut.includes('resume-follow') && pgcopydbPids(run).length > 0, 60_000);
    await new Promise((r) => setTimeout(r, 1_000));
    worker.kill('SIGKILL');
    await new Promise((r) => worker.once('exit', r));
    const orphans = pgcopydbPids(run);
    expect(orphans.length).toBeGreaterThan(0);

    // The retry takes over: stops the orphan, repairs the change files, resumes.
    const modes: string[] = [];
    const third = runCloneFollow(run, { signal: teardownSignal(run), onProgress: (p) => modes.push(p.mode) });
    third.catch(() => undefined);
    await waitFor(
      'the retry running pgcopydb',
      async () => modes.includes('resume-follow') && pgcopydbPids(run).some((p) => !orphans.includes(p)),
      60_000,
      third,
    );
    expect(pgcopydbPids(run).filter((p) => orphans.includes(p))).toEqual([]);
    await new Promise((r) => setTimeout(r, 1_000));
    const writes = await writer.stop();
    const [{ lsn }] = (await sql<{ lsn: string }>(run.sourceUrl, 'SELECT pg_current_wal_lsn()::text AS lsn')) as [{ lsn: string }];
    await setEndpos(run, lsn);
    expect((await third).mode).toBe('resume-follow');
    await expectSameData(run, writes);
    await cleanupPgcopydb(run);
    await expectNothingLeft(run);
  }, 120_000);

  // pgcopydb 0.10 sometimes cannot apply across its own resume ("Failed to setup replication origin transaction at
  // origin LSN 0/0 and origin timestamp ''") and then waits forever short of its endpos: seen only in the full suite,
  // where the cluster's other databases make its WAL busy. That is pgcopydb's, not this run's, so it gets new tries.
  test(
    'a run killed during the clone starts over: slot, origin, sentinel and target are reset first',
    { retry: 2, timeout: 120_000 },
    async () => {
      const run = await scenario('restart');
      const writer = new AppWriter(() => run.sourceUrl, 10);
      writer.start();
      let killed = false;
      const first = runCloneFollow(run, {
        signal: teardownSignal(run),
        onProgress: (p) => {
          // Kill as soon as the table copy starts: the slot, the origin and part of the target exist.
          if (!killed && p.phase === 'clone' && /STEP 4/.test(p.detail ?? '')) {
            killed = true;
            killPgcopydb(run);
          }
        },
      });
      await expect(first).rejects.toThrow(/pgcopydb (clone|follow)/);
      expect(killed).toBe(true);
      const status = await pgcopydbStreaming(run);
      expect(status).toMatchObject({ streaming: false, setUp: true, slotExists: true });

      const second = runCloneFollow(run, { signal: teardownSignal(run) });
      second.catch(() => undefined);
      await streaming(run, second);
      await new Promise((r) => setTimeout(r, 1_000));
      const writes = await writer.stop();
      const [{ lsn }] = (await sql<{ lsn: string }>(run.sourceUrl, 'SELECT pg_current_wal_lsn()::text AS lsn')) as [{ lsn: string }];
      await setEndpos(run, lsn);
      expect((await second).mode).toBe('restart');
      await expectSameData(run, writes);
      await cleanupPgcopydb(run);
      await expectNothingLeft(run);
    },
  );
});
