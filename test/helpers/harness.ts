/**
 * One isolated migration sandbox per test file, on the real local stack: its own source and target
 * databases (seeded with the demo data), its own config file, its own task queue and worker, and
 * secret references that only this process's worker can resolve.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client as TemporalClient, Connection, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { parse } from 'dotenv';
import { Client } from 'pg';
import { createActivities, type MigrationActivities } from '../../activities';
import { migrationStartOptions } from '../../signals/task-queue';
import { createRehearsalActivities, type RehearsalActivities } from '../../activities/rehearsal';
import type { MigrationInputDraft } from '../../contract/input';
import { approveUpdate, statusQuery, type MigrationStatus } from '../../signals';
import { AppWriter, type WriterStats } from '../../stack/app-writer';
import { expect } from 'vitest';
import { createSourceDatabase, createTargetDatabase, databaseUrl, dropDatabase, loadStackEnv, type StackEnv } from '../../stack';
import { seedDemoData } from '../../stack/demo-data';
import { ident } from '../../stack/sql';
import { seedWholeDatabase } from '../fixtures/whole-database';
import { createMigrationWorker, defaultActivityDeps } from '../../workers/worker';
import { workflowBundlePath } from '../global-setup';
import { motoConfig, motoDmsClients, motoRdsClient } from './moto';
import { Route53Client } from '@aws-sdk/client-route-53';
import { ECSClient } from '@aws-sdk/client-ecs';
import { migrationResult } from '../../signals/outcome';

export interface Sandbox {
  id: string;
  env: StackEnv;
  sourceUrl: string;
  targetUrl: string;
  sourceAdminUrl: string;
  targetAdminUrl: string;
  /** Names of the environment variables holding the URLs (what inputs reference). */
  sourceRef: string;
  targetRef: string;
  /** Env var of the target superuser URL: PostgreSQL 15 lets only superusers CREATE SUBSCRIPTION. */
  replicationRef: string;
  /** The same on the source (reverse replication subscribes there). */
  sourceReplicationRef: string;
  configFile: string;
  configText: () => string;
  configuredUrl: () => string | undefined;
  taskQueue: string;
  client: TemporalClient;
  input: (overrides?: Partial<MigrationInputDraft>) => MigrationInputDraft;
  /** An input for the logical method (tables without a primary key get REPLICA IDENTITY FULL). */
  logicalInput: (overrides?: Partial<MigrationInputDraft>) => MigrationInputDraft;
  /** An input for the triggers method (tables without a key matched on the whole row). */
  triggersInput: (overrides?: Partial<MigrationInputDraft>) => MigrationInputDraft;
  start: (input: MigrationInputDraft, workflowId?: string) => Promise<WorkflowHandle>;
  /** Restart the in-process worker with other activities (e.g. one that fails after a step). */
  useActivities: (activities: object) => Promise<void>;
  realActivities: MigrationActivities & RehearsalActivities;
  /** Empty the target again (after a completed migration) so the next run can use it. */
  resetTarget: () => Promise<void>;
  /**
   * Back to before any migration: target empty, source writable, config on the source; the source keeps
   * its data but the application's writes of earlier runs go, so each run counts its own.
   */
  resetForNextMigration: () => Promise<void>;
  close: () => Promise<void>;
}

/** One session on `url` for `fn`, closed after. */
export async function withClient<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  // A session ended by the server between queries (a freeze, an unfreeze) emits an error event: not a crash of the run.
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function query<T = Record<string, unknown>>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  return withClient(url, async (c) => (await c.query(sql, params)).rows as T[]);
}

/**
 * A tenth of the demo dataset (10,000 pgbench accounts): every shape of it (schemas, enum, identities,
 * keyless tables, bytea, foreign keys) without the volume, for tests of steps, gates and undos that do not
 * need a copy to last.
 */
export const SHAPES_ONLY = 0.1;

/**
 * `heroku`: the source database is owned by `heroku_app`, a plain owner without REPLICATION, as Heroku's credential really is.
 * `wholeDatabase`: the source holds test/fixtures/whole-database.ts beside the demo data (whose tables the application writes).
 */
