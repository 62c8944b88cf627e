/**
 * What clients may send a running migration: the `status` query, `approve` / `reject` (as Updates,
 * validated and answered, and as Signals, refusals recorded in status) and `rollback` during the hold.
 */
import { patched, setHandler } from '@temporalio/workflow';
import { checkDecision, checkRollback } from '../../contract/messages';
import { checkProgress } from '../../contract/progress';
import {
  approveSignal,
  approveUpdate,
  rejectSignal,
  rejectUpdate,
  rollbackUpdate,
  statusQuery,
  windowEdgeSignal,
  progressSignal,
  type ApprovalPayload,
} from '../../signals';
import type { MigrationRun } from './run';

/** patched(): signals refused for their shape or size (histories from before are replayed as they were decided). */
const BOUNDED_DECISION_SIGNALS = 'bounded-decision-signals';

export function installHandlers(run: MigrationRun): void {
  const { gates, status, input } = run;
  setHandler(statusQuery, () => status);
  // From the migration's own activities; anything malformed is ignored rather than trusted.
  setHandler(windowEdgeSignal, (edge) => {
    const valid =
      (edge?.side === 'source' || edge?.side === 'target') &&
      (edge.edge === 'frozen' || edge.edge === 'unfrozen') &&
      Number.isFinite(edge.at);
    if (valid) run.windowEdge({ side: edge.side, edge: edge.edge, at: edge.at });
  });
  // Progress of the long step running now, from its activity: kept only as checked (bounded, no strange
  // fields); it changes the status alone, no command, so no patch is needed for histories without it.
  setHandler(progressSignal, (raw: unknown) => {
    const p = checkProgress(raw);
    if (p) run.progress.reportProgress(p);
  });
  // Decisions are taken as checked (contract/messages.ts: bounded, null fields dropped). An Update accepted
  // before payloads were bounded replays without its validator and is taken as it came.
  const asChecked = (payload: ApprovalPayload): ApprovalPayload => {
    const shape = checkDecision(payload);
    return shape.ok ? shape.payload : payload;
  };
  const decideBy = (approved: boolean) => (payload: ApprovalPayload) => gates.decide(asChecked(payload), approved, 'update');
  // Refused here, a payload never reaches history: the answer names the field and never repeats a long value.
  const validator = (payload: ApprovalPayload) => {
    const why = gates.refusal(payload);
    if (why) throw new Error(why);
  };
  setHandler(approveUpdate, decideBy(true), { validator });
  setHandler(rejectUpdate, decideBy(false), { validator });
  const signalBy = (approved: boolean) => (payload: ApprovalPayload) => {
    const why = gates.refusal(payload);
    if (!why) gates.decide(asChecked(payload), approved, 'signal');
    // Before payloads were bounded, a signal the gate rules allowed was decided whatever its size: a
    // history recorded then replays so (the decision's memo upsert is one of its commands).
    else if (!gates.refusal(payload, { unbounded: true }) && !patched(BOUNDED_DECISION_SIGNALS)) gates.decide(payload, approved, 'signal');
    else gates.refuse(payload, why);
  };
  setHandler(approveSignal, signalBy(true));
  setHandler(rejectSignal, signalBy(false));

  setHandler(
    rollbackUpdate,
    (payload) => {
      const shape = checkRollback(payload);
      run.rollbackRequest = { ...(shape.ok ? shape.payload : payload), requestedAt: new Date(Date.now()).toISOString() };
      return { accepted: true, requestedAt: run.rollbackRequest.requestedAt };
    },
    {
      validator: (raw) => {
        const shape = checkRollback(raw);
        if (!shape.ok) throw new Error(shape.problem);
        const payload = shape.payload;
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
