/**
 * Compensation (saga) stack. A forward step registers its undo *before* it runs, so a step that
 * fails half-way is undone too; undos are idempotent activities. They run inside a non-cancellable
 * scope, so cancelling the workflow cannot interrupt a rollback, and one failed undo does not stop
 * the others: each outcome is reported.
 *
 * Production first: the undos that give the application its source back (config, restart, source
 * writable, maintenance off, workers up) run before the cleanup of the target and of replication,
 * each group in reverse order of registration. A dead target then costs retries of its own cleanup,
 * never minutes of a frozen production database.
 */
import { CancellationScope } from '@temporalio/workflow';
import type { CompensationRecord } from '../signals';
import { failureMessage } from './progress';

/** `application`: what the application needs back; `cleanup`: what the migration made elsewhere. */
export type UndoKind = 'application' | 'cleanup';

export class Compensations {
  private readonly undos: { step: string; undo: () => Promise<unknown>; kind: UndoKind }[] = [];

  /** `undo` may resolve to a string: it is kept as the record's detail. */
  register(step: string, undo: () => Promise<unknown>, kind: UndoKind = 'cleanup'): void {
    this.undos.push({ step, undo, kind });
  }

  get size(): number {
    return this.undos.length;
  }

  /** Drops every registered undo: used after the point of no return, once the world is the new one. */
  forget(): void {
    this.undos.length = 0;
  }

  /** Runs every undo; `productionFirst: false` keeps the plain reverse order of workflows started before it existed. */
  async runAll(onRecord: (record: CompensationRecord) => void, productionFirst = true): Promise<CompensationRecord[]> {
    const reversed = this.undos.splice(0).reverse();
    const order = productionFirst
      ? [...reversed.filter((u) => u.kind === 'application'), ...reversed.filter((u) => u.kind === 'cleanup')]
      : reversed;
    const records: CompensationRecord[] = [];
    await CancellationScope.nonCancellable(async () => {
      for (const { step, undo } of order) {
        const started = Date.now();
        let record: CompensationRecord;
        try {
          const detail = await undo();
          record = { step, state: 'completed', durationMs: Date.now() - started, ...(typeof detail === 'string' ? { detail } : {}) };
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