export async function openSandbox(
  name: string,
  opts: {
    scale?: number;
    heroku?: boolean;
    wholeDatabase?: boolean;
    /** another Temporal server than the stack's */ temporalAddress?: string;
  } = {},
): Promise<Sandbox> {
  const env = { ...loadStackEnv(), ...(opts.temporalAddress ? { TEMPORAL_ADDRESS: opts.temporalAddress } : {}) };
  const id = `${name}_${randomBytes(3).toString('hex')}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const owner = opts.heroku ? 'heroku_app' : 'app';
  const sourceUrl = await createSourceDatabase(env, `src_${id}`, { heroku: !!opts.heroku });
  const targetUrl = await createTargetDatabase(env, `tgt_${id}`);
  await seedDemoData(sourceUrl, { scale: opts.scale ?? 1 });
  if (opts.wholeDatabase) await seedWholeDatabase(sourceUrl, databaseUrl(env.SOURCE_ADMIN_URL, `src_${id}`));
  const sourceRef = `TEST_SOURCE_URL_${id.toUpperCase()}`;
  const targetRef = `TEST_TARGET_URL_${id.toUpperCase()}`;
  const replicationRef = `${targetRef}_REPLICATION`;
  const sourceReplicationRef = `${sourceRef}_REPLICATION`;
  process.env[sourceReplicationRef] = databaseUrl(env.SOURCE_ADMIN_URL, `src_${id}`);
  process.env[sourceRef] = sourceUrl;
  process.env[targetRef] = targetUrl;
  process.env[replicationRef] = databaseUrl(env.TARGET_ADMIN_URL, `tgt_${id}`);

  const dir = mkdtempSync(path.join(os.tmpdir(), `pgmig-${id}-`));
  const configFile = path.join(dir, 'app.env');
  const writeConfig = () =>
    writeFileSync(
      configFile,
      `# the application's settings\nRAILS_ENV=production\nDATABASE_URL=${sourceUrl}\nREDIS_URL=redis://127.0.0.1:6379\n`,
    );
  writeConfig();

  const taskQueue = `test-${id}`;
  const dmsClients = motoDmsClients(env);
  const connection = await NativeConnection.connect({ address: env.TEMPORAL_ADDRESS });
  const clientConnection = await Connection.connect({ address: env.TEMPORAL_ADDRESS });
  const client = new TemporalClient({ connection: clientConnection, namespace: env.TEMPORAL_NAMESPACE });
  // AWS calls go to the stack's moto server (with its timestamp adapter); DMS waits poll every 50 ms.
  const aws = motoConfig(env);
  const route53 = new Route53Client(aws);
  const ecs = new ECSClient(aws);
  const deps = {
    ...defaultActivityDeps(connection, env.TEMPORAL_NAMESPACE),
    dms: () => dmsClients,
    dmsPollMs: 50,
    // The write rate is only planning input (a warning above a threshold): a glance is enough here.
    walSampleMs: 100,
    route53: () => route53,
    route53PollMs: 20,
    ecs: () => ecs,
  };
  const realActivities = {
    ...createActivities(deps),
    ...createRehearsalActivities({ ...deps, rds: () => motoRdsClient(env), rdsPollMs: 50 }),
  };
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  const startWorker = async (activities: object) => {
    if (worker) {
      worker.shutdown();
      await running;
    }
    worker = await createMigrationWorker({ connection, taskQueue, activities, workflowBundle: { codePath: workflowBundlePath() } });
    running = worker.run();
  };
  await startWorker(realActivities);

  const sandbox: Sandbox = {
    id,
    env,
    sourceUrl,
    targetUrl,
    sourceAdminUrl: databaseUrl(env.SOURCE_ADMIN_URL, `src_${id}`),
    targetAdminUrl: databaseUrl(env.TARGET_ADMIN_URL, `tgt_${id}`),
    sourceRef,
    targetRef,
    replicationRef,
    sourceReplicationRef,
    configFile,
    configText: () => readFileSync(configFile, 'utf8'),
    configuredUrl: () => (existsSync(configFile) ? parse(readFileSync(configFile, 'utf8')).DATABASE_URL : undefined),
    taskQueue,
    client,
    input: (overrides = {}) => ({
      migrationId: id.replace(/_/g, '-'),
      source: { url: { env: sourceRef } },
      target: { url: { env: targetRef } },
      method: 'dump-restore',
      parallelJobs: 2,
      freeze: { drainTimeout: '1s' },
      configSink: { type: 'env-file', path: configFile },
      gates: { 'go-live': { timeout: '2m' } },
      // The sandboxes share the target cluster, where roles are cluster-wide: an application role of its own
      // per migration would have each sandbox reset the same role's password. test/integration/roles.test.ts
      // runs the default ("own") with roles mapped to names of its own.
      roles: { application: 'master' },
      ...overrides,
    }),
    logicalInput: (overrides = {}) =>
      sandbox.input({
        method: 'logical',
        target: { url: { env: targetRef }, replicationUrl: { env: replicationRef } },
        replication: { tablesWithoutPrimaryKey: 'replica-identity-full' },
        ...overrides,
      }),
    triggersInput: (overrides = {}) =>
      sandbox.input({
        method: 'triggers',
        gates: { cutover: { timeout: '2m' }, 'go-live': { timeout: '2m' } },
        replication: { tablesWithoutPrimaryKey: 'replica-identity-full' },
        ...overrides,
      }),
    start: (input, workflowId) =>
      client.workflow.start('migrateDatabase', {
        ...migrationStartOptions(taskQueue, input),
        workflowId: workflowId ?? `${id}-${randomBytes(3).toString('hex')}`,
        args: [input],
      }),
    useActivities: startWorker,
    realActivities,
    resetTarget: async () => {
      await createTargetDatabase(env, `tgt_${id}`);
    },
    resetForNextMigration: async () => {
      await createTargetDatabase(env, `tgt_${id}`);
      // A completed migration leaves the source read-only as its rollback reference.
      for (const target of [`DATABASE "src_${id}"`, `ROLE ${owner} IN DATABASE "src_${id}"`, `ROLE app_worker IN DATABASE "src_${id}"`]) {
        await query(env.SOURCE_ADMIN_URL, `ALTER ${target} RESET default_transaction_read_only`);
      }
      await query(sandbox.sourceAdminUrl, `DELETE FROM public.audit_log WHERE event = 'app-write'`);
      writeConfig();
    },
    close: async () => {
      worker?.shutdown();
      await running;
      await connection.close();
      await clientConnection.close();
      delete process.env[sourceRef];
      delete process.env[targetRef];
      delete process.env[replicationRef];
      delete process.env[sourceReplicationRef];
      await dropDatabase(env.SOURCE_ADMIN_URL, `src_${id}`);
      await dropDatabase(env.TARGET_ADMIN_URL, `tgt_${id}`);
      // Roles a test mapped to names of this sandbox's own (roles are cluster-wide): theirs went with the database.
      const roles = await query<{ r: string }>(env.TARGET_ADMIN_URL, `SELECT rolname AS r FROM pg_roles WHERE rolname LIKE '%\\_' || $1`, [
        id,
      ]);
      for (const { r } of roles) await query(env.TARGET_ADMIN_URL, `DROP ROLE IF EXISTS ${ident(r)}`);
    },
  };
  return sandbox;
}

