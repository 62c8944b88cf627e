/**
 * Changing Route 53 weighted records: TTL lowered ahead of the window and restored after, weights
 * moved step by step. Each write is one ChangeResourceRecordSets batch of UPSERTs, then GetChange
 * until `INSYNC` (on every Route 53 authoritative server).
 *
 * Idempotency: every write reads the records first and UPSERTs only what differs, keeping each
 * record as Route 53 returned it (values or alias target, TTL, health check id, ...) and changing
 * only the one field. Running a call twice leaves the zone as running it once. What a retry cannot
 * know is the state *before* the first attempt: the `previous` / `previousTtl` of a retried call
 * show the values the first attempt already wrote. Undo data must therefore come from a
 * `readWeightedRecords` result recorded before the first change (the workflow keeps one in its
 * history), never from a retried write.
 */
import { ChangeResourceRecordSetsCommand, GetChangeCommand, type Change, type ResourceRecordSet } from '@aws-sdk/client-route-53';
import { ApplicationFailure } from '@temporalio/common';
import { callAws } from '../aws/failure';
import { pollUntil, type PollOptions } from '../aws/poll';
import { invalid, route53Failure } from './failure';
import {
  readRequired,
  readWeightedRecords,
  validateSpec,
  weightsOf,
  zoneLabel,
  type Route53Clients,
  type WeightedRecordSpec,
} from './records';

export interface ChangeWait {
  changeId: string;
  /** GetChange calls until INSYNC. */
  polls: number;
  ms: number;
}

/** Route 53 changes normally reach every authoritative server within 60 s. */
const CHANGE_WAIT_DEFAULTS = { intervalMs: 5_000, timeoutMs: 10 * 60_000 };

/**
 * GetChange until the change is `INSYNC` (on all Route 53 authoritative servers). Progress after
 * every poll; a retryable `WAIT_TIMEOUT` failure (aws/poll.ts) at `timeoutMs`; cancellation through `signal`.
 */
export async function waitForChange(clients: Route53Clients, changeId: string, opts: PollOptions = {}): Promise<ChangeWait> {
  const t0 = Date.now();
  let polls = 0;
  await pollUntil(
    `Route 53 change ${changeId}`,
    async () => {
      polls++;
      const out = await callAws(
        `GetChange ${changeId}`,
        () => clients.route53.send(new GetChangeCommand({ Id: changeId })),
        route53Failure,
      );
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

/**
 * One batch of UPSERTs, then its INSYNC wait. With nothing to change nothing is submitted, but a
 * retry still waits on the change its first attempt submitted (`resumeChangeId`).
 */
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
  const out = await callAws(
    `ChangeResourceRecordSets ${zoneLabel(spec)}`,
    () =>
      clients.route53.send(
        new ChangeResourceRecordSetsCommand({
          HostedZoneId: spec.hostedZoneId,
          ChangeBatch: { Changes: changes, ...(opts.comment ? { Comment: opts.comment } : {}) },
        }),
      ),
    route53Failure,
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

function validateWeight(id: string, w: unknown): void {
  if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w > 255) {
    throw invalid(`weight of ${JSON.stringify(id)} must be an integer from 0 to 255 (got ${JSON.stringify(w)})`);
  }
}

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
