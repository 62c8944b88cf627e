/**
 * The DMS method's control plane (activities/methods/dms) against moto: a real HTTP server, the real AWS
 * SDK v3 clients, no mocks. moto keeps DMS resources as records and moves no data: full load, CDC,
 * validation results and real latency are not exercised here (see the DMS notes of the README).
 *
 * What moto 5.2.1 does differently from AWS, and how these tests deal with it:
 *  - Task and replication-instance answers carry timestamps as ISO-8601 strings; the SDK wants epoch
 *    seconds and refuses to parse them. `motoTimestampsAsEpochSeconds` re-encodes them (below).
 *  - A task never leaves `creating` (AWS: `ready` within about a minute), and StartReplicationTask
 *    accepts it anyway. The wait for `ready` is shown to time out retryably; the rest of the
 *    tests create the task without that wait.
 *  - DescribeTableStatistics, CreateReplicationConfig (DMS Serverless), ModifyEndpoint and
 *    AddTagsToResource are not implemented (HTTP 500 with an HTML page).
 */
import { randomBytes } from 'node:crypto';
import { PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  DatabaseMigrationServiceClient,
  DeleteEndpointCommand,
  DescribeEndpointsCommand,
  DescribeReplicationInstancesCommand,
  DescribeReplicationTasksCommand,
  ListTagsForResourceCommand,
  StopReplicationTaskCommand,
} from '@aws-sdk/client-database-migration-service';
import { afterAll, describe, expect, it } from 'vitest';
import type { WaitProgress } from '../../activities/aws/poll';
import {
  cdcLatency,
  dmsFailure,
  dmsResourceNames,
  ensureEndpoints,
  ensureReplicationInstance,
  ensureTask,
  selectedTables,
  startTask,
  stopAndDelete,
  taskProgress,
  type DmsClients,
  type DmsMigration,
} from '../../activities/methods/dms/aws-dms';
import { loadStackEnv } from '../../stack';
import { motoConfig, motoDmsClients } from '../helpers/moto';
import { applicationFailureOf, timed } from '../helpers/expect';

const env = loadStackEnv();
const config = motoConfig(env);

const clients: DmsClients = motoDmsClients(env);

const run = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const m: DmsMigration = { migrationId: `dmstest-${run}` };
const names = dmsResourceNames(m);
/** Waits poll every 20 ms here; on AWS the defaults are 5-15 s. */
const fast = { intervalMs: 20, timeoutMs: 10_000 };

// Passwords with characters that need URL-encoding; neither may appear anywhere we can see.
const sourcePassword = `S:p@ss/${randomBytes(6).toString('hex')}`;
const targetPassword = `T-${randomBytes(8).toString('hex')}`;
const sourceUrl = `postgres://app:${encodeURIComponent(sourcePassword)}@source-pg.example.test:5432/d8abcdef`;
const targetUrl = `postgresql://rds_master:${targetPassword}@shop-rds.example.test:5432/appdb?sslmode=verify-full`;
const secrets = [sourcePassword, encodeURIComponent(sourcePassword), targetPassword];

const tables = [
  { schema: 'shop', name: 'orders' },
  { schema: 'billing', name: 'LedgerEntries' },
  { schema: 'Reporting', name: 'Monthly Totals' },
  { schema: 'public', name: 'pgbench_accounts' },
];

const timings: Record<string, number> = {};
function expectNoSecret(value: unknown): void {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  for (const s of secrets) expect(text).not.toContain(s);
}

let sourceEndpointArn = '';
let targetEndpointArn = '';
let replicationInstanceArn = '';
let taskArn = '';

afterAll(async () => {
  // Whatever a failed test left behind (a no-op after the cleanup test).
  await stopAndDelete(clients, m, fast).catch(() => undefined);
  await stopAndDelete(clients, { migrationId: `${m.migrationId}-sm` }, fast).catch(() => undefined);
  await stopAndDelete(clients, { migrationId: `dmstest-bad-${run}-state` }, fast).catch(() => undefined);
  console.log(`[dms] timings against moto (ms): ${JSON.stringify(timings)}`);
});

