/**
 * Controls the application around the cutover: Heroku maintenance mode, worker scaling, one
 * coordinated restart, the one-off dyno check, ECS force-new-deployment for apps already on AWS, and
 * HTTP health checks for the smoke step.
 *
 * The functions take their clients (a `HerokuClient`, an `ECSClient`) and plain arguments, so they are
 * testable without Temporal. The ones whose retry could do harm take the mark of an earlier attempt
 * (`opts.recorded` / `opts.before`) and report theirs before acting (`opts.onRecorded` / `opts.onMark`):
 * an activity passes its heartbeat details, so a retry after a worker crash neither records the
 * already-scaled-down counts (0) as the ones to restore nor restarts twice. `createAppControlActivities`
 * does exactly that and can be spread into the worker's activities.
 */
import { DescribeServicesCommand, ECSClient, UpdateServiceCommand, type Deployment } from '@aws-sdk/client-ecs';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import {
  appPath,
  openHerokuClient,
  type HerokuApp,
  type HerokuClient,
  type HerokuDyno,
  type HerokuFormation,
  type HerokuTarget,
} from '../heroku/platform-api';
import { redact, redactingActivities, type SecretClients } from '../secrets';

// ---------------------------------------------------------------- Heroku

export interface MaintenanceResult {
  app: string;
  maintenance: boolean;
  /** False when the app already was in the requested state. */
  changed: boolean;
}

/** Maintenance mode on or off; idempotent (reads first, changes only when needed). */
export async function herokuMaintenance(heroku: HerokuClient, app: string, on: boolean): Promise<MaintenanceResult> {
  const current = await heroku.get<HerokuApp>(appPath(app));
  if (current.maintenance === on) return { app, maintenance: on, changed: false };
  const updated = await heroku.patch<HerokuApp>(appPath(app), { maintenance: on });
  return { app, maintenance: updated.maintenance, changed: true };
}

/** Process type -> quantity, as found before scaling down: what `scaleUp` puts back. */
export type FormationCounts = Record<string, number>;

export interface ScaleRecord {
  app: string;
  counts: FormationCounts;
}

export type ScaleSelection = string[] | 'all-but-web';

/** The current quantities of the selected process types (read-only). */
export async function readFormation(heroku: HerokuClient, app: string, types: ScaleSelection): Promise<ScaleRecord> {
  const formation = await heroku.get<HerokuFormation[]>(appPath(app, '/formation'));
  const known = new Map(formation.map((f) => [f.type, f.quantity]));
  const selected = types === 'all-but-web' ? formation.map((f) => f.type).filter((t) => t !== 'web') : types;
  const unknown = selected.filter((t) => !known.has(t));
  if (unknown.length) {
    throw ApplicationFailure.nonRetryable(
      `Heroku app ${app} has no process type ${unknown.join(', ')} (it has: ${[...known.keys()].join(', ') || 'none'})`,
      'HerokuUnknownProcessType',
    );
  }
  return { app, counts: Object.fromEntries(selected.map((t) => [t, known.get(t)!])) };
}

/**
 * Scales the selected process types to 0 and returns their counts from before. `opts.recorded`: the
 * counts an earlier attempt recorded (its heartbeat); `opts.onRecorded` is called before anything changes.
 */
export async function scaleDown(
  heroku: HerokuClient,
  app: string,
  types: ScaleSelection,
  opts: { recorded?: ScaleRecord; onRecorded?: (record: ScaleRecord) => void } = {},
): Promise<ScaleRecord> {
  const record = opts.recorded?.app === app ? opts.recorded : await readFormation(heroku, app, types);
  opts.onRecorded?.(record);
  const current = await heroku.get<HerokuFormation[]>(appPath(app, '/formation'));
  const updates = current.filter((f) => f.type in record.counts && f.quantity !== 0).map((f) => ({ type: f.type, quantity: 0 }));
  if (updates.length) await heroku.patch(appPath(app, '/formation'), { updates });
  return record;
}

/** Puts the recorded quantities back (absolute, so idempotent). */
export async function scaleUp(heroku: HerokuClient, app: string, counts: FormationCounts): Promise<ScaleRecord> {
  const current = await heroku.get<HerokuFormation[]>(appPath(app, '/formation'));
  const now = new Map(current.map((f) => [f.type, f.quantity]));
  const updates = Object.entries(counts)
    .filter(([type, quantity]) => now.get(type) !== quantity)
    .map(([type, quantity]) => ({ type, quantity }));
  if (updates.length) await heroku.patch(appPath(app, '/formation'), { updates });
  return { app, counts };
}

