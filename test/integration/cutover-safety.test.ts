/**
 * Cutover safety around the database: the Heroku config var swap (add-on detached, so a credential
 * rotation cannot revert it), maintenance mode, workers scaled to 0 and back, one coordinated
 * restart, HTTP health checks, and a Route 53 weighted shift with health gates. A failure injected
 * after every forward step leaves config vars, attachments, maintenance, dyno counts, DNS weights and
 * TTLs and the source's writability exactly as they were. No credential reaches history or logs.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ChangeResourceRecordSetsCommand,
  CreateHostedZoneCommand,
  ListResourceRecordSetsCommand,
  Route53Client,
} from '@aws-sdk/client-route-53';
import { WorkflowFailedError } from '@temporalio/client';
import { DefaultLogger, Runtime, type LogEntry } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MigrationInputDraft } from '../../contract/input';
import { approveUpdate, rejectUpdate, statusQuery } from '../../signals';
import { startHerokuStandIn, type HerokuStandIn } from '../heroku-stand-in';
import {
  SHAPES_ONLY,
  failingAfter,
  historyText,
  openSandbox,
  query,
  recordHistory,
  sourceWritable,
  targetTableCount,
  type Sandbox,
} from '../helpers/harness';
import { motoConfig } from '../helpers/moto';
import { migrationResult } from '../../signals/outcome';

// Everything the workers of this file log, to prove no credential is in it.
const logs: string[] = [];
Runtime.install({
  logger: new DefaultLogger('DEBUG', (entry: LogEntry) => logs.push(`${entry.message} ${JSON.stringify(entry.meta ?? {})}`)),
});

let sandbox: Sandbox;
let heroku: HerokuStandIn;
let route53: Route53Client;
let zoneId: string;
let recordName: string;
let probe: Server;
let probeUrl: string;
/** The canary endpoint answers 200 this many times, then 500 (Infinity: always healthy). */
let canaryHealthyFor = Infinity;
const token = `heroku-${randomBytes(12).toString('hex')}`;
const tokenRef = `HEROKU_TOKEN_${randomBytes(3).toString('hex').toUpperCase()}`;
const APP = 'shop-prod';

beforeAll(async () => {
  sandbox = await openSandbox('safety', { scale: SHAPES_ONLY });
  process.env[tokenRef] = token;
  heroku = await startHerokuStandIn({ tokens: [token] });
  heroku.seedApp(APP, { formation: { web: 2, worker: 3, clock: 1 }, configVars: { RAILS_ENV: 'production' } });
  heroku.seedPostgres(APP, { url: sandbox.sourceUrl });

  probe = createServer((req, res) => {
    if (req.url === '/canary') {
      res.statusCode = canaryHealthyFor-- > 0 ? 200 : 500;
    } else res.statusCode = 200;
    res.end('ok');
  });
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  probeUrl = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;

  route53 = new Route53Client(motoConfig(sandbox.env));
  recordName = `db-${randomBytes(3).toString('hex')}.shop.example.com`;
  const zone = await route53.send(
    new CreateHostedZoneCommand({ Name: `${recordName.split('.').slice(1).join('.')}.`, CallerReference: recordName }),
  );
  zoneId = zone.HostedZone!.Id!;
  await seedDns();
});

afterAll(async () => {
  delete process.env[tokenRef];
  await heroku?.close();
  await new Promise((r) => probe?.close(r));
  await sandbox?.close();
});

function input(overrides: Partial<MigrationInputDraft> = {}): MigrationInputDraft {
  const herokuRef = { app: APP, token: { env: tokenRef }, apiUrl: heroku.url };
  return sandbox.input({
    configSink: { type: 'heroku', ...herokuRef },
    target: { url: { env: sandbox.targetRef }, urlParams: { sslmode: 'disable' } },
    app: { heroku: { ...herokuRef, scaleDown: 'all-but-web' }, healthUrls: [`${probeUrl}/health`] },
    traffic: {
      hostedZoneId: zoneId,
      recordName,
      oldSetIdentifier: 'old',
      newSetIdentifier: 'new',
      steps: [10, 50, 100],
      bake: '100ms',
      ttlSeconds: 0,
      gate: { probes: [{ url: `${probeUrl}/canary` }], samples: 1, interval: '10ms', maxErrorRate: 0 },
    },
    ...overrides,
  });
}

