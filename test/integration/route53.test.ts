/**
 * The Route 53 weighted traffic shift (activities/route53.ts) against moto: a real HTTP server, the
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
import {
  healthGate,
  lowerTtl,
  readWeightedRecords,
  restoreTtl,
  setWeights,
  shiftTraffic,
  waitForChange,
  type HealthGateSpec,
  type Route53Clients,
  type ShiftProgress,
  type WeightedRecordSpec,
} from '../../activities/route53';
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

beforeAll(async () => {
  server = createServer(async (req, res) => {
    if (req.url === '/health') {
      healthRequests++;
      if (weightsAtProbe) weightsAtProbe.push(await rawWeights());
      res.writeHead(healthy ? 200 : 500, { 'content-type': 'text/plain' }).end(healthy ? 'ok' : 'database unavailable');
    } else res.writeHead(404).end();
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

  it('shiftTraffic 10 -> 50 -> 100 with a healthy gate ends at old 0 / new 100, every change INSYNC', async () => {
    healthy = true;
    const events: ShiftProgress[] = [];
    const seen: Record<string, number | undefined>[] = [];
    const t0 = performance.now();
    const result = await timed(timings, 'shiftTraffic (3 steps, bake 100 ms, healthy)', () =>
      shiftTraffic(clients, spec, {
        oldId: 'old',
        newId: 'new',
        steps: [10, 50, 100],
        bakeMs: 100,
        gate: gate(),
        wait: fast,
        beforeStep: async () => {
          seen.push(await rawWeights());
          return true;
        },
        onProgress: (p) => events.push(p),
      }),
    );
    const elapsed = performance.now() - t0;
    expect(result).toMatchObject({
      completed: true,
      reached: 100,
      shiftedBack: false,
      original: { old: 100, new: 0 },
      final: { old: 0, new: 100 },
    });
    expect(result.history.map((h) => [h.step, h.percent, h.outcome, h.weights])).toEqual([
      [1, 10, 'passed', { old: 90, new: 10 }],
      [2, 50, 'passed', { old: 50, new: 50 }],
      [3, 100, 'passed', { old: 0, new: 100 }],
    ]);
    for (const h of result.history) {
      expect(h.changeId).toMatch(/change\//);
      expect(h.bakeMs).toBeGreaterThanOrEqual(95);
      expect(h.gate).toMatchObject({ ok: true, errorRate: 0, samplesTaken: 3 });
    }
    // Each step waited for its change: INSYNC is reported once per step, before its bake and gate.
    const order = events.map((e) =>
      e.event === 'step' || e.event === 'insync' || e.event === 'bake' || e.event === 'gate' ? `${e.event}${e.step.index}` : e.event,
    );
    expect(order.filter((e) => e !== 'wait' && e !== 'gate-sample')).toEqual([
      'original',
      'step1',
      'insync1',
      'bake1',
      'gate1',
      'step2',
      'insync2',
      'bake2',
      'gate2',
      'step3',
      'insync3',
      'bake3',
      'gate3',
      'done',
    ]);
    // The weights before each step, as moto holds them.
    expect(seen).toEqual([
      { old: 100, new: 0 },
      { old: 90, new: 10 },
      { old: 50, new: 50 },
    ]);
    const raw = await rawRecords();
    expect(raw.old).toMatchObject({ Weight: 0, TTL: 60, ResourceRecords: [{ Value: OLD_VALUE }] });
    expect(raw.new).toMatchObject({ Weight: 100, TTL: 60, ResourceRecords: [{ Value: NEW_VALUE }] });
    expect(elapsed).toBeLessThan(5_000);

    await setWeights(clients, spec, { old: 100, new: 0 }, fast);
  });

  it('a failing health gate at the second step shifts back to the original weights (old 100 / new 0) and names step 2', async () => {
    healthy = true;
    const during: Record<string, number | undefined>[] = [];
    const requestsBefore = healthRequests;
    const result = await timed(timings, 'shiftTraffic (gate fails at step 2, shift back)', () =>
      shiftTraffic(clients, spec, {
        oldId: 'old',
        newId: 'new',
        steps: [10, 50, 100],
        bakeMs: 100,
        gate: gate(),
        wait: fast,
        beforeStep: async (step) => {
          // Step 1 has completed (its gate passed): the new side starts failing now.
          if (step.index === 2) {
            healthy = false;
            weightsAtProbe = during;
          }
          return true;
        },
      }),
    );
    healthy = true;
    weightsAtProbe = undefined;
    expect(result).toMatchObject({
      completed: false,
      reached: 10,
      shiftedBack: true,
      original: { old: 100, new: 0 },
      final: { old: 100, new: 0 },
      failed: { step: 2, percent: 50 },
    });
    expect(result.failed?.reason).toMatch(/^health gate failed at step 2 \(50% to new\): probe error rate 1\/1 exceeds 0 .*HTTP 500/);
    expect(result.shiftBack?.changeId).toMatch(/change\//);
    expect(result.shiftBack?.error).toBeUndefined();
    expect(result.history.map((h) => [h.step, h.outcome])).toEqual([
      [1, 'passed'],
      [2, 'failed'],
    ]);
    expect(result.history[1].gate).toMatchObject({ ok: false, errorRate: 1, samplesTaken: 1 });
    expect(result.history[1].gate?.probes[0]).toMatchObject({ ok: false, status: 500 });
    expect(during).toEqual([{ old: 50, new: 50 }]); // the failing probe saw the 50 % step
    expect(healthRequests - requestsBefore).toBe(3 + 1); // step 1: 3 samples; step 2: stopped at the first failure
    const raw = await rawRecords();
    expect(raw.old).toMatchObject({ Weight: 100, TTL: 60, ResourceRecords: [{ Value: OLD_VALUE }] });
    expect(raw.new).toMatchObject({ Weight: 0, TTL: 60, ResourceRecords: [{ Value: NEW_VALUE }] });
  });

  it('no approval before the last step stops the shift and shifts back (or holds, when asked)', async () => {
    healthy = true;
    const opts = {
      oldId: 'old',
      newId: 'new',
      steps: [10, 50, 100],
      bakeMs: 0,
      gate: gate({ samples: 1 }),
      wait: fast,
      beforeStep: (step: { isLast: boolean }) => !step.isLast,
    };
    const back = await shiftTraffic(clients, spec, opts);
    expect(back).toMatchObject({
      completed: false,
      reached: 50,
      shiftedBack: true,
      final: { old: 100, new: 0 },
      stopped: { step: 3, percent: 100, held: false },
    });
    expect(await rawWeights()).toEqual({ old: 100, new: 0 });

    const held = await shiftTraffic(clients, spec, { ...opts, onStop: 'hold' });
    expect(held).toMatchObject({
      completed: false,
      reached: 50,
      shiftedBack: false,
      final: { old: 50, new: 50 },
      stopped: { step: 3, held: true },
    });
    expect(await rawWeights()).toEqual({ old: 50, new: 50 });

    // A later run given the original weights recorded before the first attempt shifts back to them,
    // not to the 50/50 it finds.
    const resumed = await shiftTraffic(clients, spec, { ...opts, original: { old: 100, new: 0 }, beforeStep: () => false });
    expect(resumed).toMatchObject({ original: { old: 100, new: 0 }, shiftedBack: true, final: { old: 100, new: 0 } });
    expect(await rawWeights()).toEqual({ old: 100, new: 0 });
  });

  it('cancellation during a bake shifts back to the original weights, then ends with the cancellation', async () => {
    healthy = true;
    const ac = new AbortController();
    const reason = new Error('activity cancelled');
    const err = await shiftTraffic(clients, spec, {
      oldId: 'old',
      newId: 'new',
      steps: [10, 50, 100],
      bakeMs: 5_000,
      gate: gate({ samples: 1 }),
      wait: fast,
      signal: ac.signal,
      onProgress: (p) => {
        if (p.event === 'insync' && p.step.index === 1) ac.abort(reason);
      },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBe(reason);
    expect(await rawWeights()).toEqual({ old: 100, new: 0 });
  });

  it('a zone that does not exist: non-retryable NoSuchHostedZone with a clear message; bad input refused before AWS', async () => {
    const missing = { ...spec, hostedZoneId: 'Z0NOSUCHZONE123' };
    const read = await applicationFailureOf(readWeightedRecords(clients, missing));
    expect(read).toMatchObject({ nonRetryable: true, type: 'NoSuchHostedZone' });
    expect(read.message).toContain('Z0NOSUCHZONE123');
    expect(read.message).toContain('check hostedZoneId');
    const set = await applicationFailureOf(setWeights(clients, missing, { old: 0, new: 100 }, fast));
    expect(set).toMatchObject({ nonRetryable: true, type: 'NoSuchHostedZone' });
    const shift = await applicationFailureOf(
      shiftTraffic(clients, missing, { oldId: 'old', newId: 'new', steps: [100], bakeMs: 0, gate: gate(), wait: fast }),
    );
    expect(shift).toMatchObject({ nonRetryable: true, type: 'NoSuchHostedZone' });

    const badId = await applicationFailureOf(readWeightedRecords(clients, { ...spec, hostedZoneId: zoneName }));
    expect(badId).toMatchObject({ nonRetryable: true, type: 'Route53InvalidInput' });
    const badSteps = await applicationFailureOf(
      shiftTraffic(clients, spec, { oldId: 'old', newId: 'new', steps: [50, 10], bakeMs: 0, gate: gate(), wait: fast }),
    );
    expect(badSteps.message).toContain('steps must increase');
    const noRecord = await applicationFailureOf(lowerTtl(clients, { ...spec, recordName: `nothing.${zoneName}` }, 60, fast));
    expect(noRecord).toMatchObject({ nonRetryable: true, type: 'Route53RecordNotFound' });
  });
});
