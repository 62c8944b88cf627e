/**
 * The Route 53 weighted traffic shift (activities/traffic) against moto: a real HTTP server, the
 * real AWS SDK v3 client, no mocks; HTTP probes against a local node:http server whose health
 * endpoint the tests flip to 500.
 *
 * What moto 5.2.1 does differently from AWS, and what these tests therefore cannot show:
 *  - ChangeResourceRecordSets answers `INSYNC` at once (AWS: `PENDING`, `INSYNC` within ~60 s), and
 *    always with the same change id `/change/C2682N5HXP0BZ4`; GetChange answers `INSYNC` for any id,
 *    even one never issued. The INSYNC wait is exercised (one GetChange per change), its PENDING
 *    polling is not.
 *  - GetHealthCheckStatus is implemented but always answers one checker reporting
 *    `Success: HTTP Status Code: 200` for an existing health check (a NoSuchHealthCheck for an
 *    unknown id): moto never probes anything, so an unhealthy Route 53 health check cannot be shown;
 *    the failing gate is shown with HTTP probes.
 *  - No DNS is served: resolvers, TTL expiry and the actual traffic split are not observable.
 *  - Weights, TTLs and values are kept as sent, without AWS's validation (e.g. of mixed record types).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ChangeResourceRecordSetsCommand,
  CreateHealthCheckCommand,
  CreateHostedZoneCommand,
  DeleteHealthCheckCommand,
  DeleteHostedZoneCommand,
  GetChangeCommand,
  ListResourceRecordSetsCommand,
  Route53Client,
  type ResourceRecordSet,
} from '@aws-sdk/client-route-53';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createTrafficActivities } from '../../activities/traffic';
import { lowerTtl, restoreTtl, setWeights, waitForChange } from '../../activities/traffic/changes';
import { healthGate, type HealthGateSpec } from '../../activities/traffic/health-gate';
import { readWeightedRecords, type Route53Clients, type WeightedRecordSpec } from '../../activities/traffic/records';
import { loadStackEnv } from '../../stack';
import { motoConfig } from '../helpers/moto';
import { applicationFailureOf, timed } from '../helpers/expect';

const env = loadStackEnv();
const route53 = new Route53Client(motoConfig(env));
const clients: Route53Clients = { route53 };

const run = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const zoneName = `pgmig-r53-${run}.example.com`;
const recordName = `db.${zoneName}`;
const OLD_VALUE = 'shop-12345.herokudns.com';
const NEW_VALUE = 'shop-alb-1234567890.us-east-1.elb.amazonaws.com';
/** GetChange polls every 20 ms here; on AWS the default is 5 s. */
const fast = { intervalMs: 20, timeoutMs: 5_000 };
/** The activities the workflow runs, as the worker builds them. */
const traffic = createTrafficActivities({ route53: () => route53, route53PollMs: fast.intervalMs });

let zoneId = '';
let spec: WeightedRecordSpec;
let healthCheckId = '';

// The application's health endpoint, as the probes see it.
let healthy = true;
let healthRequests = 0;
/** When set, each health request first reads the weights from moto (what the gate is judging). */
let weightsAtProbe: Record<string, number | undefined>[] | undefined;
let server: Server;
let probeUrl = '';

const timings: Record<string, number> = {};
/** The zone's records as moto holds them, read without the module under test. */
async function rawRecords(): Promise<Record<string, ResourceRecordSet>> {
  const out = await route53.send(new ListResourceRecordSetsCommand({ HostedZoneId: zoneId }));
  return Object.fromEntries((out.ResourceRecordSets ?? []).filter((r) => r.SetIdentifier).map((r) => [r.SetIdentifier!, r]));
}

async function rawWeights(): Promise<Record<string, number | undefined>> {
  const r = await rawRecords();
  return { old: r.old?.Weight, new: r.new?.Weight };
}

function gate(overrides: Partial<HealthGateSpec> = {}): HealthGateSpec {
  return {
    healthCheckIds: [healthCheckId],
    probes: [{ url: probeUrl, expectStatus: 200 }],
    samples: 3,
    intervalMs: 20,
    maxErrorRate: 0,
    ...overrides,
  };
}

