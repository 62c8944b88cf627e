/** The `status` query's state, and the search attributes / UI details that mirror it. */
import { setCurrentDetails, upsertSearchAttributes } from '@temporalio/workflow';
import type { MigrationPhase, MigrationStatus, StepRecord } from '../signals';
import { MigrationMethodKey, MigrationOutcomeKey, MigrationPhaseKey } from '../signals/search-attributes';
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
    setCurrentDetails(`**${phase}**${details ? `: ${details}` : ''}`);
  }

  method(method: MigrationMethod): void {
    this.status.method = method;
    upsertSearchAttributes([{ key: MigrationMethodKey, value: method }]);
  }

  outcome(outcome: MigrationOutcome, error?: string): void {
    this.status.outcome = outcome;
    if (error) this.status.error = error;
    upsertSearchAttributes([{ key: MigrationOutcomeKey, value: outcome }]);
  }

  /** Runs one forward step, recording its timing (workflow clock), outcome and, with `describe`, what it did. */
  async step<T>(name: string, phase: MigrationPhase, run: () => Promise<T>, describe?: (result: T) => string): Promise<T> {
    this.phase(phase);
    const started = Date.now();
    const record: StepRecord = { name, state: 'running', startedAt: new Date(started).toISOString() };
    this.status.steps.push(record);
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
    }
  }
}
