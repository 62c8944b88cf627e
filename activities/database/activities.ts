/**
 * The database steps every method shares: preflight, the write freeze on either side, the target
 * reset (the undo of any copy), sequences, verification and the smoke test.
 */
import { rm } from 'node:fs/promises';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from 'pg';
import type { ConfigSink, MigrationInput, SecretRef } from '../../contract/input';
import { buildPlan, type MigrationPlan, type RoleReadOnlySetting, type TableInventory } from '../../contract/plan';
import type { WindowEdge } from '../../signals';
import type { ActivityContext } from '../context';
import { HEARTBEAT_EVERY_MS, keepAlive } from '../heartbeat';
import { tablesReporter } from '../progress';
import { appName, workDir } from '../names';
import { which } from '../processes';
import { redact, rememberSecret } from '../secrets';
import { freezeDatabase, unfreezeDatabase, type FreezeResult, type UnfreezeResult } from './freeze';
import { openConfigSink } from '../config-sinks';
import { copyEngineOnThisWorker, tablesBytes } from '../methods/dump-restore/engine';
import { PGCOPYDB } from '../methods/dump-restore/pgcopydb-clone';
import { applicationAccess } from '../../contract/roles';
import { CAN_SUBSCRIBE_SQL, inventoryDatabase } from './inventory';
import { withRoles } from './privileges';
import { withSeenLease } from './lease';
import { connect, terminateByApplicationName, withClient } from './pg';
import { checkAppRoles } from './preflight-checks';
import { checkSequencesAhead, reconcileSequences, type SequenceReconciliation } from './sequences';
import { runSmokeChecks, type SmokeCheck } from './smoke';
import { heldPrivileges } from './smoke-privileges';
import { resetTargetToBaseline, type ResetResult, type TargetBaseline } from './target-reset';
import { CATALOG_DEFAULTS, type CatalogOptions } from './catalog';
import { catalogComparison, verifyCopy, type VerificationReport } from './verify';

interface Endpoint {
  migrationId: string;
  url: SecretRef;
}

interface WindowEdgeReport {
  /** Tell the workflow the moment the freeze or unfreeze took effect (a window edge), before returning. */
  reportWindowEdge?: boolean;
}

export interface FreezeArgs extends Endpoint, WindowEdgeReport {
  roles: string[];
  drainTimeoutMs: number;
}

export interface UnfreezeArgs extends Endpoint, WindowEdgeReport {
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
    ...(report.catalogDifferences ?? []),
  ].slice(0, 5);
  return ApplicationFailure.nonRetryable(`verification failed: ${first.join('; ')}`, 'VerificationFailed', report);
}

/** Opens `size` sessions; if any fails, closes those that opened and throws its error. */
export async function openPool(open: () => Promise<Client>, size: number, opened: Client[] = []): Promise<Client[]> {
  const settled = await Promise.allSettled(Array.from({ length: size }, open));
  const clients = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all([...opened, ...clients].map((c) => c.end().catch(() => undefined)));
    throw failed.reason;
  }
  return clients;
}

/** `size` sessions on each side, all closed afterwards (and those that opened, when another could not). */
async function withPools<T>(
  sourceUrl: string,
  targetUrl: string,
  size: number,
  migrationId: string,
  fn: (s: Client[], t: Client[]) => Promise<T>,
): Promise<T> {
  const opts = (label: string) => ({ label, applicationName: appName(migrationId, 'verify') });
  const sources = await openPool(() => connect(sourceUrl, opts('source')), size);
  const targets = await openPool(() => connect(targetUrl, opts('target')), size, sources);
  try {
    return await fn(sources, targets);
  } finally {
    await Promise.all([...sources, ...targets].map((c) => c.end().catch(() => undefined)));
  }
}