/** Runs one activity in an activity context, as a worker would, collecting its heartbeats. */
async function inActivity<R>(fn: () => Promise<R>, heartbeats: unknown[] = []): Promise<R> {
  const env = new MockActivityEnvironment();
  env.on('heartbeat', (details: unknown) => heartbeats.push(details));
  return env.run(fn);
}

/** One traffic step as workflows/traffic.ts runs it: setDnsWeights (waited INSYNC), then trafficHealthGate. */
async function trafficStep(percent: number) {
  const heartbeats: unknown[] = [];
  const set = await inActivity(() => traffic.setDnsWeights({ dns: spec, weights: { old: 100 - percent, new: percent } }), heartbeats);
  const judged = await inActivity(() => traffic.trafficHealthGate({ gate: gate() }));
  return { set, heartbeats, judged };
}

beforeAll(async () => {
  // node:http ignores a listener's promise; a failed weights read stays an unhandled rejection, which vitest reports.
  server = createServer((req, res) => {
    void (async () => {
      if (req.url === '/health') {
        healthRequests++;
        if (weightsAtProbe) weightsAtProbe.push(await rawWeights());
        res.writeHead(healthy ? 200 : 500, { 'content-type': 'text/plain' }).end(healthy ? 'ok' : 'database unavailable');
      } else res.writeHead(404).end();
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  probeUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`;

  const zone = await route53.send(new CreateHostedZoneCommand({ Name: zoneName, CallerReference: `pgmig-${run}` }));
  zoneId = zone.HostedZone!.Id!;
  spec = { hostedZoneId: zoneId, recordName, type: 'CNAME' };
  await route53.send(
    new ChangeResourceRecordSetsCommand({
      HostedZoneId: zoneId,
      ChangeBatch: {
        Changes: [
          {
            Action: 'CREATE',
            ResourceRecordSet: {
              Name: recordName,
              Type: 'CNAME',
              SetIdentifier: 'old',
              Weight: 100,
              TTL: 300,
              ResourceRecords: [{ Value: OLD_VALUE }],
            },
          },
          {
            Action: 'CREATE',
            ResourceRecordSet: {
              Name: recordName,
              Type: 'CNAME',
              SetIdentifier: 'new',
              Weight: 0,
              TTL: 300,
              ResourceRecords: [{ Value: NEW_VALUE }],
            },
          },
          // Neighbours that must not be taken for the weighted group.
          {
            Action: 'CREATE',
            ResourceRecordSet: { Name: `api.${zoneName}`, Type: 'CNAME', TTL: 300, ResourceRecords: [{ Value: 'api.example.net' }] },
          },
          {
            Action: 'CREATE',
            ResourceRecordSet: { Name: recordName, Type: 'TXT', TTL: 300, ResourceRecords: [{ Value: '"owner=pgmig"' }] },
          },
        ],
      },
    }),
  );
  const hc = await route53.send(
    new CreateHealthCheckCommand({
      CallerReference: `pgmig-hc-${run}`,
      HealthCheckConfig: {
        Type: 'HTTPS',
        FullyQualifiedDomainName: 'shop-alb-1234567890.us-east-1.elb.amazonaws.com',
        Port: 443,
        ResourcePath: '/health',
      },
    }),
  );
  healthCheckId = hc.HealthCheck!.Id!;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  if (healthCheckId) await route53.send(new DeleteHealthCheckCommand({ HealthCheckId: healthCheckId })).catch(() => undefined);
  if (zoneId) {
    const recs = await route53.send(new ListResourceRecordSetsCommand({ HostedZoneId: zoneId })).catch(() => undefined);
    const mine = (recs?.ResourceRecordSets ?? []).filter((r) => r.Type !== 'NS' && r.Type !== 'SOA');
    if (mine.length) {
      await route53
        .send(
          new ChangeResourceRecordSetsCommand({
            HostedZoneId: zoneId,
            ChangeBatch: { Changes: mine.map((r) => ({ Action: 'DELETE' as const, ResourceRecordSet: r })) },
          }),
        )
        .catch(() => undefined);
    }
    await route53.send(new DeleteHostedZoneCommand({ Id: zoneId })).catch(() => undefined);
  }
  console.log(`[route53] timings against moto (ms): ${JSON.stringify(timings)}`);
});

describe('Route 53 weighted traffic shift against moto', () => {
  it('readWeightedRecords: both weighted records with weight, TTL and values; neighbours left out', async () => {
    const records = await timed(timings, 'readWeightedRecords', () => readWeightedRecords(clients, spec));
    expect(records.map(({ recordSet: _rs, ...r }) => r)).toEqual([
      { setIdentifier: 'old', weight: 100, ttl: 300, values: [OLD_VALUE] },
      { setIdentifier: 'new', weight: 0, ttl: 300, values: [NEW_VALUE] },
    ]);
    // Name case and the trailing dot do not matter.
    const again = await readWeightedRecords(clients, { ...spec, recordName: `DB.${zoneName.toUpperCase()}.` });
    expect(again.map((r) => r.setIdentifier)).toEqual(['old', 'new']);
    expect(await readWeightedRecords(clients, { ...spec, recordName: `nothing.${zoneName}` })).toEqual([]);
  });

  it('lowerTtl lowers every record to 60 s (INSYNC), keeps weights and values, is idempotent; restoreTtl undoes it', async () => {
    const lowered = await timed(timings, 'lowerTtl', () => lowerTtl(clients, spec, 60, fast));
    expect(lowered.previousTtl).toEqual({ old: 300, new: 300 });
    expect(lowered.changed).toEqual(['old', 'new']);
    expect(lowered.skipped).toEqual([]);
    expect(lowered.change?.changeId).toMatch(/change\//);
    expect(lowered.change?.polls).toBe(1); // moto: INSYNC at the first GetChange
    expect(lowered.oldAnswersExpireAfterMs).toBe(300_000);
    let raw = await rawRecords();
    expect(raw.old).toMatchObject({ TTL: 60, Weight: 100, ResourceRecords: [{ Value: OLD_VALUE }] });
    expect(raw.new).toMatchObject({ TTL: 60, Weight: 0, ResourceRecords: [{ Value: NEW_VALUE }] });

    const again = await lowerTtl(clients, spec, 60, fast);
    expect(again.changed).toEqual([]);
    expect(again.change).toBeUndefined();

    const restored = await timed(timings, 'restoreTtl', () => restoreTtl(clients, spec, lowered.previousTtl, fast));
    expect(restored.restored).toEqual(['old', 'new']);
    expect(restored.missing).toEqual([]);
    raw = await rawRecords();
    expect(raw.old).toMatchObject({ TTL: 300, Weight: 100, ResourceRecords: [{ Value: OLD_VALUE }] });
    expect(raw.new).toMatchObject({ TTL: 300, Weight: 0, ResourceRecords: [{ Value: NEW_VALUE }] });
    const restoredAgain = await restoreTtl(clients, spec, { ...lowered.previousTtl, gone: 120 }, fast);
    expect(restoredAgain).toEqual({ restored: [], missing: ['gone'] });

    // Lowered for the shifts below, as a migration would do ahead of its window.
    await lowerTtl(clients, spec, 60, fast);
  });

  it('setWeights: one batch, INSYNC, previous weights; a second call with the same weights submits nothing', async () => {
    const waits: string[] = [];
    const submitted: string[] = [];
    const first = await timed(timings, 'setWeights (90/10)', () =>
      setWeights(
        clients,
        spec,
        { old: 90, new: 10 },
        { ...fast, onProgress: (p) => waits.push(p.status), onSubmitted: (id) => submitted.push(id) },
      ),
    );
    expect(first).toMatchObject({ previous: { old: 100, new: 0 }, weights: { old: 90, new: 10 }, changed: true });
    expect(first.changeId).toMatch(/change\//);
    expect(submitted).toEqual([first.changeId]);
    expect(waits).toEqual(['done']);
    expect(await rawWeights()).toEqual({ old: 90, new: 10 });
    expect((await rawRecords()).new).toMatchObject({ TTL: 60, ResourceRecords: [{ Value: NEW_VALUE }] });

    const second = await timed(timings, 'setWeights (already there)', () => setWeights(clients, spec, { old: 90, new: 10 }, fast));
    expect(second).toEqual({ previous: { old: 90, new: 10 }, weights: { old: 90, new: 10 }, changed: false });

    // A retry whose first attempt's change had landed: nothing to submit, the remembered change is waited on.
    const resumed = await setWeights(clients, spec, { old: 90, new: 10 }, { ...fast, resumeChangeId: first.changeId });
    expect(resumed).toMatchObject({ changed: false, changeId: first.changeId, change: { polls: 1 } });

    // Only the named record changes.
    const one = await setWeights(clients, spec, { new: 0 }, fast);
    expect(one.weights).toEqual({ old: 90, new: 0 });
    await setWeights(clients, spec, { old: 100, new: 0 }, fast);
    expect(await rawWeights()).toEqual({ old: 100, new: 0 });
  });

  it('setWeights refuses unknown set identifiers and weights outside 0..255, changing nothing', async () => {
    const unknown = await applicationFailureOf(setWeights(clients, spec, { old: 50, blue: 50 }, fast));
    expect(unknown).toMatchObject({ nonRetryable: true, type: 'Route53RecordNotFound' });
    expect(unknown.message).toContain('"blue"');
    expect(unknown.message).toContain('"old", "new"');
    const big = await applicationFailureOf(setWeights(clients, spec, { old: 256 }, fast));
    expect(big).toMatchObject({ nonRetryable: true, type: 'Route53InvalidInput' });
    expect(await rawWeights()).toEqual({ old: 100, new: 0 });
  });

  it('waitForChange: moto answers INSYNC at once, even for a change id it never issued', async () => {
    const w = await waitForChange(clients, '/change/CNEVERISSUED', fast);
    expect(w.polls).toBe(1);
    const raw = await route53.send(new GetChangeCommand({ Id: '/change/CNEVERISSUED' }));
    expect(raw.ChangeInfo?.Status).toBe('INSYNC');
  });

  it('healthGate: Route 53 health check (moto: always Success) and HTTP probes; failures named', async () => {
    healthy = true;
    const ok = await timed(timings, 'healthGate (3 samples, healthy)', () => healthGate(clients, gate()));
    expect(ok).toMatchObject({ ok: true, errorRate: 0, samplesTaken: 3 });
    expect(ok.healthChecks).toEqual([
      { id: healthCheckId, status: 'healthy', samples: 3, healthySamples: 3, detail: '1 checker(s) report Success' },
    ]);
    expect(ok.probes).toHaveLength(3);
    expect(ok.probes.every((p) => p.ok && p.status === 200 && p.url === probeUrl)).toBe(true);

    healthy = false;
    const bad = await healthGate(clients, gate({ healthCheckIds: [], samples: 4, maxErrorRate: 0.5 }));
    healthy = true;
    // 4 planned requests, at most 2 may fail: the third failure ends the gate early.
    expect(bad).toMatchObject({ ok: false, errorRate: 1, samplesTaken: 3 });
    expect(bad.reason).toMatch(/probe error rate 3\/3 exceeds 0.5 .*HTTP 500/);

    const missing = await healthGate(clients, gate({ healthCheckIds: ['00000000-0000-0000-0000-000000000000'], probes: [] }));
    expect(missing.ok).toBe(false);
    expect(missing.samplesTaken).toBe(1);
    expect(missing.healthChecks[0]).toMatchObject({ status: 'error' });
    expect(missing.reason).toContain('NoSuchHealthCheck');

    // Nothing listens on port 9 of 127.0.0.1: a probe with no answer counts as a failure.
    const refused = await healthGate(clients, gate({ healthCheckIds: [], probes: [{ url: 'http://127.0.0.1:9/health' }], samples: 1 }));
    expect(refused.ok).toBe(false);
    expect(refused.probes[0]).toMatchObject({ ok: false, status: 0 });
    expect(refused.probes[0].error).toBeTruthy();

    const nothing = await applicationFailureOf(healthGate(clients, { samples: 1, intervalMs: 0, maxErrorRate: 0 }));
    expect(nothing).toMatchObject({ nonRetryable: true, type: 'Route53InvalidInput' });
  });

  // The shift as workflows/traffic.ts runs it, one activity per step (the bake between is a durable
  // timer in the workflow, so there is nothing to bake here). Approvals before the last step, and
  // the workflow's own shift back, are in cutover-safety.test.ts.
  it('through the activities: 10 -> 50 -> 100, each change INSYNC (heartbeating) before its gate judges those weights', async () => {
    healthy = true;
    const original = await inActivity(() => traffic.readDnsRecords({ dns: spec }));
    expect(original).toEqual({ weights: { old: 100, new: 0 }, ttl: { old: 60, new: 60 } });
    const judgedWeights: Record<string, number | undefined>[] = [];
    for (const percent of [10, 50, 100]) {
      weightsAtProbe = judgedWeights;
      const { set, heartbeats, judged } = await timed(timings, `traffic step ${percent}% (healthy)`, () => trafficStep(percent));
      weightsAtProbe = undefined;
      expect(set).toEqual({ weights: { old: 100 - percent, new: percent }, changed: true });
      // One GetChange (moto: INSYNC at once), reported as a heartbeat.
      expect(heartbeats).toEqual([expect.objectContaining({ resource: expect.stringMatching(/^Route 53 change /), status: 'done' })]);
      expect(judged).toMatchObject({ ok: true, errorRate: 0, samplesTaken: 3 });
    }
    // Each gate's 3 probes saw its own step's weights, as moto holds them.
    expect(judgedWeights).toEqual([
      ...Array(3).fill({ old: 90, new: 10 }),
      ...Array(3).fill({ old: 50, new: 50 }),
      ...Array(3).fill({ old: 0, new: 100 }),
    ]);
    const raw = await rawRecords();
    expect(raw.old).toMatchObject({ Weight: 0, TTL: 60, ResourceRecords: [{ Value: OLD_VALUE }] });
    expect(raw.new).toMatchObject({ Weight: 100, TTL: 60, ResourceRecords: [{ Value: NEW_VALUE }] });

    await setWeights(clients, spec, original.weights, fast);
  });

  it('through the activities: a gate failing at 50 % judged 50/50; setDnsWeights with the weights read first shifts back', async () => {
    healthy = true;
    const original = await inActivity(() => traffic.readDnsRecords({ dns: spec }));
    expect((await trafficStep(10)).judged.ok).toBe(true);

    healthy = false;
    const during: Record<string, number | undefined>[] = [];
    weightsAtProbe = during;
    const { judged } = await trafficStep(50);
    healthy = true;
    weightsAtProbe = undefined;
    expect(judged).toMatchObject({ ok: false, errorRate: 1, samplesTaken: 1 });
    expect(judged.reason).toMatch(/probe error rate 1\/1 exceeds 0 .*HTTP 500/);
    expect(during).toEqual([{ old: 50, new: 50 }]);

    const back = await timed(timings, 'shift back (setDnsWeights)', () =>
      inActivity(() => traffic.setDnsWeights({ dns: spec, weights: original.weights })),
    );
    expect(back).toEqual({ weights: { old: 100, new: 0 }, changed: true });
    const raw = await rawRecords();
    expect(raw.old).toMatchObject({ Weight: 100, TTL: 60, ResourceRecords: [{ Value: OLD_VALUE }] });
    expect(raw.new).toMatchObject({ Weight: 0, TTL: 60, ResourceRecords: [{ Value: NEW_VALUE }] });
  });

  it('a zone that does not exist: non-retryable NoSuchHostedZone with a clear message; bad input refused before AWS', async () => {
    const missing = { ...spec, hostedZoneId: 'Z0NOSUCHZONE123' };
    const read = await applicationFailureOf(readWeightedRecords(clients, missing));
    expect(read).toMatchObject({ nonRetryable: true, type: 'NoSuchHostedZone' });
    expect(read.message).toContain('Z0NOSUCHZONE123');
    expect(read.message).toContain('check hostedZoneId');
    const set = await applicationFailureOf(setWeights(clients, missing, { old: 0, new: 100 }, fast));
    expect(set).toMatchObject({ nonRetryable: true, type: 'NoSuchHostedZone' });

    const badId = await applicationFailureOf(readWeightedRecords(clients, { ...spec, hostedZoneId: zoneName }));
    expect(badId).toMatchObject({ nonRetryable: true, type: 'Route53InvalidInput' });
    const noRecord = await applicationFailureOf(lowerTtl(clients, { ...spec, recordName: `nothing.${zoneName}` }, 60, fast));
    expect(noRecord).toMatchObject({ nonRetryable: true, type: 'Route53RecordNotFound' });
  });
});
