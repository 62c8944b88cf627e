/**
 * Route 53 weighted traffic shift (old -> new) as plain functions over an injected SDK client (and a
 * `fetch` for HTTP probes), so activities wrap them with heartbeats and cancellation and tests run
 * them against a real HTTP server (moto).
 *
 * The building blocks map one to one onto workflow steps: `readWeightedRecords` (record the
 * original weights and TTLs in history before anything changes), `lowerTtl` / `restoreTtl`,
 * `setWeights` (one ChangeResourceRecordSets batch of UPSERTs, then GetChange until `INSYNC`),
 * `healthGate` (Route 53 health check status and HTTP probes, an error-rate threshold, like
 * Flagger's canary analysis) and `stepWeights` (the weights of one step). The bake between steps is
 * a durable timer in the workflow. `shiftTraffic` runs the whole shift inside one activity, for a
 * single-activity mode and for the tests.
 *
 * Idempotency: every write reads the records first and UPSERTs only what differs, keeping each
 * record as Route 53 returned it (values or alias target, TTL, health check id, ...) and changing
 * only the one field. Running a call twice leaves the zone as running it once. What a retry cannot
 * know is the state *before* the first attempt: the `previous` / `previousTtl` of a retried call
 * show the values the first attempt already wrote. Undo data must therefore come from a
 * `readWeightedRecords` result recorded before the first change (shiftTraffic takes it as
 * `original`), never from a retried write.
 *
 * Errors no retry can fix (unknown zone or record, invalid input, access denied) are non-retryable
 * ApplicationFailures whose type is the AWS error code; others are retryable (`awsFailure` of
 * dms.ts). Waits reuse dms.ts's `pollUntil` (progress after every poll, cancellation, a retryable
 * `DmsWaitTimeout` at the limit).
 */
import { setTimeout as delay } from 'node:timers/promises';
import {
  ChangeResourceRecordSetsCommand,
  GetChangeCommand,
  GetHealthCheckStatusCommand,
  ListResourceRecordSetsCommand,
  type AliasTarget,
  type Change,
  type ResourceRecordSet,
  type Route53Client,
  type RRType,
} from '@aws-sdk/client-route-53';
import { ApplicationFailure } from '@temporalio/common';
import { awsFailure, pollUntil, type DmsWaitProgress, type PollOptions } from './dms';
import { redact } from './secrets';

export interface Route53Clients {
  route53: Route53Client;
  /** For HTTP probes in `healthGate`; defaults to the global fetch. */
  fetch?: typeof fetch;
}

/** One weighted record set group: all records of this name and type that carry a SetIdentifier and a Weight. */
export interface WeightedRecordSpec {
  /** `Z0123...` or `/hostedzone/Z0123...` (not the zone's name). */
  hostedZoneId: string;
  /** e.g. `db.example.com` (a trailing dot is optional; case does not matter). */
  recordName: string;
  type: RRType;
}

export interface WeightedRecord {
  setIdentifier: string;
  weight: number;
  /** Absent for alias records (their TTL is the alias target's). */
  ttl?: number;
  /** The record's values (ResourceRecords), absent for alias records. */
  values?: string[];
  aliasTarget?: AliasTarget;
  healthCheckId?: string;
  /** The record set exactly as Route 53 returned it: UPSERTs send it back with one field changed. */
  recordSet: ResourceRecordSet;
}

export interface ChangeWait {
  changeId: string;
  /** GetChange calls until INSYNC. */
  polls: number;
  ms: number;
}

// ---------------------------------------------------------------------------------------------
// Errors

function invalid(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(redact(message), 'Route53InvalidInput');
}

/** Route 53 error codes no retry can fix, with what to check. */
const NON_RETRYABLE: Record<string, string> = {
  NoSuchHostedZone:
    "check hostedZoneId (the zone ID such as Z0123456789ABC, not its name) and that the worker's credentials belong to the account that owns the zone",
  NoSuchHealthCheck: 'check the health check id',
  InvalidChangeBatch: 'the change batch was refused as a whole; nothing was changed',
  InvalidInput: 'a parameter is malformed',
  InvalidArgument: 'a parameter is malformed',
  InvalidDomainName: 'check recordName',
  NoSuchChange: 'the change id is unknown (Route 53 keeps change ids for a limited time)',
};

