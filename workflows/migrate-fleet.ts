/**
 * `migrateFleet`: many migrations as child workflows (`migrateDatabase`).
 *
 *   validate -> the databases (the list given, or discovered through the Heroku Platform API and each
 *   input built from the template) -> smallest first, cut into waves -> per wave: its approval
 *   (`approveWave`, or automatic, or left to each migration's gates), then its migrations with bounded
 *   concurrency; a wave must pass before the next -> the report (JSON, Markdown, SVG)
 *
 * One migration per database: a child's workflow id is derived from its database, so no two fleets
 * migrate one database at once. The failure budget: once more migrations failed, rolled back or ran over
 * the downtime budget than it allows, no new one starts (running ones finish). `pause` / `resume` stop and
 * restart new starts; `cancel` (or cancelling the workflow) cancels the running migrations, which undo
 * their steps. After `startsPerRun` starts (or when Temporal suggests it) the fleet lets its running
 * migrations end and continues as new with its state, so a fleet of thousands keeps a bounded history.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowCancellationType,
  condition,
  continueAsNew,
  isCancellation,
  ParentClosePolicy,
  setCurrentDetails,
  setHandler,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import {
  checkFleetControl,
  checkFleetInput,
  checkWaveApproval,
  fillTemplate,
  type FleetInput,
  type FleetInputDraft,
} from '../contract/fleet';
import { buildFleetReport } from '../contract/fleet-report';
import {
  budgetUsed,
  childEnd,
  countByState,
  countsAgainstBudget,
  databaseOfRef,
  duplicateDatabases,
  ENDED_STATES,
  migrationIdOf,
  migrationWorkflowId,
  pushEvent,
  recordEnd,
  assignWaves,
  type FleetItem,
  type FleetState,
} from '../contract/fleet-state';
import { CDC_METHODS, durationMs, formatProblems, type MigrationInputDraft } from '../contract/input';
import { approveSignal, type ApprovalPayload } from '../signals';
import {
  approveWaveUpdate,
  cancelFleetUpdate,
  fleetStatusQuery,
  pauseFleetUpdate,
  resumeFleetUpdate,
  type FleetOutcome,
  type FleetPhase,
  type FleetResult,
  type FleetStatus,
} from '../signals/fleet';
import { FleetIdKey } from '../signals/search-attributes';
import { WORKFLOW_TASK_TIMEOUT } from '../signals/task-queue';
import { activities } from './activity-options';
import { migrateDatabase } from './migrate-database';
import { failureMessage } from './progress';

const iso = () => new Date(Date.now()).toISOString();

/** The gates a fleet approves ahead of time for a migration (cutover only where the method may stream changes). */
function gatesToApprove(input: MigrationInputDraft): string[] {
  const method = input.method ?? 'auto';
  return method === 'auto' || (CDC_METHODS as readonly string[]).includes(method) ? ['cutover', 'go-live'] : ['go-live'];
}

/** Builds the items of a new fleet: one per database, waves assigned; duplicates refused naming both entries. */
async function firstState(input: FleetInput, fleetId: string): Promise<FleetState> {
  let items: FleetItem[];
  if (input.migrations) {
    items = input.migrations.map((m, entry) => {
      const mi = m.input as MigrationInputDraft;
      const database = databaseOfRef(mi.source.url);
      return {
        database,
        workflowId: migrationWorkflowId(database),
        migrationId: mi.migrationId ?? migrationIdOf(database),
        ...(m.sizeBytes !== undefined ? { sizeBytes: m.sizeBytes } : {}),
        wave: 0,
        entry,
        state: 'pending',
      };
    });
  } else {
    const found = await activities.long.discoverFleet({ discovery: input.discovery!, template: input.template! });
    items = found.map((d) => {
      const database = `heroku:${d.addon}`;
      return {
        database,
        workflowId: migrationWorkflowId(database),
        migrationId: migrationIdOf(d.addon),
        ...(d.sizeBytes !== undefined ? { sizeBytes: d.sizeBytes } : {}),
        wave: 0,
        discovered: d,
        state: 'pending',
      };
    });
  }
  const dups = duplicateDatabases(items.map((i) => i.database));
  if (dups.length) {
    const field = input.migrations ? 'migrations' : 'discovery';
    const problems = dups.map(([i, j]) => ({
      field: input.migrations ? `migrations.${i}.input.source.url` : field,
      message: `the same database as ${input.migrations ? `migrations.${j}` : items[j].database} (one migration per database)`,
    }));
    throw ApplicationFailure.nonRetryable(formatProblems(problems, 'fleet'), 'InvalidInput', problems);
  }
  const now = iso();
  return {
    fleetId,
    startedAt: now,
    items: assignWaves(items, input.waves, input.order),
    wave: 0,
    approvals: [],
    runs: 0,
    events: [{ at: now, what: `${items.length} database(s) in ${input.waves.length} wave(s)` }],
  };
}

