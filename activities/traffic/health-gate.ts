/**
 * The health gate between two traffic steps, like Flagger's canary analysis: Route 53 health check
 * status and HTTP probes against the application, judged by an error-rate threshold. The bake
 * before it is a durable timer in the workflow, not here.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { GetHealthCheckStatusCommand } from '@aws-sdk/client-route-53';
import type { ApplicationFailure } from '@temporalio/common';
import { UNPARSEABLE_ANSWER } from '../aws/failure';
import { redact } from '../secrets';
import { invalid, route53Failure } from './failure';
import type { Route53Clients } from './records';

export interface ProbeSpec {
  url: string;
  /** The status that counts as success; default any 2xx. */
  expectStatus?: number;
}

export interface HealthGateSpec {
  /** Route 53 health checks: healthy when every checker's last report is `Success`. */
  healthCheckIds?: string[];
  probes?: ProbeSpec[];
  /** Rounds: each round asks every health check and every probe once. */
  samples: number;
  /** Pause between rounds. */
  intervalMs: number;
  /** Failed probe requests / probe requests above this fails the gate (0 = any failure fails). */
  maxErrorRate: number;
  /** Per probe request; default 5 s. */
  probeTimeoutMs?: number;
}

export type HealthCheckState = 'healthy' | 'unhealthy' | 'error' | 'unavailable';

export interface HealthCheckOutcome {
  id: string;
  /** Worst state seen over the samples (`unavailable`: the API could not be used, see `detail`). */
  status: HealthCheckState;
  samples: number;
  healthySamples: number;
  /** The last answer: checker count and the reports that were not Success, or the error. */
  detail?: string;
}

export interface ProbeOutcome {
  url: string;
  sample: number;
  ok: boolean;
  /** HTTP status; 0 when no answer came (connection refused, timeout). */
  status: number;
  ms: number;
  error?: string;
}

export interface HealthGateResult {
  ok: boolean;
  /** Failed probe requests / probe requests (0 without probes). */
  errorRate: number;
  healthChecks: HealthCheckOutcome[];
  probes: ProbeOutcome[];
  /** Rounds taken; fewer than `samples` when the gate could already not pass. */
  samplesTaken: number;
  reason?: string;
  /** E.g. that health checks could not be read and the gate went on the probes alone. */
  notes?: string[];
}

function validateGate(gate: HealthGateSpec): void {
  if (!gate) throw invalid('gate is required');
  const checks = gate.healthCheckIds ?? [];
  const probes = gate.probes ?? [];
  if (checks.length === 0 && probes.length === 0) {
    throw invalid('a health gate needs at least one health check id or probe (a gate that checks nothing would always pass)');
  }
  if (!Number.isInteger(gate.samples) || gate.samples < 1)
    throw invalid(`gate.samples must be a positive integer (got ${JSON.stringify(gate.samples)})`);
  if (typeof gate.intervalMs !== 'number' || !(gate.intervalMs >= 0))
    throw invalid(`gate.intervalMs must be >= 0 (got ${JSON.stringify(gate.intervalMs)})`);
  if (typeof gate.maxErrorRate !== 'number' || !(gate.maxErrorRate >= 0 && gate.maxErrorRate <= 1)) {
    throw invalid(`gate.maxErrorRate must be a fraction from 0 to 1 (got ${JSON.stringify(gate.maxErrorRate)})`);
  }
  for (const p of probes) {
    try {
      const u = new URL(p.url);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
    } catch {
      throw invalid(`probe url must be an http(s) URL (got ${JSON.stringify(redact(String(p?.url)))})`);
    }
  }
}

/** An answer that is not an AWS answer at all: the endpoint (an emulator) does not implement the operation. */
function notImplemented(f: ApplicationFailure): boolean {
  return f.type === UNPARSEABLE_ANSWER || /UnknownOperation|NotImplemented|InvalidAction/.test(`${f.type} ${f.message}`);
}

async function healthCheckSample(clients: Route53Clients, id: string): Promise<{ state: HealthCheckState; detail: string }> {
  let lastErr: ApplicationFailure | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const out = await clients.route53.send(new GetHealthCheckStatusCommand({ HealthCheckId: id }));
      const obs = out.HealthCheckObservations ?? [];
      if (obs.length === 0) return { state: 'unhealthy', detail: 'no checker has reported yet' };
      const failing = obs.filter((o) => !/^Success/.test(o.StatusReport?.Status ?? ''));
      return failing.length === 0
        ? { state: 'healthy', detail: `${obs.length} checker(s) report Success` }
        : {
            state: 'unhealthy',
            detail: `${failing.length} of ${obs.length} checker(s) not Success: ${failing
              .slice(0, 3)
              .map((o) => `${o.Region ?? '?'}: ${o.StatusReport?.Status ?? 'no status'}`)
              .join('; ')}`,
          };
    } catch (err) {
      lastErr = route53Failure(`GetHealthCheckStatus ${id}`, err);
      if (notImplemented(lastErr)) return { state: 'unavailable', detail: lastErr.message };
      if (lastErr.nonRetryable) break;
      await delay(200 * (attempt + 1));
    }
  }
  return { state: 'error', detail: lastErr?.message ?? 'unknown error' };
}

