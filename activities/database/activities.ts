/**
 * The database steps every method shares: preflight, the write freeze on either side, the target
 * reset (the undo of any copy), sequences, verification and the smoke test.
 */
import { rm } from 'node:fs/promises';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from 'pg';
import type { MigrationInput, SecretRef } from '../../contract/input';
import { buildPlan, type MigrationPlan, type RoleReadOnlySetting, type TableInventory } from '../../contract/plan';
import type { ActivityContext } from '../context';
import { appName, workDir } from '../names';
import { redact } from '../secrets';
import { freezeDatabase, unfreezeDatabase, type FreezeResult, type UnfreezeResult } from './freeze';
import { CAN_SUBSCRIBE_SQL, inventoryDatabase } from './inventory';
import { connect, terminateByApplicationName, withClient } from './pg';
import { checkSequencesAhead, reconcileSequences, type SequenceReconciliation } from './sequences';
import { runSmokeChecks, type SmokeCheck } from './smoke';
import { resetTargetToBaseline, type ResetResult, type TargetBaseline } from './target-reset';
import { verifyCopy, type VerificationReport } from './verify';

interface Endpoint {
  migrationId: string;
  url: SecretRef;
}

export interface FreezeArgs extends Endpoint {
  roles: string[];
  drainTimeoutMs: number;
}

export interface UnfreezeArgs extends Endpoint {
  roles: string[];
  /** The read-only settings preflight found, restored exactly. */
  prior: RoleReadOnlySetting[];
}

/** The first differences, enough to act on; the whole report travels as the failure's details. */
export function verificationFailure(report: VerificationReport): ApplicationFailure {
  const first = [
    ...report.schemaDifferences,
    ...report.mismatches.map(
      (m) => `${m.table}: source ${m.sourceRows} rows / ${m.sourceChecksum}, target ${m.targetRows} rows / ${m.targetChecksum}`,
    ),
    ...report.sequenceProblems.map((p) => `${p.sequence} at ${p.lastValue} is behind max id ${p.columnMax}`),
  ].slice(0, 5);
  return ApplicationFailure.nonRetryable(`verification failed: ${first.join('; ')}`, 'VerificationFailed', report);
}

/** `size` sessions on each side, all closed afterwards. */
async function withPools<T>(
  sourceUrl: string,
  targetUrl: string,
  size: number,
  migrationId: string,
  fn: (s: Client[], t: Client[]) => Promise<T>,
): Promise<T> {
  const opts = (label: string) => ({ label, applicationName: appName(migrationId, 'verify') });
  const sources = await Promise.all(Array.from({ length: size }, () => connect(sourceUrl, opts('source'))));
  const targets = await Promise.all(Array.from({ length: size }, () => connect(targetUrl, opts('target'))));
  try {
    return await fn(sources, targets);
  } finally {
    await Promise.all([...sources, ...targets].map((c) => c.end().catch(() => undefined)));
  }
}

