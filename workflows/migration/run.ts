/**
 * The state of one migration, in one object: its input, plan, gates, undo stack, status and the
 * activities running beside it. Every phase module reads and updates it; nothing else is shared.
 */
import { ApplicationFailure, CancellationScope, patched, workflowInfo } from '@temporalio/workflow';
import type { CdcArgs, ReverseArgs } from '../../activities';
import type { VerificationReport } from '../../activities/database/verify';
import { durationMs, type GateName, type MigrationInput } from '../../contract/input';
import { methodTraits, type MethodTraits } from '../../contract/methods';
import { fitName } from '../../contract/names';
import type { MigrationPlan } from '../../contract/plan';
import type { ApprovalPayload, GateDecision, MigrationResult, MigrationStatus, WindowEdge } from '../../signals';
import { activities } from '../activity-options';
import { AppControl } from '../app-control';
import { Gates } from '../gates';
import { failureMessage, Progress } from '../progress';
import { Compensations } from '../saga';
import { detailsContext } from './details';

/**
 * Workflow ids may hold characters that do not belong in file names or application_name. A workflow
 * id that had to be changed (characters replaced, cut to 40) gets a hash of the whole id, so two
 * workflow ids never share a migration id, nor the names derived from it (sessions, slot, work dir).
 */
function migrationIdFrom(input: MigrationInput): string {
  if (input.migrationId) return input.migrationId;
  const workflowId = workflowInfo().workflowId;
  const readable = workflowId
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+/, '');
  const asBefore = readable.slice(0, 40) || 'migration';
  // Running migrations keep the id they started with (patch marker only where the id changes).
  if (asBefore === workflowId || !patched('derived-migration-id')) return asBefore;
  return fitName(readable.replace(/-+$/, ''), 40, { id: workflowId, separator: '-', always: true, trimSeparators: true }).replace(/^-/, '');
}

/** patched(): the Temporal UI's details in Markdown, kept up to date, and the WritesFrozen / GateApprovers search attributes. */
const UI_METADATA = 'ui-metadata';

export type RollbackRequest = ApprovalPayload & { requestedAt: string };

export class MigrationRun {
  readonly migrationId: string;
  readonly progress: Progress;
  readonly status: MigrationStatus;
  readonly gates: Gates;
  readonly saga = new Compensations();
  readonly appControl: AppControl;
  readonly source: MigrationInput['source']['url'];
  readonly target: MigrationInput['target']['url'];
  /** What the application connects with after the swap. */
  readonly appUrl: MigrationInput['target']['url'];
  private chosenPlan?: MigrationPlan;
  private traits?: MethodTraits;
  /** The application's own role on the target (roles.application "own"), settled with the plan. */
  appRole?: { sourceRole: string; role: string };
  /** The source's ownership and grants were replayed onto the target: later copies and comparisons carry them too. */
  rolesReplayed = false;
  /** What the catalog comparisons are given: owners and grants too once the roles were replayed, after the role map. */
  get catalogOptions(): { privileges: boolean; roleMap: Record<string, string> } | undefined {
    return this.rolesReplayed ? { privileges: true, roleMap: this.input.roles.map } : undefined;
  }
  rowsCopied = 0;
  verification: MigrationResult['verification'] = 'not-run';
  /** Set before the target is unfrozen: from then on its data may hold the application's writes. */
  goLiveAttempted = false;
  /** A rollback after go-live is possible only while the hold lasts and reverse replication runs. */
  holding = false;
  /** The apply of the target's captured changes to the source during the hold (methods whose reverse is a capture). */
  reverseApply?: { done: Promise<unknown>; stop: () => Promise<void> };
  rollbackRequest?: RollbackRequest;
  /** Set once the undos start: nothing new may start beside the workflow then. */
  compensating = false;
  /** Activities running beside the workflow (verification, the triggers method's apply): a rollback stops them first. */
  private readonly background: { scope: CancellationScope; settled: Promise<unknown> }[] = [];

  constructor(readonly input: MigrationInput) {
    this.migrationId = migrationIdFrom(input);
    this.progress = new Progress(this.migrationId);
    this.status = this.progress.status;
    // Asked first, before any command: the UI's details and the WritesFrozen / GateApprovers attributes.
    if (patched(UI_METADATA)) {
      this.progress.ui = detailsContext(
        input,
        workflowInfo().workflowId,
        input.downtimeBudget ? durationMs(input.downtimeBudget) : undefined,
      );
    }
    const gateSettings = (gate: GateName) => {
      const config = input.gates[gate];
      return { timeoutMs: durationMs(config.timeout), ...(config.approvers ? { approvers: config.approvers } : {}) };
    };
    // The cutover gate exists only for replication methods; until the plan names the method, both are accepted.
    this.gates = new Gates(
      {
        cutover: gateSettings('cutover'),
        'go-live': gateSettings('go-live'),
        traffic: gateSettings('traffic'),
        decommission: gateSettings('decommission'),
      },
      this.status,
    );
    if (this.progress.ui) this.gates.tellChanges(() => this.progress.refresh());
    if (!input.hold) this.gates.drop('decommission');
    if (!input.traffic?.approveBeforeLast) this.gates.drop('traffic');
    this.appControl = new AppControl(input.app, this.progress);
    this.source = input.source.url;
    this.target = input.target.url;
    this.appUrl = input.target.appUrl ?? this.target;
  }

