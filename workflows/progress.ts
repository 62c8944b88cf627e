/** The `status` query's state, and the search attributes / UI details that mirror it. */
import { setCurrentDetails, upsertSearchAttributes } from '@temporalio/workflow';
import type { MigrationPhase, MigrationStatus, StepRecord } from '../signals';
import { MigrationMethodKey, MigrationOutcomeKey, MigrationPhaseKey, WritesFrozenKey } from '../signals/search-attributes';
import type { StepProgress } from '../contract/progress';
import { renderDetails, writesFrozen, type DetailsContext } from './migration/details';
import type { MigrationMethod } from '../contract/input';
import type { MigrationOutcome } from '../signals';

/** An ActivityFailure says "Activity task failed"; the reason is in its cause chain. */
export function failureMessage(err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined;
  while (e && e.cause && (e.cause as { message?: string }).message) e = e.cause;
  return e?.message ?? String(err);
}

export class Progress {
  readonly status: MigrationStatus;
  /**
   * Set when the run may keep the Temporal UI's details and the WritesFrozen search attribute up to date
   * (patch `ui-metadata`, asked at the start: runs from before keep the one-line phase details).
   */
  ui?: DetailsContext;
  private frozenSince?: number;
  private note?: string;

  constructor(migrationId: string) {
    this.status = {
      migrationId,
      phase: 'preflight',
      startedAt: new Date(Date.now()).toISOString(),
      steps: [],
      preApprovals: [],
      decisions: [],
      refusedDecisions: [],
      compensations: [],
      freezeWindow: {},
      sides: { application: 'source', sourceWritable: true, targetWritable: true },
    };
  }

  phase(phase: MigrationPhase, details?: string): void {
    this.status.phase = phase;
    upsertSearchAttributes([{ key: MigrationPhaseKey, value: phase }]);
    this.note = details;
    if (!this.ui) setCurrentDetails(`**${phase}**${details ? `: ${details}` : ''}`);
    this.refresh();
  }

  /**
   * Rewrites the UI's details from the status, and flips WritesFrozen when the application's database
   * starts or stops refusing writes. Called on every change of phase, step, gate, progress, window edge
   * and undo; the upsert is a command only when the value changes, so replays see the same commands.
   */
  refresh(): void {
    if (!this.ui) return;
    const frozen = writesFrozen(this.status);
    if (frozen !== (this.frozenSince !== undefined)) {
      this.frozenSince = frozen ? (this.status.freezeWindow.frozenAt ?? Date.now()) : undefined;
      upsertSearchAttributes([{ key: WritesFrozenKey, value: frozen }]);
    } else if (frozen && this.status.freezeWindow.frozenAt !== undefined && this.status.freezeWindow.unfrozenAt === undefined) {
      this.frozenSince = this.status.freezeWindow.frozenAt; // the activity's own report of the edge wins
    }
    setCurrentDetails(renderDetails(this.status, this.ui, this.frozenSince, Date.now(), this.note));
  }

  /** A long step's progress as its activity reported it (checked by the signal handler). */
  reportProgress(progress: StepProgress): void {
    this.status.progress = progress;
    this.refresh();
  }

  method(method: MigrationMethod): void {
    this.status.method = method;
    upsertSearchAttributes([{ key: MigrationMethodKey, value: method }]);
  }

  outcome(outcome: MigrationOutcome, error?: string): void {
    this.status.outcome = outcome;
    if (error) this.status.error = error;
    upsertSearchAttributes([{ key: MigrationOutcomeKey, value: outcome }]);
    this.refresh();
  }

  /** Runs one forward step, recording its timing (workflow clock), outcome and, with `describe`, what it did. */
  async step<T>(name: string, phase: MigrationPhase, run: () => Promise<T>, describe?: (result: T) => string): Promise<T> {
    this.phase(phase);
    const started = Date.now();
    const record: StepRecord = { name, state: 'running', startedAt: new Date(started).toISOString() };
    this.status.steps.push(record);
    this.refresh();
    try {
      const result = await run();
      record.state = 'completed';
      if (describe) record.detail = describe(result);
      return result;
    } catch (err) {
      record.state = 'failed';
      record.error = failureMessage(err);
      throw err;
    } finally {
      record.endedAt = new Date(Date.now()).toISOString();
      record.durationMs = Date.now() - started;
      if (this.status.progress?.step === name) this.status.progress = undefined;
      this.refresh();
    }
  }
}
