/**
 * `rehearseMigration`: the migration's exact sequence, run against a copy, timed, and torn down.
 *
 *   validate -> snapshot (pg_dump of the source into a scratch database, or an RDS snapshot restored)
 *   -> migrateDatabase as a child (scratch source and target, staging config sink, gates approved
 *      automatically and recorded as such) -> teardown (always) -> report (JSON, Markdown, chart)
 *
 * Every scratch resource's teardown is registered before the step that creates it and runs in a
 * non-cancellable scope on success, failure and cancellation alike. The report says what was
 * measured, whether the publishable downtime (rehearsed window + margin) fits the migration's
 * budget, how it compares with earlier rehearsals, and why a failed rehearsal failed.
 */
import {
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowCancellationType,
  isCancellation,
  ParentClosePolicy,
  patched,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { PreparedSnapshot } from '../activities/rehearsal';
import { durationMs, HARDENED_INPUT_PATCH, type MigrationMethod } from '../contract/input';
import {
  AUTOMATIC_APPROVER,
  checkRehearsalInput,
  childMigrationInput,
  formatRehearsalProblems,
  rehearsalDeviations,
  rehearsedGates,
  rehearsedMethod,
  sameServer,
  scratchNames,
  type RehearsalInputDraft,
  type ScratchEndpoints,
} from '../contract/rehearsal';
import {
  buildReport,
  type ChildMeasurements,
  type RehearsalOutcome,
  type SnapshotSummary,
  type TeardownRecord,
} from '../contract/rehearsal-report';
import { approveSignal } from '../signals';
import {
  RehearsalOutcomeKey,
  rehearsalStatusQuery,
  ScheduledByIdKey,
  ScheduledStartTimeKey,
  summaryOf,
  type RehearsalPhase,
  type RehearsalStatus,
  type RehearsalSummary,
} from '../signals/rehearsal';
import { migrateDatabase } from './migrate-database';
import { failureMessage } from './progress';
import { Compensations } from './saga';
import { activities } from './activity-options';
import { WORKFLOW_TASK_TIMEOUT } from '../signals/task-queue';
import { migrationResultIn } from '../signals/outcome';

/** Snapshots take as long as a pg_dump + pg_restore of the whole source, or an RDS restore (tens of minutes). */
const { snapshot: snapshots, teardown, quick } = activities;

const compactStamp = (ms: number) => new Date(ms).toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);

