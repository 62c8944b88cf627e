/**
 * The triggers method's apply under a sustained write load: the method's own steps in its order (schema
 * before the data, capture, copy from one snapshot, indexes after), then two phases of pgbench writing
 * to the source while `applyUntil` applies to the target:
 *  - steady: the apply runs throughout. Measured: row changes applied and captured per second between
 *    the apply's progress reports that bracket the load, the backlog (`captureLag`, from sessions of its
 *    own) every second, how long the apply took to catch up once the load stopped;
 *  - backlog: the apply starts only after `backlogSeconds` of load, so it has more to do than the load
 *    brings. Measured: the backlog it started with, and the changes it applied per second from its start
 *    until it caught up (or the load ended): what it can apply while the load goes on, not just what the
 *    load offered.
 * Then whether the pgbench tables match on both sides.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from 'pg';
import { inventoryDatabase } from '../activities/database/inventory';
import { connect } from '../activities/database/pg';
import { copySchemaAfterData, copySchemaBeforeData, removeSchemaDump } from '../activities/methods/logical/schema';
import { applyUntil, type ApplyProgress, type ApplyUntilResult } from '../activities/methods/triggers/apply';
import type { ApplyMode } from '../activities/methods/triggers/apply-mode';
import { installCapture, removeCapture } from '../activities/methods/triggers/capture';
import { captureLag, type CaptureLag } from '../activities/methods/triggers/log';
import { markerTableRef } from '../activities/methods/triggers/names';
import { snapshotCopy } from '../activities/methods/triggers/snapshot-copy';
import { capturedTableRefs } from './capture-overhead';
import { runPgbench, type PgbenchOptions, type PgbenchResult } from './pgbench';

export interface ApplyThroughputOptions extends PgbenchOptions {
  migrationId: string;
  /** The capture side is `url` (pgbench writes there); this one is an empty database to apply to. */
  targetUrl: string;
  /** In the backlog phase, the apply starts this long after the load. */
  backlogSeconds: number;
  /** Give up waiting for the apply to catch up this long after the load ended. */
  catchUpTimeoutMs?: number;
}

export interface LagStats {
  samples: number;
  meanSeconds: number;
  maxSeconds: number;
  meanChanges: number;
  maxChanges: number;
  /** Some sample's backlog was beyond captureLag's exact scan (estimated). */
  estimated: boolean;
}

export interface SteadyPhase {
  load: PgbenchResult;
  /** Between the first and the last progress report of the apply during the load. */
  windowMs: number;
  appliedChanges: number;
  appliedPerSecond: number;
  /** Applied in the window plus the growth of the backlog over it. */
  capturedChanges: number;
  capturedPerSecond: number;
  capturedEstimated: boolean;
  /** Sampled every second during the load. */
  lag: LagStats;
  /** From the end of the load until a sample found nothing pending; undefined when that did not happen in time. */
  catchUpMs?: number;
}

export interface BacklogPhase {
  load: PgbenchResult;
  /** Pending when the apply started. */
  backlog: CaptureLag;
  /** From the apply's start to its last progress report before it caught up under load (or before the load ended). */
  windowMs: number;
  appliedChanges: number;
  appliedPerSecond: number;
  /** From the apply's start until a sample during the load found its oldest pending change under CAUGHT_UP_LAG_SECONDS old; the window ends there (else with the load). */
  caughtUpUnderLoadMs?: number;
  /** From the end of the load until a sample found nothing pending. */
  catchUpAfterLoadMs?: number;
}

export interface ApplyThroughput {
  mode: ApplyMode;
  copy: { rows: number; bytes: number; elapsedMs: number };
  steady: SteadyPhase;
  backlog: BacklogPhase;
  /** pgbench's four tables have the same rows on both sides once caught up (count and md5 of the rows). */
  tablesEqual?: boolean;
}

interface Sample {
  at: number;
  lag: CaptureLag;
}

interface Report {
  at: number;
  p: ApplyProgress;
}

const PGBENCH_TABLES = ['public.pgbench_accounts', 'public.pgbench_branches', 'public.pgbench_tellers', 'public.pgbench_history'];

const asError = (err: unknown) => (err instanceof Error ? err : new Error(String(err)));

async function fingerprint(client: Client, table: string): Promise<string> {
  const r = await client.query<{ n: string; md5: string }>(
    `SELECT count(*)::text AS n, md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS md5 FROM ${table} t`,
  );
  return `${r.rows[0].n}:${r.rows[0].md5}`;
}