/**
 * An SDK error as an ApplicationFailure naming the action: the Route 53 codes above are
 * non-retryable with a hint; everything else goes through dms.ts's `awsFailure` (access denied and
 * validation errors non-retryable, throttling, `PriorRequestNotComplete` and 5xx retryable).
 */
export function route53Failure(action: string, err: unknown): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const e = (err ?? {}) as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const name = e.name ?? 'Error';
  if (name in NON_RETRYABLE) {
    const status = e.$metadata?.httpStatusCode;
    const first = redact(String(e.message ?? err)).split('\n')[0];
    return ApplicationFailure.nonRetryable(
      `${action}: ${name}${status ? ` (HTTP ${status})` : ''}: ${first} (${NON_RETRYABLE[name]})`,
      name,
    );
  }
  return awsFailure(action, err);
}

async function aws<T>(action: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw route53Failure(action, err);
  }
}

// ---------------------------------------------------------------------------------------------
// Names and validation

/** Route 53 returns names in lower case, fully qualified, with `*` as `\052`. */
function normalizeName(name: string): string {
  let n = name.trim().toLowerCase().replace(/\\052/g, '*');
  if (!n.endsWith('.')) n += '.';
  return n;
}

function zoneLabel(spec: WeightedRecordSpec): string {
  return `${spec.recordName} ${spec.type} in zone ${spec.hostedZoneId}`;
}

function validateSpec(spec: WeightedRecordSpec): void {
  if (!spec || typeof spec.hostedZoneId !== 'string' || !/^(\/hostedzone\/)?[A-Za-z0-9]+$/.test(spec.hostedZoneId)) {
    throw invalid(`hostedZoneId must be a Route 53 zone ID such as Z0123456789ABC (got ${JSON.stringify(spec?.hostedZoneId)})`);
  }
  if (typeof spec.recordName !== 'string' || !spec.recordName.trim() || /\s/.test(spec.recordName.trim())) {
    throw invalid(`recordName must be a DNS name (got ${JSON.stringify(spec.recordName)})`);
  }
  if (typeof spec.type !== 'string' || !spec.type) throw invalid('type must be a record type such as CNAME');
}

function validateWeight(id: string, w: unknown): number {
  if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w > 255) {
    throw invalid(`weight of ${JSON.stringify(id)} must be an integer from 0 to 255 (got ${JSON.stringify(w)})`);
  }
  return w;
}

// ---------------------------------------------------------------------------------------------
// Read

/**
 * The weighted record sets of one name and type (those with a SetIdentifier and a Weight), in
 * Route 53's order. Pages through ListResourceRecordSets from the name, so large zones cost only
 * the pages that hold the name. An unknown zone is a non-retryable `NoSuchHostedZone`.
 */
export async function readWeightedRecords(clients: Route53Clients, spec: WeightedRecordSpec): Promise<WeightedRecord[]> {
  validateSpec(spec);
  const name = normalizeName(spec.recordName);
  const out: WeightedRecord[] = [];
  let start: { name: string; type: RRType; identifier?: string } | undefined = { name, type: spec.type };
  while (start) {
    const page = await aws(`ListResourceRecordSets ${zoneLabel(spec)}`, () =>
      clients.route53.send(
        new ListResourceRecordSetsCommand({
          HostedZoneId: spec.hostedZoneId,
          StartRecordName: start!.name,
          StartRecordType: start!.type,
          StartRecordIdentifier: start!.identifier,
          MaxItems: 300,
        }),
      ),
    );
    let pastIt = false;
    for (const rs of page.ResourceRecordSets ?? []) {
      if (normalizeName(rs.Name ?? '') !== name || rs.Type !== spec.type) {
        pastIt = true;
        break;
      }
      if (rs.SetIdentifier === undefined || rs.Weight === undefined) continue;
      out.push({
        setIdentifier: rs.SetIdentifier,
        weight: rs.Weight,
        ...(rs.TTL !== undefined ? { ttl: rs.TTL } : {}),
        ...(rs.ResourceRecords ? { values: rs.ResourceRecords.map((r) => r.Value ?? '') } : {}),
        ...(rs.AliasTarget ? { aliasTarget: rs.AliasTarget } : {}),
        ...(rs.HealthCheckId ? { healthCheckId: rs.HealthCheckId } : {}),
        recordSet: rs,
      });
    }
    start =
      !pastIt && page.IsTruncated && page.NextRecordName && normalizeName(page.NextRecordName) === name && page.NextRecordType === spec.type
        ? { name: page.NextRecordName, type: page.NextRecordType, identifier: page.NextRecordIdentifier }
        : undefined;
  }
  return out;
}