/** Dynos that are not part of the formation: `heroku run` (run.N), Scheduler and release-phase dynos. */
export function oneOffDynos(dynos: HerokuDyno[], formationTypes: Iterable<string>): HerokuDyno[] {
  const types = new Set(formationTypes);
  return dynos.filter((d) => d.type === 'run' || d.type === 'scheduler' || d.type === 'release' || !types.has(d.type));
}

/**
 * Refuses (non-retryable) while one-off dynos run: a `heroku run rails console` or a Scheduler job
 * keeps the old DATABASE_URL and writes past the freeze. Like Heroku's own migrator, the operator
 * stops them (`heroku ps:stop run.1234`) or waits, then retries.
 */
export async function refuseOneOffDynos(heroku: HerokuClient, app: string): Promise<{ app: string; dynos: number }> {
  const [dynos, formation] = await Promise.all([
    heroku.get<HerokuDyno[]>(appPath(app, '/dynos')),
    heroku.get<HerokuFormation[]>(appPath(app, '/formation')),
  ]);
  const running = oneOffDynos(
    dynos,
    formation.map((f) => f.type),
  ).filter((d) => d.state !== 'crashed' && d.state !== 'down');
  if (running.length) {
    const names = running.map((d) => `${d.name} (${d.state} since ${d.created_at})`);
    throw ApplicationFailure.nonRetryable(
      `Heroku app ${app} has ${running.length} one-off dyno(s) running: ${names.join(', ')}. They would keep using the old database ` +
        `across the cutover; stop them (heroku ps:stop ${running[0].name} -a ${app}) or let them finish, then retry`,
      'OneOffDynosRunning',
      running.map((d) => ({ name: d.name, type: d.type, state: d.state, createdAt: d.created_at })),
    );
  }
  return { app, dynos: dynos.length };
}

export interface RestartMark {
  app: string;
  /** The newest formation dyno's `created_at` before the restart (Heroku's clock). */
  newestBefore: string | null;
}

export interface RestartResult {
  app: string;
  restarted: boolean;
  dynos: number;
}

/**
 * One coordinated restart of every dyno (DELETE /apps/{app}/dynos): no process keeps the old URL while
 * others use the new one. `opts.before` is an earlier attempt's mark: when every formation dyno is newer
 * than it, that attempt's restart happened and is not repeated.
 */
export async function restartAll(
  heroku: HerokuClient,
  app: string,
  opts: { before?: RestartMark; onMark?: (mark: RestartMark) => void } = {},
): Promise<RestartResult> {
  const [dynos, formation] = await Promise.all([
    heroku.get<HerokuDyno[]>(appPath(app, '/dynos')),
    heroku.get<HerokuFormation[]>(appPath(app, '/formation')),
  ]);
  const types = new Set(formation.map((f) => f.type));
  const running = dynos.filter((d) => types.has(d.type));
  if (
    opts.before?.app === app &&
    opts.before.newestBefore &&
    running.length &&
    running.every((d) => Date.parse(d.created_at) > Date.parse(opts.before!.newestBefore!))
  ) {
    return { app, restarted: false, dynos: running.length };
  }
  const newest = running.map((d) => d.created_at).sort((a, b) => Date.parse(b) - Date.parse(a))[0] ?? null;
  opts.onMark?.({ app, newestBefore: opts.before?.app === app ? opts.before.newestBefore : newest });
  await heroku.delete(appPath(app, '/dynos'));
  return { app, restarted: true, dynos: running.length };
}

// ---------------------------------------------------------------- ECS

export interface EcsDeploymentResult {
  cluster: string;
  service: string;
  /** The PRIMARY deployment after the call. */
  deploymentId: string;
  previousDeploymentId: string | null;
  rolloutState: string | null;
  /** False when an earlier attempt had already started the new deployment. */
  forced: boolean;
}

async function primaryDeployment(ecs: ECSClient, cluster: string, service: string): Promise<Deployment | undefined> {
  const out = await ecs.send(new DescribeServicesCommand({ cluster, services: [service] }));
  const svc = out.services?.[0];
  if (!svc || svc.status === 'INACTIVE') {
    const reason = out.failures?.[0]?.reason ?? (svc ? 'INACTIVE' : 'not found');
    throw ApplicationFailure.nonRetryable(`ECS service ${service} in cluster ${cluster}: ${reason}`, 'EcsServiceNotFound');
  }
  return svc.deployments?.find((d) => d.status === 'PRIMARY');
}

