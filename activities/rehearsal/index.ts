/**
 * The activities of `rehearseMigration`: take a snapshot of the source into scratch databases (a
 * `pg_dump` of the real source, read-only, or an RDS snapshot restored into a new instance), tear
 * every scratch resource down again (databases, subscriptions, replication slots, the restored
 * instance, staging files), read the child migration's status, and write the report.
 *
 * Like the migration's activities they take secret references and resolve them here; no resolved
 * value leaves an activity (results, heartbeats and errors are redacted).
 */
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  DeleteDBInstanceCommand,
  DescribeDBInstancesCommand,
  RDSClient,
  RestoreDBInstanceFromDBSnapshotCommand,
  type DBInstance,
} from '@aws-sdk/client-rds';
import { DeleteParameterCommand, PutParameterCommand } from '@aws-sdk/client-ssm';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from 'pg';
import type { SecretRef } from '../../contract/input';
import { scratchNames } from '../../contract/rehearsal';
import type { ChildMeasurements, RehearsalReport, Trend } from '../../contract/rehearsal-report';
import type { MigrationStatus } from '../../signals';
import type { ReportFiles } from '../../signals/rehearsal';
import type { ActivityDeps } from '..';
import { fitName, scratchRoot, sharedRoot, workDir } from '../names';
import { describeUrl, libpqEnv, qi, withClient } from '../database/pg';
import { pgBinary, runProgram } from '../processes';
import { reportDirFor, storeReport } from './store';
import { describeRef } from '../../contract/input';
import { createSecretResolver, redact, redactingActivities, rememberSecret } from '../secrets';

export interface RehearsalDeps extends ActivityDeps {
  /** RDS client (rds-snapshot rehearsals), created on first use; default: from the environment (AWS_ENDPOINT_URL for moto). */
  rds?: () => RDSClient;
  /** How often RDS waits poll (AWS: 15 s; moto: a few ms). */
  rdsPollMs?: number;
}

export interface PreparedSnapshot {
  sourceDatabase: string;
  targetDatabase: string;
  sizeBytes: number;
  /** Staging env file the child's config sink writes instead of the real one. */
  stagingSinkPath: string;
  description: string;
  details: Record<string, string | number>;
}

/**
 * One rehearsal's staging config sink: in the directory every worker shares (sharedRoot), as the rehearsed
 * migration's config steps may run on any worker.
 */
export function stagingDir(rehearsalId: string): string {
  return path.join(sharedRoot(), 'rehearsals', rehearsalId);
}

/** The rehearsal's dump while it exists: this worker's alone (written and read by one activity). */
function dumpDirOf(rehearsalId: string): string {
  return path.join(scratchRoot(), 'rehearsals', rehearsalId, 'dump');
}

const appName = (rehearsalId: string, what: string) =>
  `${fitName(`pgmig-rehearsal-${rehearsalId}`, 50, { id: rehearsalId, separator: '-' })}-${what}`;