/** Weights by set identifier. */
export function weightsOf(records: WeightedRecord[]): Record<string, number> {
  return Object.fromEntries(records.map((r) => [r.setIdentifier, r.weight]));
}

async function readRequired(clients: Route53Clients, spec: WeightedRecordSpec, ids: string[]): Promise<WeightedRecord[]> {
  const records = await readWeightedRecords(clients, spec);
  const missing = ids.filter((id) => !records.some((r) => r.setIdentifier === id));
  if (records.length === 0) {
    throw ApplicationFailure.nonRetryable(
      `${zoneLabel(spec)}: no weighted records (a record with SetIdentifier and Weight) of that name and type`,
      'Route53RecordNotFound',
    );
  }
  if (missing.length) {
    throw ApplicationFailure.nonRetryable(
      `${zoneLabel(spec)}: no weighted record with SetIdentifier ${missing.map((m) => JSON.stringify(m)).join(', ')} (there are ${records
        .map((r) => JSON.stringify(r.setIdentifier))
        .join(', ')})`,
      'Route53RecordNotFound',
    );
  }
  return records;
}

// ---------------------------------------------------------------------------------------------
// Changes

/** Route 53 changes normally reach every authoritative server within 60 s. */
const CHANGE_WAIT_DEFAULTS = { intervalMs: 5_000, timeoutMs: 10 * 60_000 };

/**
 * GetChange until the change is `INSYNC` (on all Route 53 authoritative servers). Progress after
 * every poll; a retryable `DmsWaitTimeout` at `timeoutMs`; cancellation through `signal`.
 */
export async function waitForChange(clients: Route53Clients, changeId: string, opts: PollOptions = {}): Promise<ChangeWait> {
  const t0 = Date.now();
  let polls = 0;
  await pollUntil(
    `Route 53 change ${changeId}`,
    async () => {
      polls++;
      const out = await aws(`GetChange ${changeId}`, () => clients.route53.send(new GetChangeCommand({ Id: changeId })));
      const status = out.ChangeInfo?.Status ?? 'unknown';
      return status === 'INSYNC' ? { done: true, value: status } : { done: false, status };
    },
    opts,
    CHANGE_WAIT_DEFAULTS,
  );
  return { changeId, polls, ms: Date.now() - t0 };
}

export interface ChangeOptions extends PollOptions {
  /**
   * Called with the change id right after Route 53 accepted the batch, before the wait: activities
   * put it in their heartbeat details and pass it back as `resumeChangeId` on the next attempt.
   */
  onSubmitted?: (changeId: string) => void;
  /**
   * The change id a previous attempt submitted (from its heartbeat details). When that attempt's
   * change already landed, the records are as wanted and nothing is submitted; this id is then
   * waited on instead, so a retry still confirms INSYNC.
   */
  resumeChangeId?: string;
  /** Comment on the change batch (shown in CloudTrail). */
  comment?: string;
}

async function submit(
  clients: Route53Clients,
  spec: WeightedRecordSpec,
  recordSets: ResourceRecordSet[],
  opts: ChangeOptions,
): Promise<ChangeWait | undefined> {
  if (recordSets.length === 0) {
    return opts.resumeChangeId ? waitForChange(clients, opts.resumeChangeId, opts) : undefined;
  }
  const changes: Change[] = recordSets.map((rs) => ({ Action: 'UPSERT', ResourceRecordSet: rs }));
  const out = await aws(`ChangeResourceRecordSets ${zoneLabel(spec)}`, () =>
    clients.route53.send(
      new ChangeResourceRecordSetsCommand({
        HostedZoneId: spec.hostedZoneId,
        ChangeBatch: { Changes: changes, ...(opts.comment ? { Comment: opts.comment } : {}) },
      }),
    ),
  );
  const changeId = out.ChangeInfo?.Id;
  if (!changeId)
    throw ApplicationFailure.retryable(
      `ChangeResourceRecordSets ${zoneLabel(spec)}: no change id in the answer`,
      'Route53UnexpectedResponse',
    );
  opts.onSubmitted?.(changeId);
  return waitForChange(clients, changeId, opts);
}