function ecsFailure(err: unknown, cluster: string, service: string): never {
  const e = err as Error & { $fault?: string };
  const message = redact(`ECS ${cluster}/${service}: ${e.name}: ${e.message}`);
  if (e.$fault === 'client') throw ApplicationFailure.nonRetryable(message, e.name);
  throw ApplicationFailure.retryable(message, e.name);
}

/**
 * UpdateService --force-new-deployment: ECS replaces every task, and new tasks read the new
 * DATABASE_URL (from SSM / Secrets Manager / the task definition) at start. The replacement is rolling;
 * old tasks cannot write to the old database meanwhile because the source is frozen read-only.
 */
export async function ecsForceNewDeployment(
  ecs: ECSClient,
  cluster: string,
  service: string,
  opts: { before?: string | null; onMark?: (primaryBefore: string | null) => void } = {},
): Promise<EcsDeploymentResult> {
  try {
    const primary = await primaryDeployment(ecs, cluster, service);
    if (opts.before !== undefined && primary?.id && primary.id !== opts.before) {
      // An earlier attempt's deployment is the primary one now.
      return {
        cluster,
        service,
        deploymentId: primary.id,
        previousDeploymentId: opts.before,
        rolloutState: primary.rolloutState ?? null,
        forced: false,
      };
    }
    const before = opts.before !== undefined ? opts.before : (primary?.id ?? null);
    opts.onMark?.(before);
    const out = await ecs.send(new UpdateServiceCommand({ cluster, service, forceNewDeployment: true }));
    const next = out.service?.deployments?.find((d) => d.status === 'PRIMARY');
    return {
      cluster,
      service,
      deploymentId: next?.id ?? '',
      previousDeploymentId: before,
      rolloutState: next?.rolloutState ?? null,
      forced: true,
    };
  } catch (err) {
    if (err instanceof ApplicationFailure) throw err;
    ecsFailure(err, cluster, service);
  }
}

/** Rollout state of a deployment (COMPLETED / IN_PROGRESS / FAILED), for a caller that waits for it. */
export async function ecsDeploymentState(ecs: ECSClient, cluster: string, service: string, deploymentId: string): Promise<string | null> {
  try {
    const out = await ecs.send(new DescribeServicesCommand({ cluster, services: [service] }));
    return out.services?.[0]?.deployments?.find((d) => d.id === deploymentId)?.rolloutState ?? null;
  } catch (err) {
    ecsFailure(err, cluster, service);
  }
}

// ---------------------------------------------------------------- HTTP health

export interface HealthCheckResult {
  /** The URL without credentials or query string (which may carry tokens). */
  url: string;
  ok: boolean;
  status: number | null;
  latencyMs: number;
  error?: string;
}

export interface HealthCheckOptions {
  timeoutMs?: number;
  /** Expected status code(s); default: any 2xx. */
  expectStatus?: number | number[];
  fetch?: typeof fetch;
}