describe('DMS method against moto', () => {
  it('names every resource after the migration, within DMS identifier rules', () => {
    expect(names).toEqual({
      source: `pgmig-${m.migrationId}-source`,
      target: `pgmig-${m.migrationId}-target`,
      instance: `pgmig-${m.migrationId}-instance`,
      task: `pgmig-${m.migrationId}-task`,
    });
    const long = dmsResourceNames({ migrationId: 'a'.repeat(63) });
    expect(long.instance.length).toBeLessThanOrEqual(63);
    expect(dmsResourceNames({ migrationId: 'a'.repeat(63) })).toEqual(long);
    expect(dmsResourceNames({ migrationId: 'shop--x-' }).task).toMatch(/^pgmig-shop-x-[0-9a-f]{8}-task$/);
  });

  it('ensureEndpoints creates source and target once, returns the same ARNs again, and no password anywhere', async () => {
    const first = await timed(timings, 'ensureEndpoints (create)', () => ensureEndpoints(clients, m, { sourceUrl, targetUrl }, fast));
    const second = await timed(timings, 'ensureEndpoints (found)', () => ensureEndpoints(clients, m, { sourceUrl, targetUrl }, fast));
    expect(first.created).toEqual({ source: true, target: true });
    expect(second.created).toEqual({ source: false, target: false });
    expect(second.sourceEndpointArn).toBe(first.sourceEndpointArn);
    expect(second.targetEndpointArn).toBe(first.targetEndpointArn);
    expect(first.sourceEndpointArn).toMatch(/^arn:aws:dms:us-east-1:\d{12}:endpoint:/);
    expect(first.warnings).toEqual([]);
    expectNoSecret(first);
    ({ sourceEndpointArn, targetEndpointArn } = first);

    const described = await clients.dms.send(
      new DescribeEndpointsCommand({ Filters: [{ Name: 'endpoint-id', Values: [names.source, names.target] }] }),
    );
    expectNoSecret(described.Endpoints);
    const byId = Object.fromEntries((described.Endpoints ?? []).map((e) => [e.EndpointIdentifier, e]));
    expect(byId[names.source]).toMatchObject({
      EndpointArn: sourceEndpointArn,
      EndpointType: 'source',
      EngineName: 'postgres',
      ServerName: 'source-pg.example.test',
      Port: 5432,
      DatabaseName: 'd8abcdef',
      Username: 'app',
      SslMode: 'require', // no sslmode in the URL: Heroku refuses unencrypted connections
      PostgreSQLSettings: { HeartbeatEnable: true, CaptureDdls: false, MapBooleanAsBoolean: true },
    });
    expect(byId[names.target]).toMatchObject({
      EndpointArn: targetEndpointArn,
      EndpointType: 'target',
      ServerName: 'shop-rds.example.test',
      DatabaseName: 'appdb',
      Username: 'rds_master',
      SslMode: 'verify-full',
      PostgreSQLSettings: { AfterConnectScript: "SET session_replication_role = 'replica'", MapBooleanAsBoolean: true },
    });
    for (const e of described.Endpoints ?? []) expect((e as Record<string, unknown>).Password).toBeUndefined();

    const tagged = await clients.dms.send(new ListTagsForResourceCommand({ ResourceArn: sourceEndpointArn }));
    expect(tagged.TagList).toEqual(expect.arrayContaining([expect.objectContaining({ Key: 'pgmig:migration-id', Value: m.migrationId })]));
  });

  it('ensureEndpoints with a Secrets Manager secret sends no password at all', async () => {
    const sm: DmsMigration = { migrationId: `${m.migrationId}-sm` };
    const secret = {
      secretsManagerSecretId: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:heroku-db-AbCdEf',
      accessRoleArn: 'arn:aws:iam::123456789012:role/dms-secrets-access',
      databaseName: 'd8abcdef',
    };
    const out = await ensureEndpoints(
      clients,
      sm,
      { source: secret, target: { ...secret, databaseName: 'appdb', sslMode: 'verify-full' } },
      fast,
    );
    const again = await ensureEndpoints(
      clients,
      sm,
      { source: secret, target: { ...secret, databaseName: 'appdb', sslMode: 'verify-full' } },
      fast,
    );
    expect(again.sourceEndpointArn).toBe(out.sourceEndpointArn);
    const described = await clients.dms.send(
      new DescribeEndpointsCommand({ Filters: [{ Name: 'endpoint-arn', Values: [out.sourceEndpointArn] }] }),
    );
    const e = described.Endpoints?.[0];
    expect(e?.PostgreSQLSettings).toMatchObject({
      SecretsManagerSecretId: secret.secretsManagerSecretId,
      SecretsManagerAccessRoleArn: secret.accessRoleArn,
      DatabaseName: 'd8abcdef',
    });
    expect(e?.Username).toBeUndefined();
    expect(e?.ServerName).toBeUndefined();
    const gone = await stopAndDelete(clients, sm, fast);
    expect(gone).toMatchObject({ sourceEndpoint: out.sourceEndpointArn, targetEndpoint: out.targetEndpointArn });
  });

  it('ensureReplicationInstance waits (reporting progress) until available, and finds it again', async () => {
    const progress: WaitProgress[] = [];
    replicationInstanceArn = await timed(timings, 'ensureReplicationInstance (create + wait)', () =>
      ensureReplicationInstance(clients, m, { ...fast, onProgress: (p) => progress.push(p) }),
    );
    expect(replicationInstanceArn).toMatch(/^arn:aws:dms:us-east-1:\d{12}:rep:/);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toMatchObject({ resource: `replication instance ${names.instance}`, status: 'done' });

    const again = await timed(timings, 'ensureReplicationInstance (found)', () => ensureReplicationInstance(clients, m, fast));
    expect(again).toBe(replicationInstanceArn);
    const described = await clients.dms.send(
      new DescribeReplicationInstancesCommand({ Filters: [{ Name: 'replication-instance-id', Values: [names.instance] }] }),
    );
    expect(described.ReplicationInstances).toHaveLength(1);
    expect(described.ReplicationInstances?.[0]).toMatchObject({
      ReplicationInstanceStatus: 'available',
      ReplicationInstanceClass: 'dms.t3.medium',
      AllocatedStorage: 50,
    });
  });

  it('ensureTask: full-load-and-cdc, one selection rule per table with mixed case kept, DO_NOTHING, validation and logging on', async () => {
    const spec = { sourceEndpointArn, targetEndpointArn, replicationInstanceArn, tables };
    // moto leaves a task in `creating` for ever (AWS: `ready` within about a minute), so waiting for
    // `ready` ends in the retryable timeout a Temporal retry would resume from.
    const waited = await applicationFailureOf(
      timed(timings, 'ensureTask (create, wait for ready: times out on moto)', () =>
        ensureTask(clients, m, { ...spec, intervalMs: 20, timeoutMs: 300 }),
      ),
    );
    expect(waited.nonRetryable).toBe(false);
    expect(waited.type).toBe('DmsWaitTimeout');
    expect(waited.message).toMatch(/still 'creating'/);

    // The retry finds the task the first attempt created (no second task, no conflict).
    taskArn = await timed(timings, 'ensureTask (found, no wait)', () => ensureTask(clients, m, { ...spec, ...fast, waitForReady: false }));
    expect(taskArn).toMatch(/^arn:aws:dms:us-east-1:\d{12}:task:/);

    const described = await clients.dms.send(
      new DescribeReplicationTasksCommand({ Filters: [{ Name: 'replication-task-id', Values: [names.task] }] }),
    );
    expect(described.ReplicationTasks).toHaveLength(1);
    const task = described.ReplicationTasks![0];
    expect(task).toMatchObject({
      ReplicationTaskArn: taskArn,
      MigrationType: 'full-load-and-cdc',
      SourceEndpointArn: sourceEndpointArn,
      TargetEndpointArn: targetEndpointArn,
      ReplicationInstanceArn: replicationInstanceArn,
    });
    expect(selectedTables(task.TableMappings!)).toEqual(tables);
    const rules = JSON.parse(task.TableMappings!).rules as Array<Record<string, unknown>>;
    expect(rules).toHaveLength(tables.length);
    expect(rules[1]).toEqual({
      'rule-type': 'selection',
      'rule-id': '2',
      'rule-name': 'include-2',
      'object-locator': { 'schema-name': 'billing', 'table-name': 'LedgerEntries' },
      'rule-action': 'include',
      filters: [],
    });
    const settings = JSON.parse(task.ReplicationTaskSettings!);
    expect(settings.FullLoadSettings.TargetTablePrepMode).toBe('DO_NOTHING');
    expect(settings.ValidationSettings.EnableValidation).toBe(true);
    expect(settings.Logging.EnableLogging).toBe(true);
    expect(settings.TargetMetadata).toMatchObject({ SupportLobs: true, FullLobMode: true });

    // The same migration with another table selection is a conflict no retry can fix.
    const conflict = await applicationFailureOf(ensureTask(clients, m, { ...spec, ...fast, tables: tables.slice(1), waitForReady: false }));
    expect(conflict.nonRetryable).toBe(true);
    expect(conflict.type).toBe('DmsTaskConflict');
  });

  it("the SDK alone cannot read moto's task answers (why the timestamp adapter exists)", async () => {
    const plain = new DatabaseMigrationServiceClient({ ...config, maxAttempts: 1 });
    const outcome = await plain
      .send(new DescribeReplicationTasksCommand({ Filters: [{ Name: 'replication-task-id', Values: [names.task] }] }))
      .then(
        () => 'parsed',
        (e: Error) => e.message,
      );
    // A later moto that writes epoch seconds makes the adapter unnecessary; this one does not.
    if (outcome !== 'parsed') expect(outcome).toMatch(/Expected real number/);
    console.log(`[dms] plain SDK DescribeReplicationTasks against moto: ${outcome.split('\n')[0]}`);
  });

  it('taskProgress before the start: status, no full load yet', async () => {
    const before = await timed(timings, 'taskProgress (not started)', () => taskProgress(clients, taskArn));
    expect(before.status).toBe('creating');
    expect(before.fullLoadComplete).toBe(false);
  });

  it('startTask starts the task (running) and is a no-op on a running task', async () => {
    const started = await timed(timings, 'startTask', () => startTask(clients, taskArn, fast));
    expect(started).toEqual({ status: 'running', startType: 'start-replication', alreadyRunning: false });
    const again = await startTask(clients, taskArn, fast);
    expect(again).toEqual({ status: 'running', alreadyRunning: true });
  });

  it('taskProgress while running: task statistics, and table statistics or why they are missing', async () => {
    const p = await timed(timings, 'taskProgress (running)', () => taskProgress(clients, taskArn));
    expect(p.status).toBe('running');
    for (const k of ['fullLoadProgressPercent', 'tablesLoaded', 'tablesLoading', 'tablesQueued', 'tablesErrored'] as const) {
      expect(typeof p[k]).toBe('number');
    }
    // moto reports fixed statistics (100 %, 1 table loaded) for every task.
    expect(p.fullLoadComplete).toBe(p.fullLoadProgressPercent >= 100 && p.tablesLoading + p.tablesQueued + p.tablesErrored === 0);
    if (p.tablesUnavailable !== undefined) {
      // moto 5.2.1 does not implement DescribeTableStatistics: an HTML page with HTTP 500.
      expect(p.tables).toEqual([]);
      expect(p.tablesUnavailable).toMatch(/DescribeTableStatistics .*HTTP 500/);
    } else {
      expect(Array.isArray(p.tables)).toBe(true);
    }
    expectNoSecret(p);
  });

  it('cdcLatency: undefined before DMS published anything, then the latest datapoint of the last 5 minutes', async () => {
    const none = await timed(timings, 'cdcLatency (no datapoint)', () => cdcLatency(clients, m, new Date()));
    expect(none).toEqual({ sourceSeconds: undefined, targetSeconds: undefined });

    // On AWS, DMS itself publishes CDCLatencySource/Target once a minute while CDC runs. moto runs no
    // replication, so the test publishes the datapoints DMS would, with DMS's namespace and dimensions
    // (the task dimension is the last part of the task ARN; in moto that is the task's name).
    const now = new Date();
    const dimensions = [
      { Name: 'ReplicationInstanceIdentifier', Value: names.instance },
      { Name: 'ReplicationTaskIdentifier', Value: taskArn.slice(taskArn.lastIndexOf(':') + 1) },
    ];
    const at = (secondsAgo: number) => new Date(now.getTime() - secondsAgo * 1000);
    await clients.cloudwatch.send(
      new PutMetricDataCommand({
        Namespace: 'AWS/DMS',
        MetricData: [
          { MetricName: 'CDCLatencySource', Dimensions: dimensions, Unit: 'Seconds', Value: 9, Timestamp: at(200) },
          { MetricName: 'CDCLatencySource', Dimensions: dimensions, Unit: 'Seconds', Value: 2, Timestamp: at(20) },
          { MetricName: 'CDCLatencyTarget', Dimensions: dimensions, Unit: 'Seconds', Value: 4, Timestamp: at(20) },
          // Older than 5 minutes: not looked at.
          { MetricName: 'CDCLatencyTarget', Dimensions: dimensions, Unit: 'Seconds', Value: 600, Timestamp: at(900) },
        ],
      }),
    );
    const latency = await timed(timings, 'cdcLatency (datapoints)', () => cdcLatency(clients, m, new Date(now.getTime() + 1000)));
    expect(latency).toMatchObject({ sourceSeconds: 2, targetSeconds: 4 });
    expect(latency.sourceAt).toBeDefined();
    // The same through explicit identifiers.
    const byRef = await cdcLatency(clients, { taskArn, replicationInstanceIdentifier: names.instance }, new Date(now.getTime() + 1000));
    expect(byRef).toMatchObject({ sourceSeconds: 2, targetSeconds: 4 });
  });

  it('stopAndDelete stops the task and deletes everything; a second call deletes nothing', async () => {
    const deleted = await timed(timings, 'stopAndDelete', () => stopAndDelete(clients, m, fast));
    expect(deleted).toEqual({
      stoppedTask: true,
      task: taskArn,
      sourceEndpoint: sourceEndpointArn,
      targetEndpoint: targetEndpointArn,
      replicationInstance: replicationInstanceArn,
    });
    const tasks = await clients.dms.send(
      new DescribeReplicationTasksCommand({ Filters: [{ Name: 'replication-task-id', Values: [names.task] }] }),
    );
    expect(tasks.ReplicationTasks ?? []).toEqual([]);
    const endpoints = await clients.dms.send(
      new DescribeEndpointsCommand({ Filters: [{ Name: 'endpoint-id', Values: [names.source, names.target] }] }),
    );
    expect(endpoints.Endpoints ?? []).toEqual([]);
    const instances = await clients.dms.send(
      new DescribeReplicationInstancesCommand({ Filters: [{ Name: 'replication-instance-id', Values: [names.instance] }] }),
    );
    expect(instances.ReplicationInstances ?? []).toEqual([]);

    const again = await timed(timings, 'stopAndDelete (nothing left)', () => stopAndDelete(clients, m, fast));
    expect(again).toEqual({ stoppedTask: false });
  });
});