// ---------------------------------------------------------------------------------------------
// TTL

export interface LowerTtlResult {
  /** TTL each record had before (by set identifier); records already at or below the TTL are listed too. */
  previousTtl: Record<string, number>;
  /** Records whose TTL this call changed. */
  changed: string[];
  /** Alias records have no TTL of their own. */
  skipped: { setIdentifier: string; reason: string }[];
  change?: ChangeWait;
  /**
   * Resolvers may keep answers cached with the old TTL for this long after the change is INSYNC:
   * wait this long (a durable timer) before the first weight change for the lower TTL to be in force.
   * Counts only the records this call changed (0 on a retry whose first attempt had lowered them).
   */
  oldAnswersExpireAfterMs: number;
}

/**
 * UPSERTs every weighted record whose TTL is above `ttlSeconds` with that TTL (values and weights
 * kept), in one batch, and waits for INSYNC. Records already at or below it are left alone, so a
 * second call changes nothing. Undo: `restoreTtl(clients, spec, result.previousTtl)` (see the module
 * comment about retries: take TTLs for the undo from a `readWeightedRecords` result recorded first).
 */
export async function lowerTtl(
  clients: Route53Clients,
  spec: WeightedRecordSpec,
  ttlSeconds: number,
  opts: ChangeOptions = {},
): Promise<LowerTtlResult> {
  if (typeof ttlSeconds !== 'number' || !Number.isInteger(ttlSeconds) || ttlSeconds < 0 || ttlSeconds > 2_147_483_647) {
    throw invalid(`ttlSeconds must be a non-negative integer (got ${JSON.stringify(ttlSeconds)})`);
  }
  const records = await readRequired(clients, spec, []);
  const previousTtl: Record<string, number> = {};
  const skipped: LowerTtlResult['skipped'] = [];
  const updates: ResourceRecordSet[] = [];
  const changed: string[] = [];
  for (const r of records) {
    if (r.ttl === undefined) {
      skipped.push({ setIdentifier: r.setIdentifier, reason: "alias record: its TTL is the alias target's" });
      continue;
    }
    previousTtl[r.setIdentifier] = r.ttl;
    if (r.ttl > ttlSeconds) {
      updates.push({ ...r.recordSet, TTL: ttlSeconds });
      changed.push(r.setIdentifier);
    }
  }
  const change = await submit(clients, spec, updates, { comment: `pgmig: lower TTL to ${ttlSeconds}s`, ...opts });
  const longest = Math.max(0, ...records.filter((r) => changed.includes(r.setIdentifier)).map((r) => r.ttl ?? 0));
  return { previousTtl, changed, skipped, ...(change ? { change } : {}), oldAnswersExpireAfterMs: longest * 1000 };
}

export interface RestoreTtlResult {
  restored: string[];
  /** Set identifiers of `previousTtl` no longer in the zone (deleted by someone else): nothing to restore. */
  missing: string[];
  change?: ChangeWait;
}

/** The undo of `lowerTtl`: UPSERTs each record back to its previous TTL; records already at it are left alone. */
export async function restoreTtl(
  clients: Route53Clients,
  spec: WeightedRecordSpec,
  previousTtl: Record<string, number>,
  opts: ChangeOptions = {},
): Promise<RestoreTtlResult> {
  for (const [id, ttl] of Object.entries(previousTtl ?? {})) {
    if (!Number.isInteger(ttl) || ttl < 0)
      throw invalid(`previousTtl of ${JSON.stringify(id)} must be a non-negative integer (got ${JSON.stringify(ttl)})`);
  }
  const records = await readWeightedRecords(clients, spec);
  const updates: ResourceRecordSet[] = [];
  const restored: string[] = [];
  const missing: string[] = [];
  for (const [id, ttl] of Object.entries(previousTtl)) {
    const r = records.find((x) => x.setIdentifier === id);
    if (!r) missing.push(id);
    else if (r.ttl !== undefined && r.ttl !== ttl) {
      updates.push({ ...r.recordSet, TTL: ttl });
      restored.push(id);
    }
  }
  const change = await submit(clients, spec, updates, { comment: 'pgmig: restore TTL', ...opts });
  return { restored, missing, ...(change ? { change } : {}) };
}