  get plan(): MigrationPlan {
    if (!this.chosenPlan) throw ApplicationFailure.nonRetryable('internal: the plan is used before preflight made it', 'NoPlan');
    return this.chosenPlan;
  }

  set plan(plan: MigrationPlan) {
    this.chosenPlan = plan;
    this.traits = methodTraits(plan.method, this.input, patched);
    // Plans made before roles were carried have no `application`: their application keeps target.url / target.appUrl.
    const access = plan.application;
    if (access?.mode === 'own' && patched('app-own-role')) this.appRole = { sourceRole: access.sourceRole, role: access.role };
  }

  /** The roles frozen on the target until go-live: the master's, and the application's own. */
  get targetRoles(): string[] {
    return [this.plan.target.currentUser, ...(this.appRole ? [this.appRole.role] : [])];
  }

  /** swapConfig's arguments beside the URL: the application's own role, whose password the swap sets. */
  get appCredential(): { appRole?: { role: string; password?: MigrationInput['target']['url'] } } {
    if (!this.appRole) return {};
    const password = this.input.roles.appPassword;
    return { appRole: { role: this.appRole.role, ...(password ? { password } : {}) } };
  }

  /** The chosen method's traits, settled once with the plan (a method's patch is asked there, in order). */
  get method(): MethodTraits {
    if (!this.traits) throw ApplicationFailure.nonRetryable('internal: the method is used before preflight chose it', 'NoPlan');
    return this.traits;
  }

  /** The arguments every replication activity takes: the endpoints, the method, the subscribing role. */
  get cdcArgs(): CdcArgs {
    return {
      ...(this.method.shape === 'replication' ? { method: this.plan.method as NonNullable<CdcArgs['method']> } : {}),
      migrationId: this.migrationId,
      source: this.source,
      target: this.target,
      ...(this.input.target.replicationUrl ? { replicationUrl: this.input.target.replicationUrl } : {}),
    };
  }

  /** The user tables that hold rows (partitioned parents hold none). */
  get dataTables() {
    return this.plan.source.tables.filter((t) => !t.partitioned);
  }

  result(outcome: MigrationResult['outcome'], reason?: string): MigrationResult {
    return {
      migrationId: this.migrationId,
      outcome,
      method: this.chosenPlan?.method ?? 'dump-restore',
      ...(reason ? { reason } : {}),
      rowsCopied: this.rowsCopied,
      tables: this.chosenPlan?.source.tables.filter((t) => !t.partitioned).length ?? 0,
      verification: this.verification,
      ...(this.status.catalogDifferences ? { catalogDifferences: this.status.catalogDifferences } : {}),
      freezeWindow: this.status.freezeWindow,
      steps: this.status.steps,
      compensations: this.status.compensations,
      decisions: this.status.decisions,
      sides: this.status.sides,
    };
  }

  /** What the catalog comparison found, into the status and so the result (reports made before it had none). */
  reportCatalog(report: Pick<VerificationReport, 'catalogDifferences'> | undefined): void {
    if (report?.catalogDifferences) this.status.catalogDifferences = report.catalogDifferences;
  }

  /**
   * Records an edge of the write-freeze window: the source frozen, or writes accepted again (the target
   * at go-live, the source after a rollback). The earliest report of an edge wins: an activity retried
   * after a worker crash reports a later time than the attempt that really froze or unfroze.
   */
  windowEdge(edge: WindowEdge): void {
    const w = this.status.freezeWindow;
    if (edge.edge === 'frozen') {
      if (edge.side === 'source' && (w.frozenAt === undefined || edge.at < w.frozenAt)) w.frozenAt = edge.at;
    } else if (w.frozenAt !== undefined && (w.unfrozenAt === undefined || edge.at < w.unfrozenAt)) {
      w.unfrozenAt = edge.at;
    }
    if (w.frozenAt !== undefined && w.unfrozenAt !== undefined) w.durationMs = w.unfrozenAt - w.frozenAt;
    this.progress.refresh();
  }

  /** Runs `work` beside the workflow, in a scope a rollback cancels and waits for (so no undo races it). */
  runInBackground<T>(work: () => Promise<T>): Promise<T> {
    return this.runBeside(work).done;
  }