/**
 * The real activities, except that the first call of `step` throws right after it completed (to test
 * its compensation; later calls, such as the same activity used as an undo, behave normally).
 */
export function failingAfter<T extends object>(activities: T, step: keyof T): T {
  const original = activities[step] as (...args: unknown[]) => Promise<unknown>;
  let failed = false;
  return {
    ...activities,
    [step]: async (...args: unknown[]) => {
      const result = await original(...args);
      if (failed) return result;
      failed = true;
      throw ApplicationFailure.nonRetryable(`injected failure after ${String(step)}`, 'InjectedFailure');
    },
  };
}

/** Whether the application role can write on the source right now (a new session, a real write). */
export async function sourceWritable(sandbox: Sandbox): Promise<boolean> {
  const client = new Client({ connectionString: sandbox.sourceUrl });
  client.on('error', () => undefined); // ended by an unfreeze between two queries: the query fails, the run goes on
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query('CREATE TEMP TABLE writable_probe (x int)');
    await client.query('ROLLBACK');
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === '25006') return false;
    throw err;
  } finally {
    await client.end();
  }
}

/** Number of user tables on the target: 0 means compensation emptied it. */
export async function targetTableCount(sandbox: Sandbox): Promise<number> {
  const rows = await query<{ n: number }>(
    sandbox.targetUrl,
    `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`,
  );
  return rows[0].n;
}

/** Settings that a rollback must leave exactly as they were. */
export async function readOnlySettings(url: string): Promise<string[]> {
  const rows = await query<{ s: string }>(
    url,
    `SELECT coalesce(r.rolname, '*') || '@' || coalesce(d.datname, '*') || ':' || array_to_string(s.setconfig, ',') AS s
       FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole LEFT JOIN pg_database d ON d.oid = s.setdatabase
      WHERE d.datname = current_database() ORDER BY 1`,
  );
  return rows.map((r) => r.s);
}

/**
 * The history as searchable text: payload data decoded as UTF-8 (left as bytes or base64, it would
 * hide a password from the search).
 */
export async function historyText(handle: WorkflowHandle): Promise<string> {
  const history = await handle.fetchHistory();
  return JSON.stringify(history, (key, value: unknown) => {
    if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
    if (key === 'data' && typeof value === 'string') return Buffer.from(value, 'base64').toString('utf8');
    return value;
  });
}

