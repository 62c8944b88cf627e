/**
 * How a migration's end shows in Temporal: only a migration that went live closes as Completed. One that
 * was rolled back (no-go, gate timeout, rollback during the hold) or failed closes as Failed (a cancelled
 * one as Canceled), with a typed failure whose details[0] is the full `MigrationResult`, so the workflow list, the
 * CLI and `ExecutionStatus` queries tell them apart from a success at a glance:
 *
 *   MigrationRolledBack: everything was undone as designed; the application is on the source.
 *   MigrationFailed:     something failed; the undos ran, and the message names any that did not finish.
 *
 * The search attribute `MigrationOutcome` carries the same outcome for queries.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { MigrationResult } from './index';

export const ROLLED_BACK_FAILURE_TYPE = 'MigrationRolledBack';
export const FAILED_FAILURE_TYPE = 'MigrationFailed';

/** The failure a rolled-back migration closes with. */
export function rolledBackFailure(result: MigrationResult, sides: string): ApplicationFailure {
  return ApplicationFailure.create({
    type: ROLLED_BACK_FAILURE_TYPE,
    message: `rolled back: ${result.reason ?? 'no reason recorded'} | ${sides}`,
    nonRetryable: true,
    details: [result],
  });
}

/** The MigrationResult a closed migration's failure carries (through a child's or a client's wrapper), if any. */
export function migrationResultIn(err: unknown): MigrationResult | undefined {
  let e = err as { cause?: unknown; details?: unknown[] } | undefined;
  while (e) {
    const first = e.details?.[0] as MigrationResult | undefined;
    if (first && typeof first === 'object' && typeof first.outcome === 'string' && Array.isArray(first.steps)) return first;
    e = e.cause as typeof e;
  }
  return undefined;
}

/**
 * A migration's result however it closed: what it returned when it went live, or the result its
 * rolled-back failure carries. Anything else (a failure, a cancellation) is thrown as it came.
 */
export async function migrationResult(handle: { result(): Promise<unknown> }): Promise<MigrationResult> {
  try {
    return (await handle.result()) as MigrationResult;
  } catch (err) {
    const result = migrationResultIn(err);
    if (result?.outcome === 'rolled-back') return result;
    throw err;
  }
}