// ---------------------------------------------------------------------------------------------
// Weights

export interface SetWeightsResult {
  /** Undefined when the records were already at these weights (nothing submitted) and no `resumeChangeId` was given. */
  changeId?: string;
  /** Weights of every weighted record of the name before this call (see the module comment about retries). */
  previous: Record<string, number>;
  /** Weights after this call. */
  weights: Record<string, number>;
  /** False when nothing had to change. */
  changed: boolean;
  change?: ChangeWait;
}

/**
 * Sets the weights of the named records (others keep theirs) with one ChangeResourceRecordSets batch
 * of UPSERTs, each record sent back as read with only Weight changed, then waits for INSYNC. A call
 * whose weights are already in place submits nothing. Unknown set identifiers and weights outside
 * 0..255 are non-retryable.
 */
export async function setWeights(
  clients: Route53Clients,
  spec: WeightedRecordSpec,
  weights: Record<string, number>,
  opts: ChangeOptions = {},
): Promise<SetWeightsResult> {
  validateSpec(spec);
  const ids = Object.keys(weights ?? {});
  if (ids.length === 0) throw invalid('weights must name at least one set identifier');
  for (const id of ids) validateWeight(id, weights[id]);
  const records = await readRequired(clients, spec, ids);
  const previous = weightsOf(records);
  const updates = records
    .filter((r) => r.setIdentifier in weights && r.weight !== weights[r.setIdentifier])
    .map((r) => ({ ...r.recordSet, Weight: weights[r.setIdentifier] }));
  const change = await submit(clients, spec, updates, {
    comment: `pgmig: weights ${ids.map((id) => `${id}=${weights[id]}`).join(' ')}`,
    ...opts,
  });
  return {
    ...(change ? { changeId: change.changeId, change } : {}),
    previous,
    weights: { ...previous, ...weights },
    changed: updates.length > 0,
  };
}

/** The weights of one step: `percent` of the traffic to `newId`, the rest to `oldId`. */
export function stepWeights(oldId: string, newId: string, percent: number): Record<string, number> {
  if (typeof percent !== 'number' || !Number.isInteger(percent) || percent < 0 || percent > 100) {
    throw invalid(`a step must be an integer percentage from 0 to 100 (got ${JSON.stringify(percent)})`);
  }
  return { [oldId]: 100 - percent, [newId]: percent };
}

// ---------------------------------------------------------------------------------------------
// Health gate

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
  return f.type === 'DmsUnexpectedResponse' || /UnknownOperation|NotImplemented|InvalidAction/.test(`${f.type} ${f.message}`);
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

// ---------------------------------------------------------------------------------------------
// The whole shift in one call

export interface ShiftStep {
  /** 1-based. */
  index: number;
  /** Percent of the traffic to the new record after this step. */
  percent: number;
  total: number;
  isLast: boolean;
  weights: Record<string, number>;
}

export type ShiftProgress =
  | { event: 'original'; weights: Record<string, number> }
  | { event: 'step'; step: ShiftStep }
  | { event: 'wait'; step: ShiftStep; wait: DmsWaitProgress }
  | { event: 'insync'; step: ShiftStep; changeId?: string; ms: number }
  | { event: 'bake'; step: ShiftStep; ms: number }
  | { event: 'gate-sample'; step: ShiftStep; round: number; gate: HealthGateResult }
  | { event: 'gate'; step: ShiftStep; gate: HealthGateResult }
  | { event: 'shift-back'; weights: Record<string, number>; reason: string }
  | { event: 'done'; completed: boolean; reached: number };