export function createDatabaseActivities({ deps, resolve, admin, endpoints }: ActivityContext) {
  /**
   * A signal to the workflow with the edge's time: durable at once, so a retry after this worker dies
   * (which would report its own, later time) cannot move the recorded window.
   */
  const reportEdge = async (args: WindowEdgeReport, side: WindowEdge['side'], edge: WindowEdge['edge'], at: number) => {
    const execution = Context.current().info.workflowExecution;
    if (!args.reportWindowEdge || !execution) return;
    const payload: WindowEdge = { side, edge, at };
    await deps.signalWorkflow(execution.workflowId, execution.runId, 'windowEdge', payload);
  };

  /** What the application will connect with: the config sink's value, read back. */
  const urlInSink = async (sink: ConfigSink): Promise<string> => {
    const value = await openConfigSink(sink, deps).read();
    if (!value) throw ApplicationFailure.retryable(`config sink ${openConfigSink(sink, deps).describe()} holds no URL`, 'SinkEmpty');
    rememberSecret(value);
    return value;
  };

  return {
    async preflight(args: { migrationId: string; input: MigrationInput }): Promise<MigrationPlan> {
      const [sourceUrl, targetUrl] = await endpoints({ source: args.input.source.url, target: args.input.target.url });
      if (args.input.target.appUrl) await resolve(args.input.target.appUrl, 'target.appUrl');
      // Unreachable servers are retried here for a bounded time, then reported once, clearly.
      const reach = { unreachableForMs: 10_000 };
      const replicationRef = args.input.target.replicationUrl;
      const replicationUrl = replicationRef ? await resolve(replicationRef, 'target.replicationUrl') : undefined;
      const [source, target, subscriber] = await Promise.all([
        // Each inventory carries another migration's lease on that database, if any (a blocker while its workflow runs).
        withClient(sourceUrl, { ...admin(args.migrationId, 'source'), ...reach }, async (c) => {
          const inventory = await inventoryDatabase(c, { sampleWalRateMs: deps.walSampleMs ?? 1000 });
          const withAppRole = await withRoles(c, inventory, args.input.source.appRoles?.[0] ?? inventory.currentUser);
          return withSeenLease(c, withAppRole, deps, args.migrationId);
        }),
        withClient(targetUrl, { ...admin(args.migrationId, 'target'), ...reach }, async (c) =>
          withSeenLease(c, await inventoryDatabase(c), deps, args.migrationId),
        ),
        replicationUrl
          ? withClient(replicationUrl, { ...admin(args.migrationId, 'target (replication role)'), ...reach }, (c) =>
              c.query(`SELECT ${CAN_SUBSCRIBE_SQL} AS ok`).then((r) => r.rows[0].ok as boolean),
            )
          : Promise.resolve(undefined),
      ]);
      // The subscription is created with target.replicationUrl when given: its role is the one that must be allowed.
      if (subscriber !== undefined) target.canSubscribe = subscriber;
      // The roles the freeze makes read-only and the config sink, checked now rather than inside the window.
      const roles = args.input.source.appRoles ?? [];
      const [appRoles, configSink] = await Promise.all([
        roles.length ? withClient(sourceUrl, { ...admin(args.migrationId, 'source'), ...reach }, (c) => checkAppRoles(c, roles)) : {},
        openConfigSink(args.input.configSink, deps).check(),
      ]);
      // The application's own role on the target: one that exists already gets a new password at the swap.
      const access = applicationAccess(args.input, args.input.source.appRoles?.[0] ?? source.currentUser);
      const applicationRoleExists =
        access.mode === 'own' &&
        (await withClient(targetUrl, admin(args.migrationId, 'target'), (c) =>
          c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [access.role]).then((r) => (r.rowCount ?? 0) > 0),
        ));
      const needsPgcopydb = args.input.method === 'pgcopydb' || args.input.replication.initialCopy === 'pgcopydb';
      return buildPlan(args.input, source, target, {
        ...appRoles,
        configSink,
        ...(applicationRoleExists ? { applicationRoleExists } : {}),
        copyEngine: copyEngineOnThisWorker(args.input.copy.engine, tablesBytes(source.tables)),
        ...(needsPgcopydb && !which(PGCOPYDB)
          ? { pgcopydbMissing: `${PGCOPYDB} is not installed (Debian: apt-get install pgcopydb; or set PGCOPYDB_BIN)` }
          : {}),
      });
    },

    async freezeSource(args: FreezeArgs): Promise<FreezeResult> {
      return keepAlive(async () => {
        const url = await resolve(args.url, 'source.url');
        const frozen = await freezeDatabase(url, {
          ...admin(args.migrationId, 'source'),
          roles: args.roles,
          drainTimeoutMs: args.drainTimeoutMs,
        });
        await reportEdge(args, 'source', 'frozen', frozen.frozenAt);
        return frozen;
      });
    },

    async unfreezeSource(args: UnfreezeArgs): Promise<UnfreezeResult> {
      return keepAlive(async () => {
        const url = await resolve(args.url, 'source.url');
        const unfrozen = await unfreezeDatabase(url, { ...admin(args.migrationId, 'source'), roles: args.roles, prior: args.prior });
        await reportEdge(args, 'source', 'unfrozen', unfrozen.unfrozenAt);
        return unfrozen;
      });
    },

    async freezeTarget(args: FreezeArgs): Promise<FreezeResult> {
      return keepAlive(async () => {
        const url = await resolve(args.url, 'target.url');
        return freezeDatabase(url, { ...admin(args.migrationId, 'target'), roles: args.roles, drainTimeoutMs: args.drainTimeoutMs });
      });
    },

    async unfreezeTarget(args: UnfreezeArgs): Promise<UnfreezeResult> {
      return keepAlive(async () => {
        const url = await resolve(args.url, 'target.url');
        const unfrozen = await unfreezeDatabase(url, { ...admin(args.migrationId, 'target'), roles: args.roles, prior: args.prior });
        await reportEdge(args, 'target', 'unfrozen', unfrozen.unfrozenAt);
        return unfrozen;
      });
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
      return keepAlive(async () => {
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
      });
    },

    async verifyCopy(args: {
      migrationId: string;
      source: SecretRef;
      target: SecretRef;
      tables: TableInventory[];
      jobs: number;
      catalog?: CatalogOptions;
    }): Promise<VerificationReport> {
      const [sourceUrl, targetUrl] = await endpoints(args);
      const beat = tablesReporter(deps, 'verify');
      // Heartbeat on a timer too: one large table's checksum can outlast the heartbeat timeout.
      const progress = { tablesDone: 0, tablesTotal: args.tables.length };
      const timer = setInterval(() => beat(progress), HEARTBEAT_EVERY_MS);
      // The dump-restore copy's verification (before it moved inside the copy): the catalog blocks.
      const report = await withPools(sourceUrl, targetUrl, Math.max(1, args.jobs), args.migrationId, async (s, t) =>
        verifyCopy({
          sourcePool: s,
          targetPool: t,
          catalog: await catalogComparison(s[0], t[0], args.catalog ?? CATALOG_DEFAULTS, true),
          tables: args.tables,
          onTable: (done, total) => {
            Object.assign(progress, { tablesDone: done, tablesTotal: total });
            beat(progress);
          },
        }),
      ).finally(() => clearInterval(timer));
      if (!report.ok) throw verificationFailure(report);
      return report;
    },

    /**
     * `sink`: connect with the URL the config sink now holds (the application's own role, whose password
     * exists nowhere else). `sourceRole`: compare its privileges with that role's on the source.
     */
    async smokeTest(args: {
      migrationId: string;
      appUrl: SecretRef;
      tables: TableInventory[];
      sql: string[];
      sink?: ConfigSink;
      compareWith?: { source: SecretRef; role: string };
    }): Promise<SmokeCheck[]> {
      return keepAlive(async () => {
        const url = args.sink ? await urlInSink(args.sink) : await resolve(args.appUrl, 'target.appUrl');
        const compareWith = args.compareWith;
        const onSource = compareWith
          ? await withClient(await resolve(compareWith.source, 'source.url'), admin(args.migrationId, 'source'), (c) =>
              heldPrivileges(c, compareWith.role),
            )
          : undefined;
        const checks = await withClient(
          url,
          { label: 'target (application URL)', applicationName: appName(args.migrationId, 'admin') },
          async (c) => {
            const me = (await c.query<{ u: string }>('SELECT current_user AS u')).rows[0].u;
            const privileges = onSource ? { onSource, onTarget: await heldPrivileges(c, me) } : undefined;
            return runSmokeChecks(c, args.tables, args.sql, privileges);
          },
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
      });
    },
  };
}