export async function rehearseMigration(rawInput: RehearsalInputDraft): Promise<RehearsalSummary> {
  let checked = checkRehearsalInput(rawInput);
  // A rehearsal started before the input rules were hardened replays under the rules it started with.
  if (!checked.ok && !patched(HARDENED_INPUT_PATCH)) checked = checkRehearsalInput(rawInput, { legacy: true });
  if (!checked.ok) throw ApplicationFailure.nonRetryable(formatRehearsalProblems(checked.problems), 'InvalidInput', checked.problems);
  const input = checked.input;
  const info = workflowInfo();
  const startedAtMs = Date.now();
  const scheduled = info.typedSearchAttributes.get(ScheduledStartTimeKey);
  const scheduleId = info.typedSearchAttributes.get(ScheduledByIdKey);
  const migrationId =
    input.migration.migrationId ??
    (info.workflowId
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+/, '')
      .slice(0, 40) ||
      'migration');
  // The run id's tail: its head is a timestamp (UUIDv7), the same for runs started close together.
  const rehearsalId = `${compactStamp(startedAtMs)}-${info.runId.replace(/-/g, '').slice(-8)}`.toLowerCase();
  const childMigrationId = `rh-${rehearsalId}-${migrationId}`.slice(0, 63).replace(/-+$/, '');
  const childWorkflowId = `${info.workflowId}-migration`;
  const names = scratchNames(rehearsalId);
  const snap = input.snapshot;

  const status: RehearsalStatus = {
    rehearsalId,
    migrationId,
    phase: 'snapshot',
    startedAt: new Date(startedAtMs).toISOString(),
    ...(scheduled ? { scheduledAt: new Date(scheduled).toISOString() } : {}),
    ...(scheduleId ? { scheduleId } : {}),
    teardown: [],
    outcome: 'running',
  };
  setHandler(rehearsalStatusQuery, () => status);
  const phase = (p: RehearsalPhase, details?: string) => {
    status.phase = p;
    setCurrentDetails(`**rehearsal ${p}**${details ? `: ${details}` : ''}`);
  };
  const outcome = (o: RehearsalOutcome) => {
    status.outcome = o;
    upsertSearchAttributes([{ key: RehearsalOutcomeKey, value: o }]);
  };
  outcome('running');

  // --- teardown registry: each undo is registered before the step that creates what it removes ---
  const saga = new Compensations();
  const done = new Map<string, string[]>();
  const registerTeardown = (step: string, run: () => Promise<string[]>) =>
    saga.register(step, async () => {
      done.set(step, await run());
    });

  let snapshotSummary: SnapshotSummary = {
    type: snap.type,
    description:
      snap.type === 'logical' ? 'logical: pg_dump of the source into a scratch database' : `rds-snapshot: ${snap.dbSnapshotIdentifier}`,
  };
  let snapshotMs: number | undefined;
  let method: MigrationMethod | undefined;
  let methodReason: string | undefined;
  let child: ChildMeasurements | undefined;
  let childStarted = false;
  let failure: { phase: string; message: string } | undefined;
  let cancellation: Error | undefined;

  try {
    // --- 1. the snapshot: scratch source (a copy of the real one) and an empty scratch target ---
    phase('snapshot', snapshotSummary.description);
    let prepared: PreparedSnapshot;
    let endpoints: ScratchEndpoints;
    const snapshotStarted = Date.now();
    registerTeardown('remove-staging-files', () => teardown.removeStagingFiles({ rehearsalId, childMigrationId }));
    try {
      if (snap.type === 'logical') {
        const scratchTarget = snap.scratchTarget ?? snap.scratch;
        // Registered so that the target side (subscriptions) is torn down before the source side (slots).
        registerTeardown('drop-scratch-source', () =>
          teardown.dropScratchDatabase({ rehearsalId, server: snap.scratch, database: names.sourceDatabase }),
        );
        registerTeardown('drop-scratch-target', () =>
          teardown.dropScratchDatabase({ rehearsalId, server: scratchTarget, database: names.targetDatabase }),
        );
        prepared = await snapshots.prepareLogicalSnapshot({
          rehearsalId,
          source: input.migration.source.url,
          scratch: snap.scratch,
          ...(snap.scratchTarget ? { scratchTarget: snap.scratchTarget } : {}),
          jobs: input.migration.parallelJobs,
        });
        const target = { ...scratchTarget, database: prepared.targetDatabase };
        endpoints = {
          source: { ...snap.scratch, database: prepared.sourceDatabase },
          target,
          replication: target,
          stagingSinkPath: prepared.stagingSinkPath,
        };
      } else {
        const parameterName = `${snap.parameterPrefix.replace(/\/+$/, '')}/${rehearsalId}/source-url`;
        registerTeardown('delete-restored-instance', () =>
          teardown.deleteRestoredInstance({ rehearsalId, parameterName, goneWithinMs: durationMs(snap.availableWithin) }),
        );
        registerTeardown('drop-scratch-target', () =>
          teardown.dropScratchDatabase({ rehearsalId, server: snap.scratchTarget, database: names.targetDatabase }),
        );
        prepared = await snapshots.prepareRdsSnapshot({
          rehearsalId,
          dbSnapshotIdentifier: snap.dbSnapshotIdentifier,
          instanceClass: snap.instanceClass,
          ...(snap.dbSubnetGroupName ? { dbSubnetGroupName: snap.dbSubnetGroupName } : {}),
          ...(snap.vpcSecurityGroupIds ? { vpcSecurityGroupIds: snap.vpcSecurityGroupIds } : {}),
          credentials: snap.credentials ?? input.migration.source.url,
          scratchTarget: snap.scratchTarget,
          parameterName,
          availableWithinMs: durationMs(snap.availableWithin),
          reachableWithinMs: durationMs(snap.reachableWithin),
        });
        const target = { ...snap.scratchTarget, database: prepared.targetDatabase };
        endpoints = { source: { ssm: parameterName }, target, replication: target, stagingSinkPath: prepared.stagingSinkPath };
      }
    } catch (err) {
      if (!isCancellation(err)) failure = { phase: 'snapshot', message: failureMessage(err) };
      throw err;
    } finally {
      snapshotMs = Date.now() - snapshotStarted;
    }
    snapshotSummary = { type: snap.type, description: prepared.description, sizeBytes: prepared.sizeBytes, details: prepared.details };
    status.snapshot = snapshotSummary;

    // --- 2. the migration, as a child, in rehearsal mode ---
    ({ method, reason: methodReason } = rehearsedMethod(input.migration, prepared.sizeBytes));
    if (method === 'logical' && snap.type === 'logical' && sameServer(snap.scratch, snap.scratchTarget ?? snap.scratch)) {
      failure = {
        phase: 'setup',
        message: `${methodReason}; method logical needs snapshot.scratchTarget on another server than snapshot.scratch (PostgreSQL cannot create a subscription's slot on its own cluster in the same command)`,
      };
      throw ApplicationFailure.nonRetryable(failure.message, 'RehearsalUnsupported');
    }
    phase('migrating', `${method} on the scratch copy`);
    const childInput = childMigrationInput(input.migration, childMigrationId, endpoints, method);
    const handle = await startChild(migrateDatabase, {
      workflowId: childWorkflowId,
      args: [childInput],
      workflowTaskTimeout: WORKFLOW_TASK_TIMEOUT,
      // Cancelling the rehearsal cancels the migration, which undoes its steps before the teardown here.
      cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
    });
    childStarted = true;
    status.childWorkflowId = childWorkflowId;
    // Approvals ahead of time, recorded by the child as decisions of the automatic approver.
    for (const gate of rehearsedGates(method)) {
      await handle.signal(approveSignal, {
        approver: AUTOMATIC_APPROVER,
        gate,
        reason: `granted automatically by rehearsal ${rehearsalId} (${info.workflowId}): the migration runs on scratch copies and a staging config sink; nothing in production changes`,
      });
    }
    try {
      const result = await handle.result();
      child = {
        workflowId: childWorkflowId,
        outcome: result.outcome,
        ...(result.reason ? { reason: result.reason } : {}),
        steps: result.steps,
        compensations: result.compensations,
        decisions: result.decisions,
        freezeWindow: result.freezeWindow,
        verification: result.verification,
        rowsCopied: result.rowsCopied,
        tables: result.tables,
      };
    } catch (err) {
      // A rolled-back child closes as failed (MigrationRolledBack), its result in the failure's details.
      const result = migrationResultIn(err);
      const cancelled = isCancellation(err);
      child = {
        workflowId: childWorkflowId,
        outcome: cancelled ? 'cancelled' : result?.outcome === 'rolled-back' ? 'rolled-back' : 'failed',
        reason: result?.reason ?? failureMessage(err),
        steps: result?.steps ?? [],
        compensations: result?.compensations ?? [],
        decisions: result?.decisions ?? [],
        freezeWindow: result?.freezeWindow ?? {},
        verification: result?.verification ?? 'not-run',
        ...(result ? { rowsCopied: result.rowsCopied, tables: result.tables } : {}),
      };
      if (cancelled) throw err;
    }
  } catch (err) {
    if (isCancellation(err)) cancellation = err as Error;
    else if (!failure && !child) failure = { phase: status.phase, message: failureMessage(err) };
  }

  // --- 3. teardown and report: always, whatever happened above, and not cancellable ---
  let report = undefined as ReturnType<typeof buildReport> | undefined;
  let summary: RehearsalSummary | undefined;
  await CancellationScope.nonCancellable(async () => {
    if (childStarted && child) {
      // Replication lag at cutover (and, for a cancelled child, its steps) is in its status, not its result.
      const extra = await quick.rehearsalChildStatus({ workflowId: childWorkflowId }).catch(() => null);
      if (extra) {
        if (extra.replication) child.replication = extra.replication;
        if (!child.steps.length)
          Object.assign(child, {
            steps: extra.steps,
            compensations: extra.compensations,
            decisions: extra.decisions,
            freezeWindow: extra.freezeWindow,
          });
        if (child.verification === 'not-run') child.verification = extra.verification;
      }
    }
    phase('tearing-down');
    const teardownStarted = Date.now();
    await saga.runAll((record) => {
      const full: TeardownRecord = { ...record, ...(done.has(record.step) ? { done: done.get(record.step) } : {}) };
      status.teardown.push(full);
    });
    const teardownMs = Date.now() - teardownStarted;
    const endedAtMs = Date.now();

    phase('reporting');
    report = buildReport({
      rehearsalId,
      migrationId,
      workflowId: info.workflowId,
      runId: info.runId,
      startedAtMs,
      endedAtMs,
      ...(status.scheduledAt ? { scheduledAt: status.scheduledAt } : {}),
      ...(scheduleId ? { scheduleId } : {}),
      snapshot: snapshotSummary,
      ...(snapshotMs !== undefined ? { snapshotMs } : {}),
      ...(method ? { method } : {}),
      ...(methodReason ? { methodReason } : {}),
      ...(child ? { child } : {}),
      teardown: status.teardown,
      teardownMs,
      ...(failure ? { failure } : {}),
      cancelled: cancellation !== undefined,
      ...(input.migration.downtimeBudget ? { downtimeBudget: input.migration.downtimeBudget } : {}),
      marginPercent: input.marginPercent,
      minMarginMs: input.minMarginMs,
      deviations: rehearsalDeviations(input.migration),
    });
    status.reasons = report.reasons;
    try {
      const written = await quick.writeRehearsalReport({ report, ...(input.reportDir ? { reportDir: input.reportDir } : {}) });
      report.trend = written.trend;
      status.report = written.files;
    } catch (err) {
      status.reportError = failureMessage(err);
    }
    summary = summaryOf(report, status.report, status.reportError);
    outcome(report.outcome);
    phase('done', `${report.outcome}${report.reasons.length ? `: ${report.reasons.join('; ')}` : ''}`);
  });

  if (cancellation !== undefined) throw cancellation;
  const r = report!;
  if (r.outcome === 'failed') {
    throw ApplicationFailure.nonRetryable(
      `rehearsal ${rehearsalId} of ${migrationId} failed: ${r.reasons.join('; ')}${status.report ? ` (report: ${status.report.markdown})` : ''}`,
      'RehearsalFailed',
      summary,
    );
  }
  return summary!;
}