export function lagStats(samples: Sample[]): LagStats {
  const n = samples.length;
  const mean = (f: (s: Sample) => number) => (n ? samples.reduce((sum, s) => sum + f(s), 0) / n : NaN);
  const max = (f: (s: Sample) => number) => (n ? Math.max(...samples.map(f)) : NaN);
  return {
    samples: n,
    meanSeconds: mean((s) => s.lag.lagSeconds),
    maxSeconds: max((s) => s.lag.lagSeconds),
    meanChanges: mean((s) => s.lag.pendingChanges),
    maxChanges: max((s) => s.lag.pendingChanges),
    estimated: samples.some((s) => s.lag.estimated),
  };
}

interface Sessions {
  /** For the setup, the sampler and the checks. */
  source: Client;
  target: Client;
  /** The apply's own pair. */
  capture: Client;
  apply: Client;
}

/** Schema, capture, copy and indexes, as the method's steps do them; returns the copy's figures. */
async function prepareTarget({ source, target }: Sessions, opts: ApplyThroughputOptions): Promise<ApplyThroughput['copy']> {
  const { migrationId } = opts;
  const inventory = await inventoryDatabase(target);
  const baseline = { schemas: inventory.schemas, extensions: inventory.extensions, largeObjects: inventory.largeObjects };
  const schemaArgs = { migrationId, sourceUrl: opts.url, targetUrl: opts.targetUrl, baseline };
  await copySchemaBeforeData(source, target, schemaArgs);
  const tables = [...(await capturedTableRefs(source)), markerTableRef(migrationId)];
  await installCapture(source, { migrationId, direction: 'forward', tables, policy: 'replica-identity-full' });
  const copy = await snapshotCopy({
    migrationId,
    direction: 'forward',
    sourceUrl: opts.url,
    targetUrl: opts.targetUrl,
    applicationName: 'pgmig-bench-copy',
    tables,
    jobs: 2,
  });
  await copySchemaAfterData({ ...schemaArgs, jobs: 2 });
  return { rows: copy.rows, bytes: copy.bytes, elapsedMs: copy.elapsedMs };
}

interface FollowRun {
  load: PgbenchResult;
  loadStart: number;
  loadEnd: number;
  applyStart: number;
  backlogAtStart: CaptureLag;
  reports: Report[];
  samples: Sample[];
  /** When a poll after the load first found nothing pending. */
  drainedAt?: number;
  result: ApplyUntilResult;
}

/**
 * One pgbench load on the source with the apply started `applyDelayMs` after it; waits (after the load)
 * until the apply has caught up or `catchUpTimeoutMs` passed, then stops the apply.
 */
async function follow(s: Sessions, opts: ApplyThroughputOptions, applyDelayMs: number): Promise<FollowRun> {
  const { migrationId } = opts;
  const samples: Sample[] = [];
  const reports: Report[] = [];
  const failures: Error[] = [];
  let sampling = true;
  let stopApply = false;
  const sampler = (async () => {
    while (sampling) {
      const at = Date.now();
      samples.push({ at, lag: await captureLag(s.source, s.target, migrationId, 'forward') });
      await sleep(Math.max(0, 1000 - (Date.now() - at)));
    }
  })().catch((err: unknown) => {
    failures.push(asError(err));
  });

  const loadStart = Date.now();
  const loading = runPgbench(opts).then(
    (load) => ({ load, loadEnd: Date.now() }),
    (err: unknown) => {
      failures.push(asError(err));
      return undefined;
    },
  );
  await sleep(applyDelayMs);
  const backlogAtStart = await captureLag(s.source, s.target, migrationId, 'forward');
  const applyStart = Date.now();
  let applied: ApplyUntilResult | undefined;
  const applying = applyUntil(s.capture, s.apply, {
    migrationId,
    direction: 'forward',
    stop: () => stopApply,
    onProgress: (p) => {
      reports.push({ at: Date.now(), p });
    },
  }).then(
    (r) => {
      applied = r;
    },
    (err: unknown) => {
      failures.push(asError(err));
    },
  );

  const loaded = await loading;
  // The 1/s samples cover the load; after it, a finer poll times the catch-up (the sampler's ticks and
  // pgbench's end keep the same phase, so its next tick would always be about 1 s late).
  sampling = false;
  let drainedAt: number | undefined;
  try {
    const deadline = Date.now() + (opts.catchUpTimeoutMs ?? 180_000);
    while (loaded && !failures.length && Date.now() < deadline) {
      const at = Date.now();
      if ((await captureLag(s.source, s.target, migrationId, 'forward')).pendingLogRows === 0) {
        drainedAt = at;
        break;
      }
      await sleep(100);
    }
  } finally {
    stopApply = true;
    await applying;
    await sampler;
  }
  if (failures.length) throw failures[0];
  if (!loaded || !applied) throw new Error('the load or the apply ended without a result');
  return { ...loaded, loadStart, applyStart, backlogAtStart, reports, samples, drainedAt, result: applied };
}