export interface ShiftOptions {
  oldId: string;
  newId: string;
  /** Percent to the new record, ascending, e.g. [10, 50, 100]. */
  steps: number[];
  /** Time between INSYNC and the gate, to let traffic (and errors) arrive. */
  bakeMs: number;
  gate: HealthGateSpec;
  /** Called before each step, e.g. an approval before the last; false stops the shift. */
  beforeStep?: (step: ShiftStep) => Promise<boolean> | boolean;
  /** After a `false` from beforeStep: shift back to the original weights (default) or hold where it is. */
  onStop?: 'shift-back' | 'hold';
  /** Heartbeat here. Must not throw. */
  onProgress?: (p: ShiftProgress) => void;
  signal?: AbortSignal;
  /**
   * The weights to shift back to, from a `readWeightedRecords` recorded before the first attempt.
   * Without it they are read now, which is right on a first attempt only: a retry of a shift that
   * had moved weights would read the moved ones.
   */
  original?: Record<string, number>;
  /** GetChange polling; defaults suit AWS (5 s, 10 min). */
  wait?: { intervalMs?: number; timeoutMs?: number };
}

export interface ShiftStepRecord {
  step: number;
  percent: number;
  weights: Record<string, number>;
  changeId?: string;
  insyncMs?: number;
  bakeMs?: number;
  gate?: HealthGateResult;
  outcome: 'passed' | 'failed' | 'stopped' | 'error';
  reason?: string;
}

export interface ShiftResult {
  completed: boolean;
  /** Percent to the new record of the last step whose gate passed (0 when none did). */
  reached: number;
  shiftedBack: boolean;
  original: Record<string, number>;
  /** Weights of the two records at the end. */
  final: Record<string, number>;
  /** The step that failed or was stopped, and why. */
  failed?: { step: number; percent: number; reason: string };
  stopped?: { step: number; percent: number; held: boolean };
  shiftBack?: { changeId?: string; insyncMs?: number; error?: string };
  history: ShiftStepRecord[];
}

function validateShift(o: ShiftOptions): void {
  if (!o || typeof o.oldId !== 'string' || !o.oldId || typeof o.newId !== 'string' || !o.newId)
    throw invalid('oldId and newId must be set identifiers');
  if (o.oldId === o.newId) throw invalid('oldId and newId must differ');
  if (!Array.isArray(o.steps) || o.steps.length === 0) throw invalid('steps must list at least one percentage, e.g. [10, 50, 100]');
  o.steps.forEach((p, i) => {
    stepWeights(o.oldId, o.newId, p);
    if (i > 0 && p <= o.steps[i - 1]) throw invalid(`steps must increase (got ${JSON.stringify(o.steps)})`);
  });
  if (typeof o.bakeMs !== 'number' || !(o.bakeMs >= 0)) throw invalid(`bakeMs must be >= 0 (got ${JSON.stringify(o.bakeMs)})`);
  validateGate(o.gate);
}

/**
 * Shifts traffic from `oldId` to `newId` in steps: for each, setWeights (old = 100 - p, new = p),
 * INSYNC, bake, health gate. A failed gate (or an error, or cancellation) shifts both records back to
 * their ORIGINAL weights (read before the first step, or `opts.original`) and reports the step and
 * why; a `false` from `beforeStep` stops (and shifts back unless `onStop: 'hold'`). Errors are
 * rethrown after the shift back, their message saying whether it worked.
 */