async function probeOnce(
  fetchFn: typeof fetch,
  p: ProbeSpec,
  sample: number,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<ProbeOutcome> {
  const t0 = performance.now();
  const url = redact(p.url);
  const timeout = AbortSignal.timeout(timeoutMs);
  const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
  try {
    const res = await fetchFn(p.url, {
      method: 'GET',
      redirect: 'manual',
      signal: combined,
      headers: { 'user-agent': 'pgmig-health-gate' },
    });
    await res.arrayBuffer().catch(() => undefined);
    const ok = p.expectStatus !== undefined ? res.status === p.expectStatus : res.status >= 200 && res.status < 300;
    return { url, sample, ok, status: res.status, ms: Math.round(performance.now() - t0) };
  } catch (err) {
    if (signal?.aborted) throw signal.reason ?? err;
    const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
    const why =
      e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message ?? String(err));
    return { url, sample, ok: false, status: 0, ms: Math.round(performance.now() - t0), error: redact(String(why)) };
  }
}

/**
 * Canary analysis between two steps: `samples` rounds `intervalMs` apart, each asking every Route 53
 * health check (GetHealthCheckStatus: healthy when all checkers report Success) and every HTTP probe.
 * Fails when a health check is not healthy in some round, or the probes' error rate exceeds
 * `maxErrorRate`; stops early once the outcome can only be a failure. A health check API the
 * endpoint does not implement is recorded (`unavailable`, with the error) and the gate goes on the
 * probes alone when it has some (said in `notes`); without probes it fails.
 */
export async function healthGate(
  clients: Route53Clients,
  gate: HealthGateSpec,
  opts: { signal?: AbortSignal; onSample?: (round: number, partial: HealthGateResult) => void } = {},
): Promise<HealthGateResult> {
  validateGate(gate);
  const fetchFn = clients.fetch ?? fetch;
  const checkIds = gate.healthCheckIds ?? [];
  const probeSpecs = gate.probes ?? [];
  const checks: HealthCheckOutcome[] = checkIds.map((id) => ({ id, status: 'healthy', samples: 0, healthySamples: 0 }));
  const probes: ProbeOutcome[] = [];
  const notes: string[] = [];
  const rank: Record<HealthCheckState, number> = { healthy: 0, unavailable: 1, unhealthy: 2, error: 3 };
  const totalProbeRequests = gate.samples * probeSpecs.length;
  let reason: string | undefined;
  let samplesTaken = 0;

  const build = (): HealthGateResult => {
    const failed = probes.filter((p) => !p.ok).length;
    const errorRate = probes.length ? failed / probes.length : 0;
    return {
      ok: reason === undefined,
      errorRate,
      healthChecks: checks.map((c) => ({ ...c })),
      probes: [...probes],
      samplesTaken,
      ...(reason !== undefined ? { reason } : {}),
      ...(notes.length ? { notes: [...notes] } : {}),
    };
  };

  for (let round = 1; round <= gate.samples; round++) {
    if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('cancelled');
    const [checkResults, probeResults] = await Promise.all([
      Promise.all(checkIds.map((id) => healthCheckSample(clients, id))),
      Promise.all(probeSpecs.map((p) => probeOnce(fetchFn, p, round, gate.probeTimeoutMs ?? 5_000, opts.signal))),
    ]);
    samplesTaken = round;
    checkResults.forEach((r, i) => {
      const c = checks[i];
      c.samples++;
      if (r.state === 'healthy') c.healthySamples++;
      if (rank[r.state] >= rank[c.status]) {
        c.status = r.state;
        c.detail = r.detail;
      }
    });
    probes.push(...probeResults);

    const bad = checks.filter((c) => c.status === 'unhealthy' || c.status === 'error');
    const unavailable = checks.filter((c) => c.status === 'unavailable');
    if (bad.length) {
      reason = `Route 53 health check ${bad.map((c) => `${c.id} ${c.status} (${c.detail})`).join('; ')}`;
    } else if (unavailable.length && probeSpecs.length === 0) {
      reason = `Route 53 health check status could not be read and there are no probes to go on: ${unavailable[0].detail}`;
    } else if (totalProbeRequests > 0) {
      const failed = probes.filter((p) => !p.ok).length;
      // Stop as soon as the error rate over the whole gate can no longer stay within the threshold.
      if (failed / totalProbeRequests > gate.maxErrorRate) {
        const last = probes.filter((p) => !p.ok).slice(-1)[0];
        reason =
          `probe error rate ${failed}/${probes.length} exceeds ${gate.maxErrorRate} ` +
          `(over ${totalProbeRequests} planned requests; last failure: ${last.url} ${last.status ? `HTTP ${last.status}` : last.error})`;
      }
    }
    if (unavailable.length && probeSpecs.length > 0 && notes.length === 0) {
      notes.push(`health check status unavailable (${unavailable[0].detail}); the gate went on the HTTP probes alone`);
    }
    opts.onSample?.(round, build());
    if (reason !== undefined) break;
    if (round < gate.samples && gate.intervalMs > 0) {
      try {
        await delay(gate.intervalMs, undefined, { signal: opts.signal });
      } catch (err) {
        throw opts.signal?.reason ?? err;
      }
    }
  }
  return build();
}
