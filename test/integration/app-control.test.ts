/**
 * App control against the Heroku Platform API stand-in and, for ECS, the stack's moto server through
 * the real AWS SDK client; HTTP health checks against a local server.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  CreateClusterCommand,
  CreateServiceCommand,
  DescribeServicesCommand,
  ECSClient,
  RegisterTaskDefinitionCommand,
} from '@aws-sdk/client-ecs';
import type { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertHealthy,
  createAppControlActivities,
  ecsDeploymentState,
  ecsForceNewDeployment,
  herokuMaintenance,
  httpHealthChecks,
  refuseOneOffDynos,
  restartAll,
  scaleDown,
  scaleUp,
  type RestartMark,
} from '../../activities/app-control';
import { HEROKU_ACCEPT, HerokuClient } from '../../activities/heroku/platform-api';
import { loadStackEnv } from '../../stack';
import { startHerokuStandIn, type HerokuStandIn } from '../heroku-stand-in';
import { motoConfig } from '../helpers/moto';
import { applicationFailureOf } from '../helpers/expect';

const token = `HRKU-${randomBytes(18).toString('hex')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Heroku app control (Platform API stand-in)', () => {
  let heroku: HerokuStandIn;
  let api: HerokuClient;
  beforeAll(async () => {
    heroku = await startHerokuStandIn({ tokens: [token] });
    api = new HerokuClient({ token, apiUrl: heroku.url });
  });
  afterAll(() => heroku.close());

  it('maintenance on and off, each idempotent', async () => {
    const app = heroku.seedApp('maint-app');
    expect(await herokuMaintenance(api, 'maint-app', true)).toEqual({ app: 'maint-app', maintenance: true, changed: true });
    expect(await herokuMaintenance(api, 'maint-app', true)).toEqual({ app: 'maint-app', maintenance: true, changed: false });
    expect(app.maintenance).toBe(true);
    expect(await herokuMaintenance(api, 'maint-app', false)).toMatchObject({ maintenance: false, changed: true });
    expect(await herokuMaintenance(api, 'maint-app', false)).toMatchObject({ maintenance: false, changed: false });
    expect(app.maintenance).toBe(false);
    expect(heroku.state.requests.filter((r) => r.method === 'PATCH' && r.path === '/apps/maint-app')).toHaveLength(2);
  });

  it('scales workers down and back to exactly the recorded counts; a retried scale-down keeps the first record', async () => {
    const app = heroku.seedApp('scale-app', { formation: { web: 2, worker: 3, clock: 1, urgentworker: 0 } });
    const record = await scaleDown(api, 'scale-app', 'all-but-web');
    expect(record).toEqual({ app: 'scale-app', counts: { worker: 3, clock: 1, urgentworker: 0 } });
    expect(Object.fromEntries(Object.entries(app.formation).map(([t, f]) => [t, f.quantity]))).toEqual({
      web: 2,
      worker: 0,
      clock: 0,
      urgentworker: 0,
    });
    expect(app.dynos.map((d) => d.name).sort()).toEqual(['web.1', 'web.2']);

    // The activity's retry passes the first attempt's heartbeat: the counts from before, not the zeros now.
    expect(await scaleDown(api, 'scale-app', 'all-but-web', { recorded: record })).toEqual(record);

    expect(await scaleUp(api, 'scale-app', record.counts)).toEqual(record);
    expect(Object.fromEntries(Object.entries(app.formation).map(([t, f]) => [t, f.quantity]))).toEqual({
      web: 2,
      worker: 3,
      clock: 1,
      urgentworker: 0,
    });
    expect(app.dynos).toHaveLength(6);
    const patches = heroku.state.requests.filter((r) => r.method === 'PATCH' && r.path === '/apps/scale-app/formation').length;
    await scaleUp(api, 'scale-app', record.counts); // idempotent: nothing to change
    expect(heroku.state.requests.filter((r) => r.method === 'PATCH' && r.path === '/apps/scale-app/formation')).toHaveLength(patches);

    expect(await scaleDown(api, 'scale-app', ['worker'])).toEqual({ app: 'scale-app', counts: { worker: 3 } });
    expect(app.formation.clock.quantity).toBe(1);
    await scaleUp(api, 'scale-app', { worker: 3 });

    const unknown = await applicationFailureOf(scaleDown(api, 'scale-app', ['sidekiq']));
    expect(unknown.nonRetryable).toBe(true);
    expect(unknown.message).toContain('no process type sidekiq');
  });

  it('the scale-down activity records its counts in a heartbeat and reuses them on a retry', async () => {
    const app = heroku.seedApp('activity-app', { formation: { web: 1, worker: 2 } });
    const acts = createAppControlActivities({
      env: { HEROKU_TEST_TOKEN: token },
      ssm: () => undefined as never,
      secretsManager: () => undefined as never,
    });
    // Called through the object: unbound-method cannot see that the activities do not use `this`.
    const herokuScaleDown = (args: Parameters<typeof acts.herokuScaleDown>[0]) => acts.herokuScaleDown(args);
    const target = { app: 'activity-app', token: { env: 'HEROKU_TEST_TOKEN' }, apiUrl: heroku.url };
    const first = new MockActivityEnvironment();
    const beats: unknown[] = [];
    first.on('heartbeat', (d: unknown) => beats.push(d));
    const record = await first.run(herokuScaleDown, { heroku: target, types: 'all-but-web' as const });
    expect(record).toEqual({ app: 'activity-app', counts: { worker: 2 } });
    expect(beats).toEqual([record]);
    expect(app.formation.worker.quantity).toBe(0);
    // Attempt 2 (the worker died before the result was recorded): same counts, not { worker: 0 }.
    const retry = new MockActivityEnvironment({ attempt: 2, heartbeatDetails: beats[0] });
    expect(await retry.run(herokuScaleDown, { heroku: target, types: 'all-but-web' as const })).toEqual(record);
    expect(JSON.stringify(beats)).not.toContain(token);
  });

  it('restarts every dyno once; a retry after the restart does not restart again', async () => {
    const app = heroku.seedApp('restart-app', { formation: { web: 2, worker: 1 } });
    await sleep(5);
    let mark: RestartMark | undefined;
    const first = await restartAll(api, 'restart-app', { onMark: (m) => (mark = m) });
    expect(first).toEqual({ app: 'restart-app', restarted: true, dynos: 3 });
    expect(app.restarts.count).toBe(1);
    expect(app.restarts.at).toHaveLength(1);
    expect(heroku.state.requests.filter((r) => r.method === 'DELETE' && r.path === '/apps/restart-app/dynos')).toEqual([
      { method: 'DELETE', path: '/apps/restart-app/dynos', status: 202 },
    ]);
    expect(await restartAll(api, 'restart-app', { before: mark })).toEqual({ app: 'restart-app', restarted: false, dynos: 3 });
    expect(app.restarts.count).toBe(1);
  });

  it('refuses one-off dynos clearly, naming them', async () => {
    heroku.seedApp('oneoff-app', { formation: { web: 1, worker: 1 } });
    expect(await refuseOneOffDynos(api, 'oneoff-app')).toEqual({ app: 'oneoff-app', dynos: 2 });
    const console1 = heroku.startOneOff('oneoff-app', 'rails console');
    const job = heroku.startOneOff('oneoff-app', 'rake db:backfill');
    const err = await applicationFailureOf(refuseOneOffDynos(api, 'oneoff-app'));
    expect(err.nonRetryable).toBe(true);
    expect(err.type).toBe('OneOffDynosRunning');
    expect(err.message).toContain(`2 one-off dyno(s) running: ${console1.name} (up since`);
    expect(err.message).toContain(job.name);
    expect(err.message).toContain(`heroku ps:stop ${console1.name} -a oneoff-app`);
    expect(err.message).not.toContain(token);
  });

  it('maps Heroku errors: 401/404/422 non-retryable with Heroku id and message, 429/5xx retryable; never the token', async () => {
    heroku.seedApp('errors-app', { configVars: {} });
    const wrong = `HRKU-${randomBytes(18).toString('hex')}`;
    const unauthorized = await applicationFailureOf(
      herokuMaintenance(new HerokuClient({ token: wrong, apiUrl: heroku.url }), 'errors-app', true),
    );
    expect(unauthorized.nonRetryable).toBe(true);
    expect(unauthorized.message).toBe('Heroku API GET /apps/errors-app: 401 unauthorized: Invalid credentials provided.');
    expect(unauthorized.details).toEqual([{ status: 401, id: 'unauthorized', method: 'GET', path: '/apps/errors-app' }]);

    const missing = await applicationFailureOf(herokuMaintenance(api, 'no-such-app', true));
    expect(missing.nonRetryable).toBe(true);
    expect(missing.message).toBe("Heroku API GET /apps/no-such-app: 404 not_found: Couldn't find that app.");

    heroku.seedPostgres('errors-app', { url: `postgres://u:${randomBytes(8).toString('hex')}@db.example:5432/d` });
    const owned = await applicationFailureOf(api.patch('/apps/errors-app/config-vars', { DATABASE_URL: 'postgres://x' }));
    expect(owned.nonRetryable).toBe(true);
    expect(owned.message).toContain('422 invalid_params: Cannot overwrite attachment values DATABASE_URL.');

    heroku.failNext({ path: /^\/apps\/errors-app$/ }, 429);
    const limited = await applicationFailureOf(herokuMaintenance(api, 'errors-app', true));
    expect(limited.nonRetryable).toBe(false);
    expect(limited.type).toBe('HerokuRateLimited');
    heroku.failNext({ path: /^\/apps\/errors-app$/ }, 503, { id: 'service_unavailable', message: 'API is temporarily unavailable.' });
    const down = await applicationFailureOf(herokuMaintenance(api, 'errors-app', true));
    expect(down.nonRetryable).toBe(false);
    expect(down.message).toContain('503 service_unavailable');

    const unreachable = await applicationFailureOf(new HerokuClient({ token, apiUrl: 'http://127.0.0.1:1' }).get('/apps/errors-app'));
    expect(unreachable.nonRetryable).toBe(false);
    expect(unreachable.type).toBe('HerokuApiUnreachable');

    for (const e of [unauthorized, missing, owned, limited, down, unreachable]) {
      expect(`${e.message} ${JSON.stringify(e.details)}`).not.toContain(token);
      expect(`${e.message} ${JSON.stringify(e.details)}`).not.toContain(wrong);
    }
  });

  it('the stand-in requires the version-3 Accept header and a bearer token, like Heroku', async () => {
    heroku.seedApp('headers-app');
    const noAccept = await fetch(`${heroku.url}/apps/headers-app`, { headers: { Authorization: `Bearer ${token}` } });
    expect(noAccept.status).toBe(400);
    expect(((await noAccept.json()) as { id: string }).id).toBe('bad_request');
    const noToken = await fetch(`${heroku.url}/apps/headers-app`, { headers: { Accept: HEROKU_ACCEPT } });
    expect(noToken.status).toBe(401);
    expect(await noToken.json()).toEqual({ id: 'unauthorized', message: 'Invalid credentials provided.' });
  });
});

describe('ECS force-new-deployment (moto)', () => {
  const ecs = new ECSClient(motoConfig(loadStackEnv()));
  const cluster = `pgmig-test-${randomBytes(3).toString('hex')}`;
  beforeAll(async () => {
    await ecs.send(new CreateClusterCommand({ clusterName: cluster }));
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: `${cluster}-web`,
        containerDefinitions: [{ name: 'web', image: 'public.ecr.aws/nginx/nginx', memory: 128 }],
      }),
    );
    await ecs.send(new CreateServiceCommand({ cluster, serviceName: 'web', taskDefinition: `${cluster}-web`, desiredCount: 2 }));
  });

  it('starts a new deployment once; a retry that finds it does not start another', async () => {
    let before: string | null | undefined;
    const result = await ecsForceNewDeployment(ecs, cluster, 'web', { onMark: (m) => (before = m) });
    expect(result.forced).toBe(true);
    expect(result.previousDeploymentId).toBe(before);
    expect(result.deploymentId).toMatch(/^ecs-svc\//);
    expect(result.deploymentId).not.toBe(result.previousDeploymentId);
    const svc = (await ecs.send(new DescribeServicesCommand({ cluster, services: ['web'] }))).services![0];
    expect(svc.deployments?.find((d) => d.status === 'PRIMARY')?.id).toBe(result.deploymentId);

    const retry = await ecsForceNewDeployment(ecs, cluster, 'web', { before });
    expect(retry).toMatchObject({ forced: false, deploymentId: result.deploymentId });
    // moto runs no tasks: the rollout never leaves IN_PROGRESS there (on AWS it reaches COMPLETED).
    expect(await ecsDeploymentState(ecs, cluster, 'web', result.deploymentId)).toBe('IN_PROGRESS');
  });

  it('an unknown service is a clear non-retryable failure', async () => {
    const err = await applicationFailureOf(ecsForceNewDeployment(ecs, cluster, 'no-such-service'));
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toContain('no-such-service');
  });
});

describe('HTTP health checks', () => {
  let server: http.Server;
  let base: string;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url?.startsWith('/health')) res.writeHead(200).end('ok');
      else if (req.url === '/slow') setTimeout(() => res.writeHead(200).end('late'), 1_000);
      else if (req.url === '/created') res.writeHead(201).end();
      else res.writeHead(500).end('boom');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));

  it('reports status and latency per URL; a failure fails the smoke step naming the URL', async () => {
    const secretQuery = `token=${randomBytes(8).toString('hex')}`;
    const results = await httpHealthChecks([`${base}/health?${secretQuery}`, `${base}/broken`, `${base}/slow`, `${base}/created`], {
      timeoutMs: 300,
    });
    expect(results.map((r) => [r.url, r.ok, r.status])).toEqual([
      [`${base}/health`, true, 200],
      [`${base}/broken`, false, 500],
      [`${base}/slow`, false, null],
      [`${base}/created`, true, 201],
    ]);
    expect(results[2].error).toBe('no answer within 300 ms');
    expect(results[2].latencyMs).toBeGreaterThanOrEqual(290);
    expect(results[0].latencyMs).toBeLessThan(300);
    expect(JSON.stringify(results)).not.toContain(secretQuery);

    const err = (() => {
      try {
        assertHealthy(results);
      } catch (e) {
        return e as ApplicationFailure;
      }
    })()!;
    expect(err.type).toBe('SmokeTestFailed');
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toContain(`${base}/broken: status 500, expected 2xx`);
    expect(err.message).toContain(`${base}/slow: no answer within 300 ms`);

    expect(assertHealthy(await httpHealthChecks([`${base}/created`], { expectStatus: 201 }))).toHaveLength(1);
    expect((await httpHealthChecks([`${base}/health`], { expectStatus: [204] }))[0].ok).toBe(false);
  });
});
