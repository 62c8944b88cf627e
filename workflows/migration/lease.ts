/**
 * One migration per database at a time: the leases on the source and the target database
 * (`activities/database/lease.ts`), taken right after preflight passed and before anything changes,
 * given back when the migration ends in any way (completed, rolled back, failed, cancelled), after
 * its compensation ran; after go-live they are kept through the hold until the very end.
 *
 * Migrations started before leases existed replay without them (`patched('database-lease')`).
 */
import { CancellationScope, log, patched } from '@temporalio/workflow';
import type { LeaseArgs } from '../../activities';
import { activities } from '../activity-options';
import { failureMessage } from '../progress';
import type { MigrationRun } from './run';

export class DatabaseLeases {
  /** Set once an acquire was attempted: from then on the end of the migration gives back what it holds. */
  private attempted = false;

  constructor(private readonly run: MigrationRun) {}

  private get args(): LeaseArgs {
    return { migrationId: this.run.migrationId, source: this.run.source, target: this.run.target };
  }

  /** Leases both databases; another running migration of either stops this one here, naming it (non-retryable). */
  async acquire(): Promise<void> {
    if (!patched('database-lease')) return;
    this.attempted = true;
    // Not a step of its own in `status`: a refusal fails the migration with the holder's name, and nothing else shows.
    await activities.regular.acquireLease(this.args);
  }

  /** Gives back what this migration holds (never another's). A failure is logged: the lease of an ended workflow is stale anyway. */
  async release(): Promise<void> {
    if (!this.attempted) return;
    try {
      await CancellationScope.nonCancellable(() => activities.regular.releaseLease(this.args));
    } catch (err) {
      log.warn('database leases not released; they are stale now that the migration ends, and the next migration takes them over', {
        error: failureMessage(err),
      });
    }
  }
}