describe('DMS method: errors no retry can fix', () => {
  const bad: DmsMigration = { migrationId: `dmstest-bad-${run}` };

  async function expectNothingCreated(): Promise<void> {
    const n = dmsResourceNames(bad);
    const out = await clients.dms.send(new DescribeEndpointsCommand({ Filters: [{ Name: 'endpoint-id', Values: [n.source, n.target] }] }));
    expect(out.Endpoints ?? []).toEqual([]);
  }

  it('a URL without a host: non-retryable, names the problem, not the password', async () => {
    // libpq's Unix-socket form: no host in the authority, credentials as parameters.
    const hostless = `postgres:///d8abcdef?user=app&password=${encodeURIComponent(sourcePassword)}&host=/var/run/postgresql`;
    const f = await applicationFailureOf(ensureEndpoints(clients, bad, { sourceUrl: hostless, targetUrl }, fast));
    expect(f.nonRetryable).toBe(true);
    expect(f.type).toBe('DmsInvalidInput');
    expect(f.message).toMatch(/source .*no host/);
    expectNoSecret(f.message);
    await expectNothingCreated();
  });

  it('an engine other than PostgreSQL: non-retryable, without the password', async () => {
    const f = await applicationFailureOf(
      ensureEndpoints(clients, bad, { sourceUrl, targetUrl: `mysql://admin:${targetPassword}@db.example.com:3306/appdb` }, fast),
    );
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(/target .*engine 'mysql' is not PostgreSQL/);
    expectNoSecret(f.message);
    await expectNothingCreated();
  });

  it('an unknown sslmode, an unparseable URL, a missing password: non-retryable, without the password', async () => {
    const cases = [
      { targetUrl: `postgres://u:${targetPassword}@h.example.com/appdb?sslmode=sometimes`, expected: /sslmode 'sometimes'/ },
      { targetUrl: `postgres://u:${targetPassword}@h.example.com:99999/appdb`, expected: /cannot be parsed/ },
      { targetUrl: `postgres://u:${targetPassword}@/appdb`, expected: /cannot be parsed/ },
      { targetUrl: 'postgres://u@h.example.com/appdb', expected: /no password/ },
    ];
    for (const c of cases) {
      const f = await applicationFailureOf(ensureEndpoints(clients, bad, { sourceUrl, targetUrl: c.targetUrl }, fast));
      expect(f.nonRetryable).toBe(true);
      expect(f.message).toMatch(c.expected);
      expectNoSecret(f.message);
    }
    await expectNothingCreated();
  });

  it('invalid instance parameters and migration ids are refused before AWS is called', async () => {
    const cls = await applicationFailureOf(ensureReplicationInstance(clients, bad, { instanceClass: 'm5.large', ...fast }));
    expect(cls.nonRetryable).toBe(true);
    expect(cls.message).toMatch(/instanceClass 'm5.large'/);
    const id = await applicationFailureOf(ensureReplicationInstance(clients, { migrationId: 'no spaces please' }, fast));
    expect(id.nonRetryable).toBe(true);
    const empty = await applicationFailureOf(
      ensureTask(clients, bad, {
        sourceEndpointArn: 'arn:a',
        targetEndpointArn: 'arn:b',
        replicationInstanceArn: 'arn:c',
        tables: [],
        ...fast,
      }),
    );
    expect(empty.message).toMatch(/at least one table/);
  });

  it('a task that does not exist: non-retryable', async () => {
    const missing = `arn:aws:dms:us-east-1:123456789012:task:${dmsResourceNames(bad).task}`;
    const f = await applicationFailureOf(taskProgress(clients, missing));
    expect(f.nonRetryable).toBe(true);
    expect(f.type).toBe('DmsTaskNotFound');
    const s = await applicationFailureOf(startTask(clients, missing, fast));
    expect(s.nonRetryable).toBe(true);
  });

  it('errors the server sends: ResourceNotFoundFault is non-retryable, InvalidResourceStateFault retryable', async () => {
    const notFound = await clients.dms
      .send(new DeleteEndpointCommand({ EndpointArn: 'arn:aws:dms:us-east-1:123456789012:endpoint:NOSUCHENDPOINT' }))
      .catch((e: unknown) => e);
    const f = dmsFailure('DeleteEndpoint', notFound);
    expect(f).toMatchObject({ nonRetryable: true, type: 'ResourceNotFoundFault' });
    expect(f.message).toMatch(/^DeleteEndpoint: ResourceNotFoundFault \(HTTP 400\): /);

    // moto refuses to stop a task that is not running, as AWS does.
    const sm = { migrationId: `${bad.migrationId}-state` };
    const eps = await ensureEndpoints(clients, sm, { sourceUrl, targetUrl }, fast);
    const ri = await ensureReplicationInstance(clients, sm, fast);
    const arn = await ensureTask(clients, sm, {
      sourceEndpointArn: eps.sourceEndpointArn,
      targetEndpointArn: eps.targetEndpointArn,
      replicationInstanceArn: ri,
      tables,
      waitForReady: false,
      ...fast,
    });
    const state = await clients.dms.send(new StopReplicationTaskCommand({ ReplicationTaskArn: arn })).catch((e: unknown) => e);
    const r = dmsFailure('StopReplicationTask', state);
    expect(r).toMatchObject({ nonRetryable: false, type: 'InvalidResourceStateFault' });
    expect(await stopAndDelete(clients, sm, fast)).toMatchObject({ stoppedTask: false, task: arn, replicationInstance: ri });
  });
});