export function displayUrl(raw: string): string {
  try {
    const u = new URL(raw);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

/** GETs every URL in parallel; never throws (each result says ok or not and why). */
export async function httpHealthChecks(urls: string[], opts: HealthCheckOptions = {}): Promise<HealthCheckResult[]> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const expected = opts.expectStatus === undefined ? undefined : Array.isArray(opts.expectStatus) ? opts.expectStatus : [opts.expectStatus];
  const fetchFn = opts.fetch ?? fetch;
  return Promise.all(
    urls.map(async (url): Promise<HealthCheckResult> => {
      const started = performance.now();
      const latency = () => Math.round(performance.now() - started);
      try {
        const res = await fetchFn(url, {
          method: 'GET',
          redirect: 'follow',
          signal: AbortSignal.timeout(timeoutMs),
          headers: { 'User-Agent': 'pg-cutover smoke' },
        });
        await res.arrayBuffer().catch(() => undefined);
        const ok = expected ? expected.includes(res.status) : res.status >= 200 && res.status < 300;
        return {
          url: displayUrl(url),
          ok,
          status: res.status,
          latencyMs: latency(),
          ...(ok ? {} : { error: `status ${res.status}, expected ${expected ? expected.join(' or ') : '2xx'}` }),
        };
      } catch (err) {
        const e = err as Error & { cause?: { code?: string } };
        const error =
          e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : `${e.message}${e.cause?.code ? ` (${e.cause.code})` : ''}`;
        return { url: displayUrl(url), ok: false, status: null, latencyMs: latency(), error: redact(error) };
      }
    }),
  );
}

/** Fails the smoke step (non-retryable: the workflow compensates) when any check failed. */
export function assertHealthy(results: HealthCheckResult[]): HealthCheckResult[] {
  const failed = results.filter((r) => !r.ok);
  if (failed.length) {
    throw ApplicationFailure.nonRetryable(
      `HTTP health check failed: ${failed.map((r) => `${r.url}: ${r.error ?? r.status}`).join('; ')}`,
      'SmokeTestFailed',
      results,
    );
  }
  return results;
}

// ---------------------------------------------------------------- activities

export interface AppControlDeps extends SecretClients {
  /** ECS client; created on first use (AWS_ENDPOINT_URL / region from the environment) when absent. */
  ecs?: () => ECSClient;
  fetch?: typeof fetch;
}

/** The heartbeat details of an earlier attempt of this activity, if it is one. */
function earlierAttempt<T>(): T | undefined {
  try {
    return Context.current().info.heartbeatDetails as T | undefined;
  } catch {
    return undefined; // not inside an activity
  }
}

function heartbeat(details: unknown): void {
  try {
    Context.current().heartbeat(details);
  } catch {
    // not inside an activity
  }
}

/**
 * Activity-shaped wrappers (a Heroku app is `{ app, token: SecretRef, apiUrl? }`; the token is resolved
 * here). Spread into the worker's activities: `{ ...createActivities(deps), ...createAppControlActivities(deps) }`.
 */
export function createAppControlActivities(deps: AppControlDeps) {
  let ecs: ECSClient | undefined;
  const ecsClient = () => (deps.ecs ? deps.ecs() : (ecs ??= new ECSClient({})));
  const heroku = (target: HerokuTarget) => openHerokuClient(target, deps, 'heroku.token');
  const activities = {
    async herokuMaintenance(args: { heroku: HerokuTarget; on: boolean }): Promise<MaintenanceResult> {
      return herokuMaintenance(await heroku(args.heroku), args.heroku.app, args.on);
    },
    /** Read first, change second: the undo then knows the counts even if the scale-down never reports back. */
    async herokuReadFormation(args: { heroku: HerokuTarget; types: ScaleSelection }): Promise<ScaleRecord> {
      return readFormation(await heroku(args.heroku), args.heroku.app, args.types);
    },
    async herokuScaleDown(args: { heroku: HerokuTarget; types: ScaleSelection }): Promise<ScaleRecord> {
      return scaleDown(await heroku(args.heroku), args.heroku.app, args.types, {
        recorded: earlierAttempt<ScaleRecord>(),
        onRecorded: heartbeat,
      });
    },
    async herokuScaleUp(args: { heroku: HerokuTarget; counts: FormationCounts }): Promise<ScaleRecord> {
      return scaleUp(await heroku(args.heroku), args.heroku.app, args.counts);
    },
    async herokuRestartAll(args: { heroku: HerokuTarget }): Promise<RestartResult> {
      return restartAll(await heroku(args.heroku), args.heroku.app, { before: earlierAttempt<RestartMark>(), onMark: heartbeat });
    },
    async herokuRefuseOneOffDynos(args: { heroku: HerokuTarget }): Promise<{ app: string; dynos: number }> {
      return refuseOneOffDynos(await heroku(args.heroku), args.heroku.app);
    },
    async ecsForceNewDeployment(args: { cluster: string; service: string }): Promise<EcsDeploymentResult> {
      const before = earlierAttempt<{ primaryBefore: string | null }>();
      return ecsForceNewDeployment(ecsClient(), args.cluster, args.service, {
        before: before ? before.primaryBefore : undefined,
        onMark: (primaryBefore) => heartbeat({ primaryBefore }),
      });
    },
    async httpHealthChecks(args: { urls: string[]; timeoutMs?: number; expectStatus?: number | number[] }): Promise<HealthCheckResult[]> {
      return assertHealthy(
        await httpHealthChecks(args.urls, { timeoutMs: args.timeoutMs, expectStatus: args.expectStatus, fetch: deps.fetch }),
      );
    },
  };
  // Whatever escapes (an unexpected TypeError, say) leaves redacted, as from createActivities.
  return redactingActivities(activities);
}

export type AppControlActivities = ReturnType<typeof createAppControlActivities>;