  /** The same, with a way to stop it earlier: cancels it and resolves once it ended. */
  runBeside<T>(work: () => Promise<T>): { done: Promise<T>; stop: () => Promise<void> } {
    const scope = new CancellationScope();
    const done = scope.run(work);
    const settled = done.then(
      () => undefined,
      () => undefined,
    );
    this.background.push({ scope, settled });
    return {
      done,
      stop: async () => {
        scope.cancel();
        await CancellationScope.nonCancellable(() => settled);
      },
    };
  }

  /**
   * The rollback path of the hold (hold.reverseReplication): a subscription on the source, by the role
   * of source.replicationUrl; or, for a method that captures changes itself (triggers), the same
   * capture on the target applied to the source by the migration's own session.
   */
  get reverse(): ReverseArgs | undefined {
    if (!this.input.hold?.reverseReplication) return undefined;
    if (this.method.reverse === 'capture') {
      return { ...this.cdcArgs, tablesWithoutPrimaryKey: this.input.replication.tablesWithoutPrimaryKey };
    }
    const sourceReplicationUrl = this.input.source.replicationUrl;
    return sourceReplicationUrl ? { ...this.cdcArgs, sourceReplicationUrl } : undefined;
  }

  /**
   * Stops what runs beside the workflow, then runs every registered undo, production first. Once going
   * live was attempted the target may hold the application's writes: then nothing moves the application
   * back (see finishGoLive).
   */
  async compensate(): Promise<void> {
    this.compensating = true;
    for (const b of this.background) b.scope.cancel();
    await CancellationScope.nonCancellable(() => Promise.all(this.background.map((b) => b.settled)));
    if (!this.saga.size) return;
    if (this.goLiveAttempted && patched('roll-forward-after-go-live')) return this.finishGoLive();
    this.progress.phase('compensating', `undoing ${this.saga.size} step(s)`);
    const productionFirst = patched('production-first-compensation');
    await this.saga.runAll((record) => {
      this.status.compensations.push(record);
      this.progress.refresh();
    }, productionFirst);
  }

  /**
   * Going live failed half-way: the target may already be writable and hold writes the source lacks, so
   * the only safe direction is forward. The target is made writable (idempotent) and the application
   * resumed on it; the source stays read-only as the reference. The undo stack is dropped.
   */
  private async finishGoLive(): Promise<void> {
    const { plan, migrationId, target, status } = this;
    this.saga.forget();
    this.progress.phase('compensating', 'going live failed half-way: finishing it (the target may hold writes the source lacks)');
    await CancellationScope.nonCancellable(async () => {
      const started = Date.now();
      try {
        const live = await activities.undo.unfreezeTarget({
          migrationId,
          url: target,
          roles: this.targetRoles,
          prior: plan.target.readOnlySettings,
          reportWindowEdge: true,
        });
        status.sides.targetWritable = true;
        this.windowEdge({ side: 'target', edge: 'unfrozen', at: live.unfrozenAt });
        status.compensations.push({ step: 'finish-go-live', state: 'completed', durationMs: Date.now() - started });
        await this.appControl.resume();
      } catch (err) {
        status.compensations.push({
          step: 'finish-go-live',
          state: 'failed',
          durationMs: Date.now() - started,
          error: failureMessage(err),
        });
      }
    });
  }

  /** One sentence for the operator: where the application is and which side takes writes. */
  describeSides(): string {
    const { application, sourceWritable, targetWritable } = this.status.sides;
    const state = (writable: boolean) => (writable ? 'writable' : 'read-only');
    return `the application is on the ${application}; source ${state(sourceWritable)}, target ${state(targetWritable)}`;
  }

  /** A no-go or a gate timeout before go-live: everything is undone and the migration ends rolled back. */
  async rollBack(decision: GateDecision): Promise<MigrationResult> {
    const by = decision.via === 'timeout' ? 'timed out' : `rejected by ${decision.approver}`;
    const reason = `${decision.gate} ${by}${decision.reason ? `: ${decision.reason}` : ''}`;
    await this.compensate();
    this.progress.phase('rolled-back', reason);
    this.progress.outcome('rolled-back');
    return this.result('rolled-back', reason);
  }

  /** A failure: everything is undone, and the failure names what the undos left behind. */
  async fail(message: string): Promise<never> {
    await this.compensate();
    const undone = this.status.compensations;
    const failedUndos = undone.filter((c) => c.state === 'failed');
    this.progress.phase('failed', message);
    this.progress.outcome('failed', message);
    const failedList = failedUndos.map((c) => `${c.step} (${c.error})`).join(', ');
    const compensationSummary = undone.length
      ? ` | compensation: ${undone.length - failedUndos.length}/${undone.length} undo step(s) completed${failedUndos.length ? `; FAILED: ${failedList}` : ''}`
      : '';
    throw ApplicationFailure.nonRetryable(
      `${message}${compensationSummary} | ${this.describeSides()}`,
      'MigrationFailed',
      this.result('failed', message),
    );
  }
}
