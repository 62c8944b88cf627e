/**
 * The pgcopydb initial copy on the real stack (pgcopydb 0.10): a slot's exported snapshot copied by
 * `pgcopydb clone --snapshot` while the stand-in application writes, then a subscription streaming
 * from that slot, every acknowledged write exactly once; a worker killed mid-copy (its pgcopydb left
 * running, its snapshot's session gone) retried from a new slot and snapshot with nothing lost or
 * doubled; an aborted copy; and the cleanup leaving nothing. The scenarios run concurrently, each on
 * its own databases.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Client } from 'pg';
import { withoutReplicaIdentity, type TableInventory } from '../../contract/plan';
import { inventoryDatabase, listUserSchemas } from '../../activities/database/inventory';
import type { TargetBaseline } from '../../activities/database/target-reset';
import { drainToMarker, replicationNames } from '../../activities/methods/cdc/marker';
import { setReplicaIdentityFull } from '../../activities/methods/cdc/replica-identity';
import { dropReplicationLeftovers, dropSubscription, startLogicalReplication } from '../../activities/methods/logical/replication';
import { dropLegacyFollow, legacySlotName } from '../../activities/methods/pgcopydb/legacy';
import { cloneDir, pgcopydbAppName, snapshotAppName, type PgcopydbRun } from '../../activities/methods/pgcopydb/names';
import { copyFromNewSlot, removeCopyLeftovers } from '../../activities/methods/pgcopydb/snapshot-copy';
import type { CopyProgress } from '../../activities/methods/method';
import { createSourceDatabase, createTargetDatabase, databaseUrl, dropDatabase, loadStackEnv, type StackEnv } from '../../stack';
import { AppWriter, type WriterStats } from '../../stack/app-writer';
import { DEMO_TABLES, seedDemoData } from '../../stack/demo-data';

let env: StackEnv;
const databases: { source: string; target: string }[] = [];
const runs: PgcopydbRun[] = [];
const workRoot = path.join(os.tmpdir(), `pgmig-pgcopydb-test-${randomBytes(3).toString('hex')}`);

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

type Scenario = PgcopydbRun & {
  sourceAdmin: string;
  targetAdmin: string;
  tables: TableInventory[];
  baseline: TargetBaseline;
};

async function scenario(name: string, scale = 1): Promise<Scenario> {
  const id = `${name}_${randomBytes(3).toString('hex')}`;
  const db = { source: `pgc_src_${id}`, target: `pgc_tgt_${id}` };
  databases.push(db);
  const sourceUrl = await createSourceDatabase(env, db.source);
  const targetUrl = await createTargetDatabase(env, db.target);
  await seedDemoData(sourceUrl, { scale });
  const sourceAdmin = databaseUrl(env.SOURCE_ADMIN_URL, db.source);
  const targetAdmin = databaseUrl(env.TARGET_ADMIN_URL, db.target);
  // As the workflow does before the copy: keyless tables get REPLICA IDENTITY FULL (the writer updates and deletes).
  const tables = await withClient(sourceUrl, async (c) => {
    const inventory = await inventoryDatabase(c);
    await setReplicaIdentityFull(c, withoutReplicaIdentity(inventory.tables));
    return inventory.tables;
  });
  const baseline = await withClient(targetUrl, async (c) => ({
    schemas: await listUserSchemas(c),
    extensions: ['plpgsql'],
    largeObjects: 0,
  }));
  const run: Scenario = {
    migrationId: `pgcopydb-test-${id}`,
    sourceUrl,
    targetUrl,
    workDir: path.join(workRoot, id),
    tableJobs: 2,
    splitTablesLargerThan: 1024 * 1024, // the demo's larger tables are copied in parts (unless a mixed-case one is among them)
    sourceAdmin,
    targetAdmin,
    tables,
    baseline,
  };
  runs.push(run);
  return run;
}

async function withClient<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** pgcopydb processes of this run (their argv names its clone dir). */
function pgcopydbPids(run: PgcopydbRun): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (/\) Z /.test(stat)) continue; // zombies are gone already
      if (args.some((a) => a.endsWith('pgcopydb')) && args.includes(cloneDir(run))) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** The subscription streams from the copy's slot; once the writer stopped, the marker drains everything to the target. */