/** Only databases the rehearsal named may be dropped: a wrong argument must not reach a real database. */
function assertScratch(database: string): void {
  if (!/^rehearsal_[a-z0-9_]+_(src|tgt)$/.test(database)) {
    throw ApplicationFailure.nonRetryable(`refusing to drop "${database}": not a rehearsal scratch database name`, 'NotScratch');
  }
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

async function dropSubscriptionsIn(c: Client): Promise<string[]> {
  const done: string[] = [];
  // A migration that failed inside its freeze may have left the scratch database read-only.
  await c.query('SET default_transaction_read_only = off');
  const subs = await c.query<{ subname: string }>(
    'SELECT subname FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())',
  );
  for (const { subname } of subs.rows) {
    // Detached from its slot first: the slot (on the scratch source) is dropped with that database's teardown.
    await c.query(`ALTER SUBSCRIPTION ${qi(subname)} DISABLE`);
    await c.query(`ALTER SUBSCRIPTION ${qi(subname)} SET (slot_name = NONE)`);
    await c.query(`DROP SUBSCRIPTION ${qi(subname)}`);
    done.push(`subscription ${subname} dropped`);
  }
  return done;
}

async function dropSlotsOf(c: Client, database: string, timeoutMs = 30_000): Promise<string[]> {
  const done: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const slots = await c.query<{ slot_name: string; active_pid: number | null }>(
      'SELECT slot_name, active_pid FROM pg_replication_slots WHERE database = $1',
      [database],
    );
    if (!slots.rowCount) return done;
    for (const s of slots.rows) {
      if (s.active_pid) {
        await c.query('SELECT pg_terminate_backend($1)', [s.active_pid]);
        continue;
      }
      try {
        await c.query('SELECT pg_drop_replication_slot($1)', [s.slot_name]);
        done.push(`replication slot ${s.slot_name} dropped`);
      } catch (err) {
        // 55006: became active again between the two statements; 42704: already gone
        if (!['55006', '42704'].includes((err as { code?: string }).code ?? '')) throw err;
      }
    }
    if (Date.now() > deadline) throw ApplicationFailure.retryable(`replication slots of ${database} stay active`, 'SlotsActive');
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function recreateDatabase(serverUrl: string, database: string, label: string, rehearsalId: string): Promise<void> {
  assertScratch(database);
  await withClient(serverUrl, { label, applicationName: appName(rehearsalId, 'admin') }, async (c) => {
    // A retried attempt starts clean: a half-restored database would fail the restore or skew the numbers.
    await dropScratchDatabaseOn(c, serverUrl, database, rehearsalId);
    await c.query(`CREATE DATABASE ${qi(database)}`);
  });
}

/** Subscriptions in it, replication slots of it, then the database itself (sessions ended). Idempotent. */
async function dropScratchDatabaseOn(server: Client, serverUrl: string, database: string, rehearsalId: string): Promise<string[]> {
  assertScratch(database);
  const done: string[] = [];
  const row = await server.query<{ datallowconn: boolean }>('SELECT datallowconn FROM pg_database WHERE datname = $1', [database]);
  if (row.rowCount && row.rows[0].datallowconn) {
    done.push(
      ...(await withClient(
        withDatabase(serverUrl, database),
        { label: `scratch database ${database}`, applicationName: appName(rehearsalId, 'admin') },
        dropSubscriptionsIn,
      )),
    );
  }
  done.push(...(await dropSlotsOf(server, database)));
  if (row.rowCount) {
    await server.query(`DROP DATABASE IF EXISTS ${qi(database)} WITH (FORCE)`);
    done.push(`database ${database} dropped`);
  }
  return done;
}

export function createRehearsalActivities(deps: RehearsalDeps) {
  const resolve = createSecretResolver(deps);
  let rdsClient: RDSClient | undefined;
  const rds = () => deps.rds?.() ?? (rdsClient ??= new RDSClient({}));
  const pollMs = deps.rdsPollMs ?? 15_000;

  /** Heartbeats on a timer (long pg_dump / pg_restore / RDS waits), with the stage as details. */
  const beating = async <T>(stage: { stage: string }, fn: (ctx: Context) => Promise<T>): Promise<T> => {
    const ctx = Context.current();
    ctx.heartbeat(stage);
    const timer = setInterval(() => ctx.heartbeat(stage), 2_000);
    try {
      return await fn(ctx);
    } finally {
      clearInterval(timer);
    }
  };

  const sizeOf = (url: string, label: string, rehearsalId: string, reachableWithinMs?: number) =>
    withClient(
      url,
      {
        label,
        applicationName: appName(rehearsalId, 'admin'),
        ...(reachableWithinMs !== undefined ? { unreachableForMs: reachableWithinMs } : {}),
      },
      (c) => c.query<{ n: string }>('SELECT pg_database_size(current_database()) AS n').then((r) => Number(r.rows[0].n)),
    );

  const writeStagingSink = async (rehearsalId: string): Promise<string> => {
    const dir = stagingDir(rehearsalId);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, 'staging.env');
    if (!existsSync(file)) {
      await writeFile(
        file,
        `# staging config sink of rehearsal ${rehearsalId}: the rehearsed migration writes DATABASE_URL here instead of the real sink\n`,
        { mode: 0o600 },
      );
    }
    return file;
  };

  const activities = {
    /**
     * `pg_dump -Fd -j N` of the real source (read-only: nothing on it is frozen or changed), restored
     * with `pg_restore -j N --no-owner --no-acl` into a new scratch source database; an empty scratch
     * target database beside it (or on scratchTarget).
     */
    async prepareLogicalSnapshot(args: {
      rehearsalId: string;
      source: SecretRef;
      scratch: SecretRef;
      scratchTarget?: SecretRef;
      jobs: number;
    }): Promise<PreparedSnapshot> {
      const names = scratchNames(args.rehearsalId);
      const [sourceUrl, scratchUrl, scratchTargetUrl] = await Promise.all([
        resolve(args.source, 'migration.source.url'),
        resolve(args.scratch, 'snapshot.scratch'),
        resolve(args.scratchTarget ?? args.scratch, args.scratchTarget ? 'snapshot.scratchTarget' : 'snapshot.scratch'),
      ]);
      const stage = { stage: 'creating scratch databases' };
      return beating(stage, async (ctx) => {
        await recreateDatabase(scratchUrl, names.sourceDatabase, 'scratch server', args.rehearsalId);
        await recreateDatabase(scratchTargetUrl, names.targetDatabase, 'scratch target server', args.rehearsalId);
        const scratchSourceUrl = withDatabase(scratchUrl, names.sourceDatabase);
        const stagingSinkPath = await writeStagingSink(args.rehearsalId);
        const dumpDir = dumpDirOf(args.rehearsalId);
        await rm(dumpDir, { recursive: true, force: true });
        await mkdir(path.dirname(dumpDir), { recursive: true, mode: 0o700 });
        const jobs = String(Math.max(1, args.jobs));
        try {
          stage.stage = 'pg_dump of the source';
          const dumpStarted = Date.now();
          await runProgram(pgBinary('pg_dump'), ['--format=directory', `--jobs=${jobs}`, '--no-sync', `--file=${dumpDir}`], {
            env: libpqEnv(sourceUrl, appName(args.rehearsalId, 'dump')),
            signal: ctx.cancellationSignal,
          });
          const dumpMs = Date.now() - dumpStarted;
          stage.stage = 'pg_restore into the scratch source';
          const restoreStarted = Date.now();
          await runProgram(
            pgBinary('pg_restore'),
            [
              '--format=directory',
              `--jobs=${jobs}`,
              '--no-owner',
              '--no-acl',
              '--exit-on-error',
              `--dbname=${names.sourceDatabase}`,
              dumpDir,
            ],
            { env: libpqEnv(scratchSourceUrl, appName(args.rehearsalId, 'restore')), signal: ctx.cancellationSignal },
          );
          const restoreMs = Date.now() - restoreStarted;
          const sizeBytes = await sizeOf(scratchSourceUrl, 'scratch source', args.rehearsalId);
          return {
            sourceDatabase: names.sourceDatabase,
            targetDatabase: names.targetDatabase,
            sizeBytes,
            stagingSinkPath,
            description: `logical: pg_dump of ${describeRef(args.source)} (read-only) restored into ${names.sourceDatabase} on ${describeRef(args.scratch)}; scratch target ${names.targetDatabase} on ${describeRef(args.scratchTarget ?? args.scratch)}`,
            details: { dumpMs, restoreMs, scratchServer: describeUrl(scratchUrl).replace(/\/[^/]*$/, ''), source: describeUrl(sourceUrl) },
          };
        } finally {
          // The dump holds customer data: keep it no longer than needed.
          await rm(dumpDir, { recursive: true, force: true });
        }
      });
    },

    /**
     * RestoreDBInstanceFromDBSnapshot into a new instance (reused on a retry), waits until it is
     * available, keeps its URL (credentials from `credentials`, host and port of the restored
     * endpoint) in an SSM SecureString parameter the child's source reference names, creates the
     * scratch target database, and waits until the endpoint accepts connections.
     */
    async prepareRdsSnapshot(args: {
      rehearsalId: string;
      dbSnapshotIdentifier: string;
      instanceClass: string;
      dbSubnetGroupName?: string;
      vpcSecurityGroupIds?: string[];
      credentials: SecretRef;
      scratchTarget: SecretRef;
      parameterName: string;
      availableWithinMs: number;
      reachableWithinMs: number;
    }): Promise<PreparedSnapshot & { instance: string; endpoint: string }> {
      const names = scratchNames(args.rehearsalId);
      const stage = { stage: 'restoring the RDS snapshot' };
      return beating(stage, async (ctx) => {
        const client = rds();
        let instance = await describeInstance(client, names.instance);
        if (!instance) {
          const out = await client.send(
            new RestoreDBInstanceFromDBSnapshotCommand({
              DBInstanceIdentifier: names.instance,
              DBSnapshotIdentifier: args.dbSnapshotIdentifier,
              DBInstanceClass: args.instanceClass,
              MultiAZ: false,
              PubliclyAccessible: false,
              DeletionProtection: false,
              ...(args.dbSubnetGroupName ? { DBSubnetGroupName: args.dbSubnetGroupName } : {}),
              ...(args.vpcSecurityGroupIds ? { VpcSecurityGroupIds: args.vpcSecurityGroupIds } : {}),
              Tags: [
                { Key: 'pgmig:rehearsal', Value: args.rehearsalId },
                { Key: 'pgmig:purpose', Value: 'rehearsal scratch source, deleted when the rehearsal ends' },
              ],
            }),
          );
          instance = out.DBInstance;
        }
        stage.stage = 'waiting for the restored instance to be available';
        const deadline = Date.now() + args.availableWithinMs;
        while (instance?.DBInstanceStatus !== 'available' || !instance.Endpoint?.Address) {
          if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason;
          if (Date.now() > deadline) {
            throw ApplicationFailure.nonRetryable(
              `restored instance ${names.instance} is ${instance?.DBInstanceStatus ?? 'missing'} after ${Math.round(args.availableWithinMs / 1000)} s (snapshot.availableWithin)`,
              'RestoreTimedOut',
            );
          }
          await new Promise((r) => setTimeout(r, pollMs));
          instance = await describeInstance(client, names.instance);
        }
        const endpoint = `${instance.Endpoint.Address}:${instance.Endpoint.Port ?? 5432}`;
        const url = new URL(await resolve(args.credentials, 'snapshot.credentials'));
        url.hostname = instance.Endpoint.Address;
        url.port = String(instance.Endpoint.Port ?? 5432);
        const sourceUrl = url.toString();
        rememberSecret(sourceUrl);
        await deps
          .ssm()
          .send(new PutParameterCommand({ Name: args.parameterName, Value: sourceUrl, Type: 'SecureString', Overwrite: true }));

        const targetServerUrl = await resolve(args.scratchTarget, 'snapshot.scratchTarget');
        await recreateDatabase(targetServerUrl, names.targetDatabase, 'scratch target server', args.rehearsalId);
        const stagingSinkPath = await writeStagingSink(args.rehearsalId);

        stage.stage = `connecting to the restored endpoint ${endpoint}`;
        let sizeBytes: number;
        const reachDeadline = Date.now() + args.reachableWithinMs;
        for (;;) {
          try {
            sizeBytes = await sizeOf(
              sourceUrl,
              `restored instance ${names.instance}`,
              args.rehearsalId,
              Math.max(0, reachDeadline - Date.now()),
            );
            break;
          } catch (err) {
            const e = err as ApplicationFailure;
            // A fresh endpoint's DNS name may take a moment to resolve; anything else is final.
            if (e.type === 'HostNotFound' && Date.now() < reachDeadline) {
              await new Promise((r) => setTimeout(r, Math.min(2_000, pollMs)));
              continue;
            }
            throw ApplicationFailure.nonRetryable(
              `the restored instance ${names.instance} (endpoint ${endpoint}) is not reachable from this worker within ${Math.round(args.reachableWithinMs / 1000)} s (snapshot.reachableWithin): ${redact(e.message)}`,
              'RestoredInstanceUnreachable',
            );
          }
        }
        return {
          sourceDatabase: new URL(sourceUrl).pathname.replace(/^\//, ''),
          targetDatabase: names.targetDatabase,
          sizeBytes,
          stagingSinkPath,
          instance: names.instance,
          endpoint,
          description: `rds-snapshot: ${args.dbSnapshotIdentifier} restored into ${names.instance} (${args.instanceClass}); scratch target ${names.targetDatabase} on ${describeRef(args.scratchTarget)}`,
          details: { instance: names.instance, endpoint, parameter: args.parameterName },
        };
      });
    },

    /** Teardown: one scratch database with its subscriptions and replication slots. Idempotent. */
    async dropScratchDatabase(args: { rehearsalId: string; server: SecretRef; database: string }): Promise<string[]> {
      const serverUrl = await resolve(args.server, 'scratch server');
      const done = await withClient(serverUrl, { label: 'scratch server', applicationName: appName(args.rehearsalId, 'admin') }, (c) =>
        dropScratchDatabaseOn(c, serverUrl, args.database, args.rehearsalId),
      );
      return done.length ? done : [`database ${args.database} was not there`];
    },

    /** Teardown: DeleteDBInstance (no final snapshot) and wait until it is gone; the SSM parameter with its URL. Idempotent. */
    async deleteRestoredInstance(args: { rehearsalId: string; parameterName: string; goneWithinMs: number }): Promise<string[]> {
      const names = scratchNames(args.rehearsalId);
      return beating({ stage: `deleting ${names.instance}` }, async () => {
        const client = rds();
        const done: string[] = [];
        let instance = await describeInstance(client, names.instance);
        if (instance && instance.DBInstanceStatus !== 'deleting') {
          await client.send(
            new DeleteDBInstanceCommand({ DBInstanceIdentifier: names.instance, SkipFinalSnapshot: true, DeleteAutomatedBackups: true }),
          );
          done.push(`instance ${names.instance} deleted (no final snapshot)`);
        }
        const deadline = Date.now() + args.goneWithinMs;
        while ((instance = await describeInstance(client, names.instance))) {
          if (Date.now() > deadline)
            throw ApplicationFailure.retryable(`instance ${names.instance} is still ${instance.DBInstanceStatus}`, 'InstanceNotGone');
          await new Promise((r) => setTimeout(r, pollMs));
        }
        if (!done.length) done.push(`instance ${names.instance} was not there`);
        try {
          await deps.ssm().send(new DeleteParameterCommand({ Name: args.parameterName }));
          done.push(`parameter ${args.parameterName} deleted`);
        } catch (err) {
          if ((err as Error).name !== 'ParameterNotFound') throw err;
        }
        return done;
      });
    },

    /** Teardown: the staging config sink (and its backup), and the child's dump directory if it left one. */
    async removeStagingFiles(args: { rehearsalId: string; childMigrationId: string }): Promise<string[]> {
      const done: string[] = [];
      for (const dir of [stagingDir(args.rehearsalId), path.dirname(dumpDirOf(args.rehearsalId)), workDir(args.childMigrationId)]) {
        if (existsSync(dir)) {
          await rm(dir, { recursive: true, force: true });
          done.push(`removed ${dir}`);
        }
      }
      return done.length ? done : ['no staging files on this worker'];
    },

    /** What the child's `status` query knows beyond its result: replication lag at cutover, and its steps when it was cancelled. */
    async rehearsalChildStatus(args: {
      workflowId: string;
    }): Promise<(Omit<ChildMeasurements, 'workflowId' | 'outcome' | 'reason'> & { error?: string }) | null> {
      let status: MigrationStatus;
      try {
        status = await Context.current().client.workflow.getHandle(args.workflowId).query<MigrationStatus>('status');
      } catch (err) {
        // A child that failed before it registered its query (bad input) has no status: nothing more to learn.
        if (/query|not found|unknown/i.test((err as Error).message ?? '')) return null;
        throw err;
      }
      const v = status.verification?.state;
      return {
        steps: status.steps,
        compensations: status.compensations,
        decisions: status.decisions,
        freezeWindow: status.freezeWindow,
        verification: v === 'passed' ? 'passed' : v === 'failed' ? 'failed' : 'not-run',
        ...(status.replication
          ? {
              replication: {
                lagBytes: status.replication.lagBytes ?? null,
                lagSeconds: status.replication.lagSeconds ?? null,
                ...(status.replication.caughtUp !== undefined ? { caughtUp: status.replication.caughtUp } : {}),
              },
            }
          : {}),
        ...(status.error ? { error: status.error } : {}),
      };
    },

    /** Writes `<rehearsalId>.json`, `.md` and the migration's `phases.svg`, with the trend against the earlier reports there. */
    async writeRehearsalReport(args: { report: RehearsalReport; reportDir?: string }): Promise<{ files: ReportFiles; trend: Trend }> {
      const dir = reportDirFor(args.report.migrationId, args.reportDir);
      const { files, trend } = await storeReport(args.report, dir);
      return { files, trend };
    },
  };

  return redactingActivities(activities);
}

async function describeInstance(client: RDSClient, id: string): Promise<DBInstance | undefined> {
  try {
    const out = await client.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }));
    return out.DBInstances?.[0];
  } catch (err) {
    if ((err as Error).name === 'DBInstanceNotFoundFault' || (err as Error).name === 'DBInstanceNotFound') return undefined;
    throw err;
  }
}

export type RehearsalActivities = ReturnType<typeof createRehearsalActivities>;
