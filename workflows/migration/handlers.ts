/**
 * What clients may send a running migration: the `status` query, `approve` / `reject` (as Updates,
 * validated and answered, and as Signals, refusals recorded in status) and `rollback` during the hold.
 */
import { setHandler } from '@temporalio/workflow';
import { approveSignal, approveUpdate, rejectSignal, rejectUpdate, rollbackUpdate, statusQuery, type ApprovalPayload } from '../../signals';
import type { MigrationRun } from './run';

export function installHandlers(run: MigrationRun): void {
  const { gates, status, input } = run;
  setHandler(statusQuery, () => status);
  const decideBy = (approved: boolean) => (payload: ApprovalPayload) => gates.decide(payload, approved, 'update');
  const validator = (payload: ApprovalPayload) => {
    const why = gates.refusal(payload);
    if (why) throw new Error(why);
  };
  setHandler(approveUpdate, decideBy(true), { validator });
  setHandler(rejectUpdate, decideBy(false), { validator });
  const signalBy = (approved: boolean) => (payload: ApprovalPayload) => {
    const why = gates.refusal(payload);
    if (why) gates.refuse(payload, why);
    else gates.decide(payload, approved, 'signal');
  };
  setHandler(approveSignal, signalBy(true));
  setHandler(rejectSignal, signalBy(false));

  setHandler(
    rollbackUpdate,
    (payload) => {
      run.rollbackRequest = { ...payload, requestedAt: new Date(Date.now()).toISOString() };
      return { accepted: true, requestedAt: run.rollbackRequest.requestedAt };
    },
    {
      validator: (payload) => {
        if (!payload || typeof payload.approver !== 'string' || !payload.approver.trim()) throw new Error('approver is required');
        if (!input.hold?.reverseReplication) {
          throw new Error('this migration has no reverse replication: a rollback would lose the writes made on the target since go-live');
        }
        if (!run.holding) throw new Error(`a rollback is possible during the hold, after go-live; the migration is ${status.phase}`);
        if (run.rollbackRequest) {
          throw new Error(`a rollback was already requested by ${run.rollbackRequest.approver} at ${run.rollbackRequest.requestedAt}`);
        }
        const allowed = input.gates['go-live'].approvers;
        if (allowed && !allowed.includes(payload.approver)) {
          throw new Error(`approver "${payload.approver}" may not roll back (allowed: ${allowed.join(', ')})`);
        }
      },
    },
  );
}