async function subscribeAndDrain(run: Scenario, writer: AppWriter): Promise<WriterStats> {
  await withClient(run.sourceUrl, (s) =>
    withClient(run.targetAdmin, (t) =>
      startLogicalReplication(s, t, {
        migrationId: run.migrationId,
        sourceUrl: run.sourceUrl,
        tables: run.tables,
        initialCopy: 'pgcopydb',
      }),
    ),
  );
  await new Promise((r) => setTimeout(r, 1_500)); // writes while the subscription streams
  const writes = await writer.stop();
  expect(writes.failures).toBe(0);
  await withClient(run.sourceUrl, (s) => withClient(run.targetUrl, (t) => drainToMarker(s, t, run.migrationId, 30_000)));
  return writes;
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

/** The undo of the copy and the replication: subscription, slot, publication, markers, pgcopydb and its files. */
async function cleanup(run: Scenario): Promise<string[]> {
  const dropped = await withClient(run.targetAdmin, (t) => dropSubscription(t, run.migrationId));
  dropped.push(
    ...(await withClient(run.sourceUrl, (s) => withClient(run.targetUrl, (t) => dropReplicationLeftovers(s, t, run.migrationId)))),
  );
  return [...dropped, ...(await removeCopyLeftovers(run))];
}

async function expectNothingLeft(run: Scenario): Promise<void> {
  const names = replicationNames(run.migrationId);
  expect(await sql(env.SOURCE_ADMIN_URL, 'SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [names.slot])).toEqual([]);
  expect(await sql(run.sourceAdmin, 'SELECT 1 FROM pg_publication WHERE pubname = $1', [names.publication])).toEqual([]);
  expect(await sql(env.TARGET_ADMIN_URL, 'SELECT 1 FROM pg_subscription WHERE subname = $1', [names.subscription])).toEqual([]);
  expect(await sql(run.sourceAdmin, `SELECT 1 FROM pg_namespace WHERE nspname IN ('_pgmig', 'pgcopydb')`)).toEqual([]);
  expect(existsSync(run.workDir)).toBe(false);
  expect(pgcopydbPids(run)).toEqual([]);
  for (const url of [env.SOURCE_ADMIN_URL, env.TARGET_ADMIN_URL]) {
    const sessions = await sql(url, `SELECT application_name FROM pg_stat_activity WHERE application_name IN ($1, $2)`, [
      pgcopydbAppName(run.migrationId),
      snapshotAppName(run.migrationId),
    ]);
    expect(sessions).toEqual([]);
  }
}

const slotOf = async (run: Scenario) =>
  (
    await sql<{ restart_lsn: string; plugin: string }>(
      env.SOURCE_ADMIN_URL,
      'SELECT restart_lsn::text, plugin FROM pg_replication_slots WHERE slot_name = $1',
      [replicationNames(run.migrationId).slot],
    )
  )[0];

beforeAll(() => {
  env = loadStackEnv();
});

afterAll(async () => {
  for (const run of runs) {
    await cleanup(run as Scenario).catch((e) => console.error(`cleanup of ${run.migrationId}: ${(e as Error).message}`));
  }
  for (const db of databases) {
    await dropDatabase(env.SOURCE_ADMIN_URL, db.source).catch(() => undefined);
    await dropDatabase(env.TARGET_ADMIN_URL, db.target).catch(() => undefined);
  }
  rmSync(workRoot, { recursive: true, force: true });
});

describe.concurrent('pgcopydb snapshot copy, then a subscription from its slot', () => {
  test('copies the snapshot under writes (progress heartbeats), streams the rest once; cleanup leaves nothing', async () => {
    const run = await scenario('main');
    const writer = new AppWriter(() => run.sourceUrl, 10, true);
    writer.start();
    const progress: (CopyProgress & { stage: string })[] = [];
    const result = await copyFromNewSlot(run, {
      tables: run.tables,
      baseline: run.baseline,
      onProgress: (p) => progress.push(p),
      progressEveryMs: 100,
    });
    expect(result.startedOver).toBe(false);
    expect(await slotOf(run)).toMatchObject({ plugin: 'pgoutput' });
    // The snapshot's session is gone with the copy: only the slot remains, inactive, for the subscription.
    expect(
      await sql(env.SOURCE_ADMIN_URL, 'SELECT 1 FROM pg_stat_activity WHERE application_name = $1', [snapshotAppName(run.migrationId)]),
    ).toEqual([]);
    const last = progress.at(-1)!;
    expect(last).toMatchObject({ stage: 'done', percent: 100 });
    expect(last.tablesDone).toBe(last.tablesTotal);
    expect(last.tablesTotal).toBeGreaterThan(0);
    expect(progress.some((p) => /^copying snapshot|^STEP/.test(p.stage))).toBe(true);
    expect(JSON.stringify(progress)).not.toContain(new URL(run.sourceUrl).password);
    console.log(
      `[pgcopydb] snapshot copy ${result.elapsedMs} ms, ${last.tablesTotal} tables, ${last.bytesTotal} bytes (${last.bytesPerSecond} B/s)`,
    );

    const writes = await subscribeAndDrain(run, writer);
    await expectSameData(run, writes);
    const dropped = await cleanup(run);
    expect(dropped).toEqual(
      expect.arrayContaining([
        expect.stringContaining('subscription'),
        expect.stringContaining('slot'),
        expect.stringContaining('publication'),
      ]),
    );
    await expectNothingLeft(run);
  }, 120_000);

  test('a worker killed mid-copy: the retry stops its pgcopydb, starts over from a new slot and snapshot, and nothing is lost or doubled', async () => {
    const run = await scenario('crash', 3);
    const writer = new AppWriter(() => run.sourceUrl, 10, true);
    writer.start();
    const child = spawn(
      process.execPath,
      [path.resolve(__dirname, '../../node_modules/tsx/dist/cli.mjs'), path.resolve(__dirname, '../helpers/pgcopydb-copy-child.ts')],
      {
        env: { ...process.env, PGMIG_COPY_JSON: JSON.stringify({ run, tables: run.tables, baseline: run.baseline }) },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const lines: string[] = [];
    child.stdout.on('data', (b: Buffer) => lines.push(...b.toString('utf8').split('\n').filter(Boolean)));
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    // Killed once pgcopydb copies table data (a table done, or its parts), before the copy ends.
    for (const deadline = Date.now() + 60_000; ;) {
      const dir = path.join(cloneDir(run), 'run', 'tables');
      if (existsSync(dir) && readdirSync(dir).some((f) => f.endsWith('.done'))) break;
      if (lines.some((l) => l.includes('"result"') || l.includes('"error"')))
        throw new Error(`the copy ended before the kill: ${lines.at(-1)}`);
      if (Date.now() > deadline) throw new Error('pgcopydb never started copying');
      await new Promise((r) => setTimeout(r, 20));
    }
    const first = await slotOf(run);
    child.kill('SIGKILL');
    await exited;
    expect(lines.some((l) => l.includes('"result"'))).toBe(false);
    const stray = pgcopydbPids(run);
    console.log(`[pgcopydb] worker killed mid-copy; ${stray.length} pgcopydb process(es) of it still running`);

    const result = await copyFromNewSlot(run, { tables: run.tables, baseline: run.baseline });
    expect(result.startedOver).toBe(true);
    const second = await slotOf(run);
    expect(second.plugin).toBe('pgoutput');
    // A new slot (its snapshot a new one): the first one's snapshot died with its session.
    expect(second.restart_lsn).not.toBe(first.restart_lsn);
    expect(stray.filter((pid) => pgcopydbPids(run).includes(pid))).toEqual([]);

    const writes = await subscribeAndDrain(run, writer);
    await expectSameData(run, writes);
    await cleanup(run);
    await expectNothingLeft(run);
  }, 180_000);

  test("the leftovers of a migration begun on 0.10's follow (slot, sentinel, origin) go with its compensation", async () => {
    const run = await scenario('legacy');
    const name = legacySlotName(run.migrationId);
    await sql(run.sourceAdmin, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [name]);
    await sql(run.sourceAdmin, 'CREATE SCHEMA pgcopydb; CREATE TABLE pgcopydb.sentinel (startpos pg_lsn)');
    await sql(run.targetAdmin, 'SELECT pg_replication_origin_create($1)', [name]);
    const dropped = await withClient(run.sourceAdmin, (s) => withClient(run.targetAdmin, (t) => dropLegacyFollow(s, t, run.migrationId)));
    expect(dropped).toEqual([`pgcopydb 0.10 slot ${name}`, 'pgcopydb.sentinel', `pgcopydb 0.10 replication origin ${name}`]);
    expect(await withClient(run.sourceAdmin, (s) => withClient(run.targetAdmin, (t) => dropLegacyFollow(s, t, run.migrationId)))).toEqual(
      [],
    );
    expect(await sql(run.sourceAdmin, `SELECT 1 FROM pg_namespace WHERE nspname = 'pgcopydb'`)).toEqual([]);
  });

  test('an aborted copy stops pgcopydb and its sub-processes; cleanup leaves nothing', async () => {
    const run = await scenario('abort', 3);
    const controller = new AbortController();
    const copy = copyFromNewSlot(run, { tables: run.tables, baseline: run.baseline, signal: controller.signal });
    copy.catch(() => undefined);
    for (const deadline = Date.now() + 60_000; pgcopydbPids(run).length === 0;) {
      if (Date.now() > deadline) throw new Error('pgcopydb never started');
      await new Promise((r) => setTimeout(r, 20));
    }
    controller.abort(new Error('rollback'));
    await expect(copy).rejects.toThrow('rollback');
    expect(pgcopydbPids(run)).toEqual([]);
    await cleanup(run);
    await expectNothingLeft(run);
  }, 120_000);
});
