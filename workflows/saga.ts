/**
 * Compensation (saga) stack. A forward step registers its undo *before* it runs, so a step that
 * fails half-way is undone too; undos are idempotent activities. They run in reverse order inside a
 * non-cancellable scope, so cancelling the workflow cannot interrupt a rollback, and one failed undo
 * does not stop the others: each outcome is reported.
 */
import { CancellationScope } from '@temporalio/workflow';
import type { CompensationRecord } from '../signals';
import { failureMessage } from './progress';

export class Compensations {
  private readonly undos: { step: string; undo: () => Promise<unknown> }[] = [];

  register(step: string, undo: () => Promise<unknown>): void {
    this.undos.push({ step, undo });
  }

  get size(): number {
    return this.undos.length;
  }

  /** Drops every registered undo: used after the point of no return, once the world is the new one. */
  forget(): void {
    this.undos.length = 0;
  }

  async runAll(onRecord: (record: CompensationRecord) => void): Promise<CompensationRecord[]> {
    const records: CompensationRecord[] = [];
    await CancellationScope.nonCancellable(async () => {
      while (this.undos.length) {
        const { step, undo } = this.undos.pop()!;
        const started = Date.now();
        let record: CompensationRecord;
        try {
          await undo();
          record = { step, state: 'completed', durationMs: Date.now() - started };
        } catch (err) {
          record = { step, state: 'failed', durationMs: Date.now() - started, error: failureMessage(err) };
        }
        records.push(record);
        onRecord(record);
      }
    });
    return records;
  }
}