async function dns(): Promise<Record<string, { weight: number; ttl: number }>> {
  const out = await route53.send(
    new ListResourceRecordSetsCommand({ HostedZoneId: zoneId, StartRecordName: recordName, StartRecordType: 'CNAME' }),
  );
  const records = (out.ResourceRecordSets ?? []).filter((r) => r.SetIdentifier && r.Name?.replace(/\.$/, '') === recordName);
  return Object.fromEntries(records.map((r) => [r.SetIdentifier!, { weight: r.Weight!, ttl: r.TTL! }]));
}

/** Everything a failed migration must leave exactly as it found it. */
async function world() {
  const app = heroku.app(APP);
  return {
    configVars: { ...app.configVars },
    attachments: heroku
      .attachmentsOf(APP)
      .map((a) => a.name)
      .sort(),
    maintenance: app.maintenance,
    formation: Object.fromEntries(Object.entries(app.formation).map(([type, f]) => [type, f.quantity])),
    dns: await dns(),
    sourceWritable: await sourceWritable(sandbox),
    targetTables: await targetTableCount(sandbox),
  };
}

describe('cutover safety (Heroku, app control, Route 53)', () => {
  const forwardSteps = [
    'lowerDnsTtl',
    'herokuRefuseOneOffDynos',
    'herokuMaintenance',
    'herokuScaleDown',
    'freezeSource',
    'copyAndVerify',
    'reconcileSequences',
    'freezeTarget',
    'swapConfig',
    'herokuRestartAll',
    'smokeTest',
    'httpHealthChecks',
  ] as const;
  for (const step of forwardSteps) {
    it(`a failure right after ${step} leaves everything exactly as before`, async () => {
      const before = await world();
      await sandbox.useActivities(failingAfter(sandbox.realActivities, step));
      const handle = await sandbox.start(input());
      const err = await handle.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect((err as WorkflowFailedError).cause?.message).toContain(`injected failure after ${step}`);
      const status = await handle.query(statusQuery);
      expect(status.compensations.filter((c) => c.state !== 'completed')).toEqual([]);
      expect(await world()).toEqual(before);
    });
  }

  it('refuses to cut over while a one-off dyno runs', async () => {
    await sandbox.useActivities(sandbox.realActivities);
    const before = await world();
    const dyno = heroku.startOneOff(APP, 'rails console');
    try {
      const handle = await sandbox.start(input());
      const err = await handle.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((err as WorkflowFailedError).cause?.message).toMatch(/one-off dyno/);
      expect((err as WorkflowFailedError).cause?.message).toContain(dyno.name);
      expect(await world()).toEqual(before);
    } finally {
      heroku.app(APP).dynos = heroku.app(APP).dynos.filter((d) => d.id !== dyno.id);
    }
  });

  it('a failing health gate at the second traffic step shifts back to the original weights', async () => {
    await sandbox.useActivities(sandbox.realActivities);
    canaryHealthyFor = 1; // the 10% step's gate passes, the 50% step's fails
    const handle = await sandbox.start(input());
    await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });
    const result = await migrationResult(handle);
    canaryHealthyFor = Infinity;
    expect(result.outcome).toBe('completed');
    const status = await handle.query(statusQuery);
    expect(status.traffic).toMatchObject({ state: 'shifted-back', weights: { old: 100, new: 0 } });
    expect(status.traffic?.steps.map((s) => [s.percent, s.ok])).toEqual([
      [10, true],
      [50, false],
    ]);
    expect(status.traffic?.reason).toMatch(/health gate failed at 50%/);
    expect(await dns()).toEqual({ old: { weight: 100, ttl: 1 }, new: { weight: 0, ttl: 1 } });
    // The database cutover itself stands: the application is on the target.
    expect(heroku.app(APP).configVars.DATABASE_URL).toContain(`/tgt_${sandbox.id}`);
    await resetAfterSuccess();
  });

  it('a no-go before the last traffic step shifts back', async () => {
    const handle = await sandbox.start(input({ traffic: { ...input().traffic!, approveBeforeLast: true } }));
    await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });
    await handle.executeUpdate(rejectUpdate, { args: [{ approver: 'alice', gate: 'traffic', reason: 'wait for Monday' }] });
    await handle.result();
    const status = await handle.query(statusQuery);
    expect(status.traffic).toMatchObject({ state: 'shifted-back', weights: { old: 100, new: 0 } });
    expect(status.traffic?.steps.map((s) => s.percent)).toEqual([10, 50]);
    await resetAfterSuccess();
  });

  it('cuts over: DATABASE_URL swapped and detached from the add-on, workers back, one restart, traffic on the new records, no credential anywhere', async () => {
    const restartsBefore = heroku.app(APP).restarts.count;
    const handle = await sandbox.start(input());
    await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });
    const result = await migrationResult(handle);
    expect(result.outcome).toBe('completed');
    const app = heroku.app(APP);
    expect(app.configVars.DATABASE_URL).toContain(`/tgt_${sandbox.id}`);
    expect(app.configVars.DATABASE_URL).toContain('sslmode=disable');
    expect(heroku.attachmentsOf(APP).map((a) => a.name)).not.toContain('DATABASE');
    // A credential rotation of the old add-on cannot revert the new DATABASE_URL.
    const addon = [...heroku.state.addons.values()].find((a) => a.billingApp === APP)!;
    heroku.rotateCredentials(addon.id);
    expect(heroku.app(APP).configVars.DATABASE_URL).toContain(`/tgt_${sandbox.id}`);
    expect(app.maintenance).toBe(false);
    expect(Object.fromEntries(Object.entries(app.formation).map(([t, f]) => [t, f.quantity]))).toEqual({ web: 2, worker: 3, clock: 1 });
    expect(app.restarts.count - restartsBefore).toBe(1);
    expect(await dns()).toEqual({ old: { weight: 0, ttl: 1 }, new: { weight: 100, ttl: 1 } });
    const status = await handle.query(statusQuery);
    expect(status.traffic?.state).toBe('completed');

    await recordHistory(handle, 'heroku-traffic-completed');
    const history = await historyText(handle);
    const described = await handle.describe();
    const everything = [
      history,
      JSON.stringify(described.memo ?? {}),
      JSON.stringify(described.searchAttributes ?? {}),
      logs.join('\n'),
    ].join('\n');
    const secrets = [
      token,
      ...[sandbox.sourceUrl, sandbox.targetUrl, sandbox.env.SOURCE_ADMIN_URL].map((u) => decodeURIComponent(new URL(u).password)),
    ];
    expect(logs.length).toBeGreaterThan(10);
    for (const secret of secrets) expect(everything).not.toContain(secret);
  });
});