/** From the end of the load until a poll found nothing pending. */
const catchUpAfterLoad = (run: FollowRun) => (run.drainedAt === undefined ? undefined : run.drainedAt - run.loadEnd);

function steadyPhase(run: FollowRun): SteadyPhase {
  const during = run.reports.filter((r) => r.at >= run.loadStart && r.at <= run.loadEnd);
  if (during.length < 2) throw new Error(`the apply reported progress ${during.length} time(s) during the load: too few to measure a rate`);
  const [first, last] = [during[0], during[during.length - 1]];
  const windowMs = last.at - first.at;
  const appliedChanges = last.p.appliedChanges - first.p.appliedChanges;
  const capturedChanges = appliedChanges + last.p.pendingChanges - first.p.pendingChanges;
  return {
    load: run.load,
    windowMs,
    appliedChanges,
    appliedPerSecond: (appliedChanges / windowMs) * 1000,
    capturedChanges,
    capturedPerSecond: (capturedChanges / windowMs) * 1000,
    capturedEstimated: first.p.estimated || last.p.estimated,
    lag: lagStats(run.samples.filter((x) => x.at >= run.loadStart && x.at <= run.loadEnd)),
    catchUpMs: catchUpAfterLoad(run),
  };
}

/** Under load something is always pending: the backlog is worked off once its oldest change is younger than this. */
export const CAUGHT_UP_LAG_SECONDS = 1;

function backlogPhase(run: FollowRun): BacklogPhase {
  const caughtUp = run.samples.find((x) => x.at > run.applyStart && x.at <= run.loadEnd && x.lag.lagSeconds < CAUGHT_UP_LAG_SECONDS);
  const end = caughtUp ? caughtUp.at : run.loadEnd;
  const last = run.reports.filter((r) => r.at <= end).pop();
  if (!last) throw new Error('the apply reported no progress before it caught up: too early to measure a rate');
  const windowMs = last.at - run.applyStart;
  return {
    load: run.load,
    backlog: run.backlogAtStart,
    windowMs,
    appliedChanges: last.p.appliedChanges,
    appliedPerSecond: (last.p.appliedChanges / windowMs) * 1000,
    caughtUpUnderLoadMs: caughtUp ? caughtUp.at - run.applyStart : undefined,
    catchUpAfterLoadMs: catchUpAfterLoad(run),
  };
}

export async function benchApplyThroughput(opts: ApplyThroughputOptions): Promise<ApplyThroughput> {
  const session = (url: string, label: string) => connect(url, { label, applicationName: `pgmig-bench-${label}` });
  const s: Sessions = {
    source: await session(opts.url, 'source'),
    target: await session(opts.targetUrl, 'target'),
    capture: await session(opts.url, 'capture'),
    apply: await session(opts.targetUrl, 'apply'),
  };
  try {
    const copy = await prepareTarget(s, opts);
    const steadyRun = await follow(s, opts, 0);
    const backlogRun = await follow(s, opts, opts.backlogSeconds * 1000);
    let tablesEqual: boolean | undefined;
    if (backlogRun.drainedAt !== undefined) {
      tablesEqual = true;
      for (const table of PGBENCH_TABLES) {
        if ((await fingerprint(s.source, table)) !== (await fingerprint(s.target, table))) tablesEqual = false;
      }
    }
    return { mode: backlogRun.result.mode, copy, steady: steadyPhase(steadyRun), backlog: backlogPhase(backlogRun), tablesEqual };
  } finally {
    await removeCapture(s.source, opts.migrationId, 'forward').catch(() => undefined);
    await removeCapture(s.target, opts.migrationId, 'forward').catch(() => undefined);
    await removeSchemaDump(opts.migrationId).catch(() => undefined);
    for (const c of Object.values(s)) await c.end().catch(() => undefined);
  }
}