export async function shiftTraffic(clients: Route53Clients, spec: WeightedRecordSpec, opts: ShiftOptions): Promise<ShiftResult> {
  validateSpec(spec);
  validateShift(opts);
  const { oldId, newId } = opts;
  const progress = (p: ShiftProgress) => {
    try {
      opts.onProgress?.(p);
    } catch {
      // progress reporting must not break the shift
    }
  };
  const wait = opts.wait ?? {};
  const records = await readRequired(clients, spec, [oldId, newId]);
  const current = weightsOf(records);
  const original = opts.original
    ? { [oldId]: validateWeight(oldId, opts.original[oldId]), [newId]: validateWeight(newId, opts.original[newId]) }
    : { [oldId]: current[oldId], [newId]: current[newId] };
  progress({ event: 'original', weights: original });

  const history: ShiftStepRecord[] = [];
  let reached = 0;
  let final = { [oldId]: current[oldId], [newId]: current[newId] };

  const shiftBack = async (reason: string): Promise<ShiftResult['shiftBack']> => {
    progress({ event: 'shift-back', weights: original, reason });
    try {
      // No cancellation signal: the shift back must run even when the shift was cancelled.
      const r = await setWeights(clients, spec, original, { ...wait, comment: 'pgmig: shift back to the original weights' });
      final = { ...original };
      return { ...(r.changeId ? { changeId: r.changeId } : {}), ...(r.change ? { insyncMs: r.change.ms } : {}) };
    } catch (err) {
      return { error: route53Failure('shift back', err).message };
    }
  };

  const total = opts.steps.length;
  for (let i = 0; i < total; i++) {
    const percent = opts.steps[i];
    const step: ShiftStep = { index: i + 1, percent, total, isLast: i === total - 1, weights: stepWeights(oldId, newId, percent) };
    const rec: ShiftStepRecord = { step: step.index, percent, weights: step.weights, outcome: 'error' };
    try {
      if (opts.beforeStep && !(await opts.beforeStep(step))) {
        rec.outcome = 'stopped';
        history.push(rec);
        const hold = opts.onStop === 'hold';
        const back = hold ? undefined : await shiftBack(`stopped before step ${step.index} (${percent}%)`);
        progress({ event: 'done', completed: false, reached });
        return {
          completed: false,
          reached,
          shiftedBack: !hold && !back?.error,
          original,
          final,
          stopped: { step: step.index, percent, held: hold },
          ...(back ? { shiftBack: back } : {}),
          history,
        };
      }
      progress({ event: 'step', step });
      const set = await setWeights(clients, spec, step.weights, {
        ...wait,
        signal: opts.signal,
        onProgress: (w) => progress({ event: 'wait', step, wait: w }),
        comment: `pgmig: traffic step ${step.index}/${total}: ${percent}% to ${newId}`,
      });
      final = { ...step.weights };
      if (set.changeId) rec.changeId = set.changeId;
      rec.insyncMs = set.change?.ms ?? 0;
      progress({ event: 'insync', step, ...(set.changeId ? { changeId: set.changeId } : {}), ms: rec.insyncMs });

      const b0 = Date.now();
      if (opts.bakeMs > 0) await delay(opts.bakeMs, undefined, { signal: opts.signal });
      rec.bakeMs = Date.now() - b0;
      progress({ event: 'bake', step, ms: rec.bakeMs });

      const gate = await healthGate(clients, opts.gate, {
        signal: opts.signal,
        onSample: (round, partial) => progress({ event: 'gate-sample', step, round, gate: partial }),
      });
      rec.gate = gate;
      progress({ event: 'gate', step, gate });
      if (!gate.ok) {
        rec.outcome = 'failed';
        rec.reason = gate.reason;
        history.push(rec);
        const reason = `health gate failed at step ${step.index} (${percent}% to ${newId}): ${gate.reason}`;
        const back = await shiftBack(reason);
        progress({ event: 'done', completed: false, reached });
        return {
          completed: false,
          reached,
          shiftedBack: !back?.error,
          original,
          final,
          failed: { step: step.index, percent, reason },
          ...(back ? { shiftBack: back } : {}),
          history,
        };
      }
      rec.outcome = 'passed';
      history.push(rec);
      reached = percent;
    } catch (err) {
      if (opts.signal?.aborted) {
        // Cancelled: shift back, then end with the cancellation itself (Temporal records it as such).
        rec.reason = 'cancelled';
        history.push(rec);
        await shiftBack(`cancelled at step ${step.index}`);
        throw opts.signal.reason ?? err;
      }
      const failure = err instanceof ApplicationFailure ? err : route53Failure(`traffic step ${step.index} (${percent}%)`, err);
      rec.reason = failure.message;
      history.push(rec);
      const back = await shiftBack(`error at step ${step.index}: ${failure.message}`);
      throw ApplicationFailure.create({
        message: `${failure.message} (at traffic step ${step.index}, ${percent}% to ${newId}; ${
          back?.error
            ? `shifting back to the original weights FAILED: ${back.error}`
            : `weights shifted back to ${JSON.stringify(original)}`
        })`,
        type: failure.type ?? 'Route53ShiftFailed',
        nonRetryable: failure.nonRetryable ?? false,
        cause: failure,
      });
    }
  }
  progress({ event: 'done', completed: true, reached });
  return { completed: true, reached, shiftedBack: false, original, final, history };
}