/**
 * With RECORD_HISTORIES=1, saves the workflow's history under test/histories/ for the replay test
 * (run it after a change that is meant to stay replay-compatible, and commit the files).
 */
export async function recordHistory(handle: WorkflowHandle, name: string): Promise<void> {
  if (process.env.RECORD_HISTORIES !== '1') return;
  const file = path.resolve(__dirname, '../histories', `${name}.json`);
  writeFileSync(file, JSON.stringify(await handle.fetchHistory()));
}

/** Polls the `status` query until `done` holds (the workflow's own worker answers it). */
export async function untilStatus(
  handle: WorkflowHandle,
  done: (status: MigrationStatus) => boolean,
  what: string,
): Promise<MigrationStatus> {
  for (let i = 0; i < 2400; i++) {
    const status = await handle.query(statusQuery).catch(() => undefined);
    if (status && done(status)) return status;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`never reached: ${what}`);
}

export const untilPhase = (handle: WorkflowHandle, phase: string) => untilStatus(handle, (s) => s.phase === phase, `phase ${phase}`);

/**
 * A whole migration while the stand-in application inserts, updates and deletes every 10 ms, with
 * the given gates approved ahead of time; returns once the application wrote on the result a moment.
 */
export async function migrateUnderLoad(sandbox: Sandbox, input: MigrationInputDraft, gates: string[]) {
  const app = new AppWriter(() => sandbox.configuredUrl(), 10, true);
  app.start();
  await new Promise((r) => setTimeout(r, 300));
  const handle = await sandbox.start(input);
  for (const gate of gates) await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate }] });
  const result = await migrationResult(handle);
  await new Promise((r) => setTimeout(r, 500));
  const writes = await app.stop();
  const status = await handle.query(statusQuery);
  return { handle, result, status, writes };
}

/** Every write the application saw acknowledged is in `url`'s audit_log exactly once, and no other. */
export async function expectEveryAckedWriteOnce(url: string, writes: WriterStats): Promise<void> {
  const rows = await query<{ seq: number; n: number }>(
    url,
    `SELECT (payload->>'seq')::int AS seq, count(*)::int AS n FROM public.audit_log WHERE event = 'app-write' GROUP BY 1`,
  );
  const counts = new Map(rows.map((r) => [r.seq, r.n]));
  expect(writes.acked.filter((w) => counts.get(w.seq) !== 1)).toEqual([]);
  expect(counts.size).toBe(writes.acked.length);
}

/**
 * The migrations' own objects in a database (`_pgmig` markers and apply states, `_pgmig_cap_*` change
 * capture): triggers (by name, or calling a function of those schemas), schemas, and functions.
 */
export async function migrationObjects(url: string) {
  return {
    triggers: await query<{ rel: string; tgname: string }>(
      url,
      `SELECT t.tgrelid::regclass::text AS rel, t.tgname FROM pg_trigger t
        WHERE t.tgname LIKE '\\_pgmig%'
           OR t.tgfoid IN (SELECT p.oid FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname LIKE '\\_pgmig%')
        ORDER BY 1, 2`,
    ),
    schemas: await query<{ nspname: string }>(url, `SELECT nspname FROM pg_namespace WHERE nspname LIKE '\\_pgmig%' ORDER BY 1`),
    functions: await query<{ f: string }>(
      url,
      `SELECT n.nspname || '.' || p.proname AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname LIKE '\\_pgmig%' ORDER BY 1`,
    ),
  };
}

/**
 * The sessions of any migration (application_name `pgmig-...`) in `url`'s database, with the locks each
 * holds or waits for. A session whose end was just sent can stay listed a few milliseconds: it is looked
 * for again for up to `graceMs`; a leaked one stays.
 */
export async function migrationSessions(url: string, graceMs = 2000) {
  const list = () =>
    query<{ pid: number; application_name: string; state: string | null; locks: string[] | null }>(
      url,
      `SELECT a.pid, a.application_name, a.state,
              (SELECT array_agg(l.locktype || ' ' || coalesce(l.relation::regclass::text, '') || ' ' || l.mode || CASE WHEN l.granted THEN '' ELSE ' (waiting)' END)
                 FROM pg_locks l WHERE l.pid = a.pid) AS locks
         FROM pg_stat_activity a WHERE a.datname = current_database() AND a.application_name LIKE 'pgmig-%' ORDER BY a.pid`,
    );
  let sessions = await list();
  for (const until = Date.now() + graceMs; sessions.length && Date.now() < until;) {
    await new Promise((r) => setTimeout(r, 100));
    sessions = await list();
  }
  return sessions;
}