/** The weighted records as before any migration: all traffic on the old (Heroku) app. */
async function seedDns(): Promise<void> {
  await route53.send(
    new ChangeResourceRecordSetsCommand({
      HostedZoneId: zoneId,
      ChangeBatch: {
        Changes: [
          ['old', 100, 'shop-prod.herokuapp.com'],
          ['new', 0, 'shop-alb.us-east-1.elb.amazonaws.com'],
        ].map(([id, weight, value]) => ({
          Action: 'UPSERT' as const,
          ResourceRecordSet: {
            Name: recordName,
            Type: 'CNAME' as const,
            SetIdentifier: id as string,
            Weight: weight as number,
            TTL: 1,
            ResourceRecords: [{ Value: value as string }],
          },
        })),
      },
    }),
  );
}

/** After a completed migration: the source writable again, the target empty, Heroku and DNS as seeded. */
async function resetAfterSuccess(): Promise<void> {
  await query(sandbox.env.SOURCE_ADMIN_URL, `ALTER DATABASE "src_${sandbox.id}" RESET default_transaction_read_only`);
  await query(sandbox.env.SOURCE_ADMIN_URL, `ALTER ROLE app IN DATABASE "src_${sandbox.id}" RESET default_transaction_read_only`);
  await sandbox.resetTarget();
  const addon = [...heroku.state.addons.values()].find((a) => a.billingApp === APP)!;
  for (const a of heroku.attachmentsOf(APP)) heroku.state.attachments.delete(a.id);
  delete heroku.app(APP).configVars.DATABASE_URL;
  for (const key of Object.keys(heroku.app(APP).configVars)) if (key.startsWith('PGMIG_')) delete heroku.app(APP).configVars[key];
  addon.url = sandbox.sourceUrl;
  heroku.state.attachments.set('att-reset', {
    id: 'att-reset',
    name: 'DATABASE',
    addonId: addon.id,
    app: APP,
    created_at: new Date().toISOString(),
  });
  heroku.app(APP).configVars.DATABASE_URL = sandbox.sourceUrl;
  await seedDns();
}