export function createDatabaseActivities({ resolve, admin, endpoints }: ActivityContext) {
  return {
    async preflight(args: { migrationId: string; input: MigrationInput }): Promise<MigrationPlan> {
      const [sourceUrl, targetUrl] = await endpoints({ source: args.input.source.url, target: args.input.target.url });
      if (args.input.target.appUrl) await resolve(args.input.target.appUrl, 'target.appUrl');
      // Unreachable servers are retried here for a bounded time, then reported once, clearly.
      const reach = { unreachableForMs: 10_000 };
      const replicationRef = args.input.target.replicationUrl;
      const replicationUrl = replicationRef ? await resolve(replicationRef, 'target.replicationUrl') : undefined;
      const [source, target, subscriber] = await Promise.all([
        withClient(sourceUrl, { ...admin(args.migrationId, 'source'), ...reach }, (c) => inventoryDatabase(c, { sampleWalRateMs: 1000 })),
        withClient(targetUrl, { ...admin(args.migrationId, 'target'), ...reach }, (c) => inventoryDatabase(c)),
        replicationUrl
          ? withClient(replicationUrl, { ...admin(args.migrationId, 'target (replication role)'), ...reach }, (c) =>
              c.query(`SELECT ${CAN_SUBSCRIBE_SQL} AS ok`).then((r) => r.rows[0].ok as boolean),
            )
          : Promise.resolve(undefined),
      ]);
      // The subscription is created with target.replicationUrl when given: its role is the one that must be allowed.
      if (subscriber !== undefined) target.canSubscribe = subscriber;
      return buildPlan(args.input, source, target);
    },

    async freezeSource(args: FreezeArgs): Promise<FreezeResult> {
      const url = await resolve(args.url, 'source.url');
      return freezeDatabase(url, { ...admin(args.migrationId, 'source'), roles: args.roles, drainTimeoutMs: args.drainTimeoutMs });
    },

    async unfreezeSource(args: UnfreezeArgs): Promise<UnfreezeResult> {
      const url = await resolve(args.url, 'source.url');
      return unfreezeDatabase(url, { ...admin(args.migrationId, 'source'), roles: args.roles, prior: args.prior });
    },

    async freezeTarget(args: FreezeArgs): Promise<FreezeResult> {
      const url = await resolve(args.url, 'target.url');
      return freezeDatabase(url, { ...admin(args.migrationId, 'target'), roles: args.roles, drainTimeoutMs: args.drainTimeoutMs });
    },

    async unfreezeTarget(args: UnfreezeArgs): Promise<UnfreezeResult> {
      const url = await resolve(args.url, 'target.url');
      return unfreezeDatabase(url, { ...admin(args.migrationId, 'target'), roles: args.roles, prior: args.prior });
    },

    async resetTarget(args: { migrationId: string; target: SecretRef; baseline: TargetBaseline }): Promise<ResetResult> {
      const url = await resolve(args.target, 'target.url');
      const reset = await withClient(url, admin(args.migrationId, 'target'), async (c) => {
        // A restore still running (cancelled copy, dead worker) would recreate what we drop.
        await terminateByApplicationName(c, appName(args.migrationId, 'restore'));
        return resetTargetToBaseline(c, args.baseline);
      });
      // Dumps (data or schema) left on this worker by the undone copy go too.
      await rm(workDir(args.migrationId), { recursive: true, force: true });
      return reset;
    },

    async reconcileSequences(args: { migrationId: string; source: SecretRef; target: SecretRef }): Promise<SequenceReconciliation[]> {
      const [sourceUrl, targetUrl] = await endpoints(args);
      return withClient(sourceUrl, admin(args.migrationId, 'source'), (s) =>
        withClient(targetUrl, admin(args.migrationId, 'target'), async (t) => {
          const reconciled = await reconcileSequences(s, t);
          // Its own post-condition: the next value of every serial/identity column is above its max id.
          const behind = (await checkSequencesAhead(t)).filter((c) => !c.ok);
          if (behind.length) {
            throw ApplicationFailure.nonRetryable(
              `sequences still behind their columns after reconciliation: ${behind.map((p) => `${p.sequence} at ${p.lastValue} < ${p.columnMax}`).join('; ')}`,
              'SequencesBehind',
            );
          }
          return reconciled;
        }),
      );
    },

    async verifyCopy(args: {
      migrationId: string;
      source: SecretRef;
      target: SecretRef;
      tables: TableInventory[];
      jobs: number;
    }): Promise<VerificationReport> {
      const [sourceUrl, targetUrl] = await endpoints(args);
      const ctx = Context.current();
      // Heartbeat on a timer too: one large table's checksum can outlast the heartbeat timeout.
      const progress = { tablesDone: 0, tablesTotal: args.tables.length };
      const timer = setInterval(() => ctx.heartbeat(progress), 5_000);
      const report = await withPools(sourceUrl, targetUrl, Math.max(1, args.jobs), args.migrationId, (s, t) =>
        verifyCopy({
          sourcePool: s,
          targetPool: t,
          tables: args.tables,
          onTable: (done, total) => {
            Object.assign(progress, { tablesDone: done, tablesTotal: total });
            ctx.heartbeat(progress);
          },
        }),
      ).finally(() => clearInterval(timer));
      if (!report.ok) throw verificationFailure(report);
      return report;
    },

    async smokeTest(args: { migrationId: string; appUrl: SecretRef; tables: TableInventory[]; sql: string[] }): Promise<SmokeCheck[]> {
      const url = await resolve(args.appUrl, 'target.appUrl');
      const checks = await withClient(
        url,
        { label: 'target (application URL)', applicationName: appName(args.migrationId, 'admin') },
        (c) => runSmokeChecks(c, args.tables, args.sql),
      );
      const failed = checks.filter((c) => !c.ok);
      if (failed.length) {
        throw ApplicationFailure.nonRetryable(
          `smoke test failed: ${failed.map((c) => `${c.name}: ${redact(c.detail)}`).join('; ')}`,
          'SmokeTestFailed',
          checks,
        );
      }
      return checks;
    },
  };
}
