/** The product as the benchmarks run it: one `migrateDatabase` with its default input, gates approved ahead of time. */
import type { WorkflowHandle } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { Client } from 'pg';
import type { MigrationMethod } from '../contract/input';
import { approveUpdate, type MigrationResult } from '../signals';
import { migrationStartOptions } from '../signals/task-queue';
import { ADMIN_SESSION_OPTIONS, ident } from '../stack/sql';
import { orchestrationOverhead, type Interval, type OrchestrationOverhead } from './measure';
import type { BenchWorker } from './worker';
import { migrationResult } from '../signals/outcome';

export interface ProductRun {
  result: MigrationResult;
  /** Start of the workflow to its result, as the bench saw it. */
  totalMs: number;
  overhead: OrchestrationOverhead;
}

export interface ProductRunOptions {
  id: string;
  method: MigrationMethod;
  sourceUrl: string;
  targetUrl: string;
  /** URL of a role that may CREATE SUBSCRIPTION on the target (CDC methods). */
  replicationUrl: string;
  configFile: string;
}

/** Runs the migration to its end; both gates approved ahead of time (an approval applies once its gate's checks pass). */
export async function runProduct(bench: BenchWorker, opts: ProductRunOptions): Promise<ProductRun> {
  const { client, taskQueue } = bench;
  process.env.BENCH_SOURCE_URL = opts.sourceUrl;
  process.env.BENCH_TARGET_URL = opts.targetUrl;
  process.env.BENCH_REPLICATION_URL = opts.replicationUrl;
  const started = Date.now();
  const handle = await client.workflow.start('migrateDatabase', {
    ...migrationStartOptions(taskQueue),
    workflowId: `${opts.id}-${Date.now()}`,
    args: [
      {
        migrationId: opts.id.replace(/_/g, '-'),
        source: { url: { env: 'BENCH_SOURCE_URL' } },
        target: { url: { env: 'BENCH_TARGET_URL' }, replicationUrl: { env: 'BENCH_REPLICATION_URL' } },
        method: opts.method,
        freeze: { drainTimeout: '1s' },
        replication: { tablesWithoutPrimaryKey: 'replica-identity-full', drainTimeout: '5m' },
        configSink: { type: 'env-file', path: opts.configFile },
      },
    ],
  });
  for (const gate of opts.method === 'dump-restore' ? ['go-live'] : ['cutover', 'go-live']) {
    await handle.executeUpdate(approveUpdate, {
      args: [{ approver: 'bench', gate, reason: 'approved ahead of time by the benchmark' }],
    });
  }
  const result = await migrationResult(handle);
  const totalMs = Date.now() - started;
  return { result, totalMs, overhead: await historyOverhead(handle, result) };
}

/** Orchestration overhead of a finished run: its history's wall time minus what its activities took. */
export async function historyOverhead(handle: WorkflowHandle, result: MigrationResult): Promise<OrchestrationOverhead> {
  const events = (await handle.fetchHistory()).events ?? [];
  const at = (e: (typeof events)[number]) => tsToMs(e.eventTime);
  const startedById = new Map<string, number>();
  const activities: Interval[] = [];
  for (const e of events) {
    if (e.activityTaskStartedEventAttributes) startedById.set(String(e.eventId), at(e));
    const done = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes;
    const start = done?.startedEventId != null ? startedById.get(String(done.startedEventId)) : undefined;
    if (start !== undefined) activities.push({ start, end: at(e) });
  }
  const wallMs = at(events[events.length - 1]) - at(events[0]);
  const steps = result.steps
    .filter((s) => s.endedAt)
    .map((s) => ({ name: s.name, start: Date.parse(s.startedAt), end: Date.parse(s.endedAt!) }));
  const hasLocalActivities = events.some((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity');
  return orchestrationOverhead({ wallMs, activities, steps, hasLocalActivities });
}

/**
 * After a product run the source stays read-only (nothing holds it, the bench moves on): the read-only
 * defaults the freeze set are reset, and the stand-in application's earlier writes are deleted so the
 * next run's lost-write count looks only at its own.
 */
export async function resetSource(adminUrl: string): Promise<void> {
  const c = new Client({ connectionString: adminUrl, options: ADMIN_SESSION_OPTIONS });
  await c.connect();
  try {
    await c.query('SET default_transaction_read_only = off');
    const db = (await c.query<{ d: string }>('SELECT current_database() AS d')).rows[0].d;
    const settings = await c.query<{ role: string | null }>(
      `SELECT r.rolname AS role FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole
        WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    );
    for (const { role } of settings.rows) {
      await c.query(`ALTER ${role ? `ROLE ${ident(role)} IN DATABASE` : 'DATABASE'} ${ident(db)} RESET default_transaction_read_only`);
    }
    await c.query(`DELETE FROM public.audit_log WHERE event = 'app-write'`);
  } finally {
    await c.end();
  }
}
