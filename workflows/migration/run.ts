/**
 * The state of one migration, in one object: its input, plan, gates, undo stack, status and the
 * activities running beside it. Every phase module reads and updates it; nothing else is shared.
 */
import { ApplicationFailure, CancellationScope, workflowInfo } from '@temporalio/workflow';
import type { CdcArgs } from '../../activities';
import { durationMs, type GateName, type MigrationInput } from '../../contract/input';
import { METHOD_TRAITS, type MethodTraits } from '../../contract/methods';
import type { MigrationPlan } from '../../contract/plan';
import type { ApprovalPayload, GateDecision, MigrationResult, MigrationStatus } from '../../signals';
import { AppControl } from '../app-control';
import { Gates } from '../gates';
import { Progress } from '../progress';
import { Compensations } from '../saga';

/** Workflow ids may hold characters that do not belong in file names or application_name. */
function migrationIdFrom(input: MigrationInput): string {
  if (input.migrationId) return input.migrationId;
  return (
    workflowInfo()
      .workflowId.toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+/, '')
      .slice(0, 40) || 'migration'
  );
}

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
  rowsCopied = 0;
  verification: MigrationResult['verification'] = 'not-run';
  /** Set before the target is unfrozen: from then on its data may hold the application's writes. */
  goLiveAttempted = false;
  /** A rollback after go-live is possible only while the hold lasts and reverse replication runs. */
  holding = false;
  rollbackRequest?: RollbackRequest;
  /** Activities running beside the workflow (verification, pgcopydb): a rollback stops them first. */
  private readonly background: { scope: CancellationScope; settled: Promise<unknown> }[] = [];

  constructor(readonly input: MigrationInput) {
    this.migrationId = migrationIdFrom(input);
    this.progress = new Progress(this.migrationId);
    this.status = this.progress.status;
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
  }

  get method(): MethodTraits {
    return METHOD_TRAITS[this.plan.method];
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
      freezeWindow: this.status.freezeWindow,
      steps: this.status.steps,
      compensations: this.status.compensations,
      decisions: this.status.decisions,
    };
  }

  /** Runs `work` beside the workflow, in a scope a rollback cancels and waits for (so no undo races it). */
  runInBackground<T>(work: () => Promise<T>): Promise<T> {
    const scope = new CancellationScope();
    const promise = scope.run(work);
    this.background.push({ scope, settled: promise.catch(() => undefined) });
    return promise;
  }

  /** Stops what runs beside the workflow, then runs every registered undo in reverse order. */
  async compensate(): Promise<void> {
    for (const b of this.background) b.scope.cancel();
    await CancellationScope.nonCancellable(() => Promise.all(this.background.map((b) => b.settled)));
    if (!this.saga.size) return;
    this.progress.phase('compensating', `undoing ${this.saga.size} step(s)`);
    await this.saga.runAll((record) => this.status.compensations.push(record));
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
    throw ApplicationFailure.nonRetryable(`${message}${compensationSummary}`, 'MigrationFailed', this.result('failed', message));
  }
}