export async function migrateFleet(rawInput: FleetInputDraft, carried?: FleetState): Promise<FleetResult> {
  const checked = checkFleetInput(rawInput);
  if (!checked.ok) throw ApplicationFailure.nonRetryable(formatProblems(checked.problems, 'fleet'), 'InvalidInput', checked.problems);
  const input = checked.input;
  const { waves } = input;
  let phase: FleetPhase = carried ? 'running' : 'discovering';
  let reportFiles: FleetStatus['report'];
  let reportError: string | undefined;
  let outcome: FleetOutcome | undefined;
  // Until the first state exists, the status shows an empty fleet.
  let state: FleetState = carried ?? {
    fleetId: input.fleetId,
    startedAt: iso(),
    items: [],
    wave: 0,
    approvals: [],
    runs: 0,
    events: [],
  };
  const running = new Map<string, CancellationScope>();
  let startsThisRun = 0;
  const downtimeBudgetMs = input.downtimeBudget ? durationMs(input.downtimeBudget) : undefined;

  const used = () => budgetUsed(state.items);
  const waveState = (i: number) => {
    const of = state.items.filter((x) => x.wave === i);
    if (i < state.wave) return 'passed' as const;
    if (i > state.wave) return outcome || state.halted || state.cancelled ? ('not-started' as const) : ('waiting' as const);
    if (state.halted && of.every((x) => ENDED_STATES.includes(x.state))) return of.some((x) => x.state === 'skipped') ? 'failed' : 'passed';
    return of.some((x) => x.state !== 'pending') ? ('running' as const) : ('not-started' as const);
  };
  const status = (): FleetStatus => ({
    fleetId: input.fleetId,
    phase,
    startedAt: state.startedAt,
    wave: { index: state.wave, name: waves[Math.min(state.wave, waves.length - 1)].name, of: waves.length },
    waves: waves.map((w, i) => ({ name: w.name, size: state.items.filter((x) => x.wave === i).length, state: waveState(i) })),
    counts: countByState(state.items),
    failureBudget: { allowed: input.failureBudget, used: used(), exceeded: used() > input.failureBudget },
    concurrency: input.concurrency,
    ...(state.paused ? { paused: state.paused } : {}),
    ...(state.cancelled ? { cancelled: state.cancelled } : {}),
    ...(state.halted ? { halted: state.halted } : {}),
    approvals: state.approvals,
    run: state.runs,
    events: state.events,
    items: state.items,
    ...(outcome ? { outcome } : {}),
    ...(reportFiles ? { report: reportFiles } : {}),
    ...(reportError ? { reportError } : {}),
  });
  const setPhase = (p: FleetPhase) => {
    phase = p;
    const c = countByState(state.items);
    setCurrentDetails(
      `**fleet ${p}**: wave ${waves[Math.min(state.wave, waves.length - 1)].name}; ${c.completed} completed, ${c.running} running, ${c.pending} pending, ${c.failed + c['rolled-back']} failed${state.halted ? `; halted: ${state.halted}` : ''}`,
    );
  };

  // --- handlers: validated and bounded (contract/fleet.ts); a refused Update never reaches history ---
  setHandler(fleetStatusQuery, status);
  const refuse = (problem: string) => {
    throw new Error(problem);
  };
  setHandler(
    pauseFleetUpdate,
    (p) => {
      state.paused = { by: p.by, ...(p.reason ? { reason: p.reason } : {}), at: iso() };
      pushEvent(state, state.paused.at, `paused by ${p.by}${p.reason ? `: ${p.reason}` : ''}`);
      return state.paused;
    },
    {
      validator: (p) => {
        const c = checkFleetControl(p);
        if (!c.ok) refuse(c.problem);
        if (state.paused) refuse(`already paused by ${state.paused.by} at ${state.paused.at}`);
        if (state.cancelled || outcome) refuse('the fleet is ending: nothing to pause');
      },
    },
  );
  setHandler(
    resumeFleetUpdate,
    (p) => {
      state.paused = undefined;
      const at = iso();
      pushEvent(state, at, `resumed by ${p.by}${p.reason ? `: ${p.reason}` : ''}`);
      return { resumedAt: at };
    },
    {
      validator: (p) => {
        const c = checkFleetControl(p);
        if (!c.ok) refuse(c.problem);
        if (!state.paused) refuse('the fleet is not paused');
      },
    },
  );
  setHandler(
    cancelFleetUpdate,
    (p) => {
      state.cancelled = { by: p.by, ...(p.reason ? { reason: p.reason } : {}), at: iso() };
      pushEvent(state, state.cancelled.at, `cancelled by ${p.by}${p.reason ? `: ${p.reason}` : ''}`);
      for (const scope of running.values()) scope.cancel();
      return state.cancelled;
    },
    {
      validator: (p) => {
        const c = checkFleetControl(p);
        if (!c.ok) refuse(c.problem);
        if (state.cancelled) refuse(`already cancelled by ${state.cancelled.by} at ${state.cancelled.at}`);
        if (outcome) refuse('the fleet has ended');
      },
    },
  );
  setHandler(
    approveWaveUpdate,
    (p) => {
      const at = iso();
      state.approvals.push({ wave: p.wave, approver: p.approver, ...(p.reason ? { reason: p.reason } : {}), at });
      pushEvent(state, at, `wave ${p.wave} approved by ${p.approver}`);
      return { wave: p.wave, approver: p.approver, at };
    },
    {
      validator: (p) => {
        const c = checkWaveApproval(p);
        if (!c.ok) refuse(c.problem);
        if (input.approval !== 'per-wave') refuse(`this fleet's approval is "${input.approval}": waves are not approved one by one`);
        const index = waves.findIndex((w) => w.name === p.wave);
        if (index < 0) refuse(`unknown wave; the waves are: ${waves.map((w) => w.name).join(', ')}`);
        if (index < state.wave) refuse(`wave ${p.wave} has already run`);
        const already = state.approvals.find((a) => a.wave === p.wave);
        if (already) refuse(`wave ${p.wave} was already approved by ${already.approver} at ${already.at}`);
      },
    },
  );

  const approvalOf = (wave: number) => state.approvals.find((a) => a.wave === waves[wave].name);
  const waveApproved = (wave: number) => input.approval !== 'per-wave' || !!approvalOf(wave);
  const pendingOf = (wave: number) => state.items.filter((i) => i.wave === wave && i.state === 'pending');
  const stopping = () => !!state.cancelled || !!state.halted;
  const wantsNewRun = () => startsThisRun >= input.startsPerRun || workflowInfo().continueAsNewSuggested;
  const canStart = () =>
    !stopping() &&
    !state.paused &&
    state.wave < waves.length &&
    waveApproved(state.wave) &&
    !wantsNewRun() &&
    running.size < input.concurrency &&
    pendingOf(state.wave).length > 0;
  const waveEnded = () => running.size === 0 && state.wave < waves.length && pendingOf(state.wave).length === 0;

  /** The input of an item's migration: its entry, or the template filled for its discovered database. */
  const childInput = (item: FleetItem): MigrationInputDraft => {
    const raw =
      item.entry !== undefined
        ? (input.migrations![item.entry].input as MigrationInputDraft)
        : (fillTemplate(input.template, {
            app: item.discovered!.app,
            addon: item.discovered!.addon,
            attachment: item.discovered!.attachment,
          }) as MigrationInputDraft);
    return { ...raw, migrationId: raw.migrationId ?? item.migrationId };
  };

  const budgetOfInput = (m: MigrationInputDraft) => (m.downtimeBudget ? durationMs(m.downtimeBudget) : undefined);

  const launch = (item: FleetItem) => {
    const scope = new CancellationScope();
    running.set(item.workflowId, scope);
    item.state = 'running';
    item.startedAt = iso();
    startsThisRun++;
    const migration = childInput(item);
    const approver = input.approval === 'automatic' ? `fleet:${input.fleetId}` : approvalOf(item.wave)?.approver;
    void scope
      .run(async () => {
        const handle = await startChild(migrateDatabase, {
          workflowId: item.workflowId,
          args: [migration],
          workflowTaskTimeout: WORKFLOW_TASK_TIMEOUT,
          typedSearchAttributes: [{ key: FleetIdKey, value: input.fleetId }],
          memo: { fleetId: input.fleetId, wave: waves[item.wave].name },
          cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
          parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
        });
        if (approver && input.approval !== 'child-gates') {
          for (const gate of gatesToApprove(migration)) {
            const payload: ApprovalPayload = {
              approver,
              gate,
              reason:
                input.approval === 'automatic'
                  ? `approved automatically by fleet ${input.fleetId} (approval: automatic)`
                  : `wave ${waves[item.wave].name} of fleet ${input.fleetId} approved by ${approver}`,
            };
            await handle.signal(approveSignal, payload);
          }
        }
        return await handle.result();
      })
      .then(
        (result) => childEnd({ result }),
        (error: unknown) => {
          const e = error as { name?: string; message?: string };
          if (e?.name === 'WorkflowExecutionAlreadyStartedError')
            return {
              state: 'failed' as const,
              reason: `another migration of this database is running (workflow ${item.workflowId}); not started`,
            };
          return childEnd({ error });
        },
      )
      .then((end) => {
        recordEnd(item, end, iso(), downtimeBudgetMs ?? budgetOfInput(migration));
        running.delete(item.workflowId);
        if (countsAgainstBudget(item) && used() > input.failureBudget && !state.halted) {
          state.halted = `failure budget exceeded: ${used()} migration(s) failed, rolled back or over budget (budget ${input.failureBudget}); no new migration starts`;
          pushEvent(state, iso(), state.halted);
        }
      });
  };

  let cancellation: Error | undefined;
  try {
    if (!carried) state = await firstState(input, input.fleetId);
    setPhase('running');
    for (;;) {
      const blockedOnApproval = () => state.wave < waves.length && !waveApproved(state.wave) && !stopping();
      setPhase(
        state.cancelled
          ? 'cancelling'
          : state.halted
            ? 'halted'
            : state.paused
              ? 'paused'
              : blockedOnApproval()
                ? 'awaiting-approval'
                : wantsNewRun()
                  ? 'draining'
                  : 'running',
      );
      if (running.size === 0 && (stopping() || state.wave >= waves.length)) break;
      // Continue as new only with work left: a fleet whose last migrations just ended finishes in this run.
      if (running.size === 0 && wantsNewRun() && state.items.some((i) => i.state === 'pending') && !waveEnded()) {
        await condition(allHandlersFinished);
        pushEvent(state, iso(), `continued as new after ${startsThisRun} start(s)`);
        await continueAsNew<typeof migrateFleet>(rawInput, { ...state, runs: state.runs + 1 });
      }
      if (canStart()) {
        launch(pendingOf(state.wave)[0]);
        continue;
      }
      if (waveEnded()) {
        const w = waves[state.wave];
        const failed = state.items.filter((i) => i.wave === state.wave && countsAgainstBudget(i)).length;
        if (w.maxFailures !== undefined && failed > w.maxFailures) {
          state.halted = `wave ${w.name} failed: ${failed} of its migrations failed, rolled back or ran over budget (at most ${w.maxFailures} allowed)`;
          pushEvent(state, iso(), state.halted);
        } else if (!state.halted) {
          pushEvent(state, iso(), `wave ${w.name} passed`);
          state.wave++;
        }
        continue;
      }
      // Wait for something to change: a child ends, an Update arrives.
      const before = `${running.size}|${state.wave}|${!!state.paused}|${stopping()}|${state.approvals.length}`;
      await condition(
        () =>
          canStart() || waveEnded() || `${running.size}|${state.wave}|${!!state.paused}|${stopping()}|${state.approvals.length}` !== before,
      );
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    cancellation = err as Error;
    state.cancelled ??= { by: 'workflow cancellation', at: iso() };
    for (const scope of running.values()) scope.cancel();
  }

  // --- the end: running migrations finish (cancelled ones undo their steps), the rest is skipped, the report ---
  return await CancellationScope.nonCancellable(async () => {
    await condition(() => running.size === 0);
    for (const item of state.items) {
      if (item.state === 'pending') {
        item.state = 'skipped';
        item.reason = state.cancelled ? 'the fleet was cancelled' : (state.halted ?? 'not started');
      }
    }
    outcome = state.cancelled ? 'cancelled' : state.halted ? 'halted' : 'completed';
    const reason = state.cancelled
      ? `cancelled by ${state.cancelled.by}${state.cancelled.reason ? `: ${state.cancelled.reason}` : ''}`
      : state.halted;
    setPhase('reporting');
    const endedAt = iso();
    const report = buildFleetReport({
      fleetId: input.fleetId,
      outcome,
      ...(reason ? { reason } : {}),
      items: state.items,
      waveNames: waves.map((w) => w.name),
      generatedAt: endedAt,
    });
    try {
      reportFiles = await activities.quick.writeFleetReport({ report, ...(input.reportDir ? { reportDir: input.reportDir } : {}) });
    } catch (err) {
      reportError = failureMessage(err);
    }
    setPhase('done');
    await condition(allHandlersFinished);
    if (cancellation) throw cancellation;
    return {
      fleetId: input.fleetId,
      outcome,
      ...(reason ? { reason } : {}),
      counts: countByState(state.items),
      items: state.items,
      startedAt: state.startedAt,
      endedAt,
      ...(reportFiles ? { report: reportFiles } : {}),
      ...(reportError ? { reportError } : {}),
    };
  });
}
