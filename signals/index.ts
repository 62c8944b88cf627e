/**
 * Update, signal and query definitions shared by the workflow and its clients (CLI, tests, UI users).
 * Names are part of the public contract: `approve`, `reject` (as Updates and as Signals) and `status`.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { GateName, MigrationMethod } from '../contract/input';
import type { MigrationPlan } from '../contract/plan';
import type { CopyProgress, ReplicationErrors } from '../activities/methods/method';
import type { StepProgress } from '../contract/progress';

/**
 * The payload of `approve` / `reject`; checked by `checkDecision` (contract/messages.ts): approver
 * non-empty, at most 200 characters, no control characters; gate one of the gate names; reason at most
 * 2000 characters.
 */
export interface ApprovalPayload {
  approver: string;
  /** Which gate the decision is for; defaults to the gate that is open now. */
  gate?: string;
  reason?: string;
}
/** The payload of `rollback` (`checkRollback`): who asks, and why. */
export type RollbackPayload = Omit<ApprovalPayload, 'gate'>;

export interface GateDecision {
  gate: GateName;
  approved: boolean;
  approver: string;
  reason?: string;
  /** ISO time the decision was recorded (workflow clock). */
  decidedAt: string;
  /** 'update' | 'signal' | 'timeout': how the decision arrived. */
  via: 'update' | 'signal' | 'timeout';
}

export const approveUpdate = defineUpdate<GateDecision, [ApprovalPayload]>('approve');
export const rejectUpdate = defineUpdate<GateDecision, [ApprovalPayload]>('reject');
/** During the hold (reverse replication on): switch the application back to the source, losing nothing. */
export const rollbackUpdate = defineUpdate<{ accepted: true; requestedAt: string }, [RollbackPayload]>('rollback');
export const approveSignal = defineSignal<[ApprovalPayload]>('approve');
export const rejectSignal = defineSignal<[ApprovalPayload]>('reject');

export type MigrationPhase =
  | 'preflight'
  | 'preparing-source'
  | 'catching-up'
  | 'awaiting-cutover'
  | 'draining'
  | 'stopping-replication'
  | 'freezing-source'
  | 'copying'
  | 'reconciling-sequences'
  | 'verifying'
  | 'freezing-target'
  | 'swapping-config'
  | 'smoke-testing'
  | 'awaiting-go-live'
  | 'going-live'
  | 'preparing-rollback'
  | 'awaiting-traffic'
  | 'shifting-traffic'
  | 'holding'
  | 'awaiting-decommission'
  | 'decommissioning'
  | 'rolling-back'
  | 'completed'
  | 'compensating'
  | 'rolled-back'
  | 'failed';

export interface StepRecord {
  name: string;
  state: 'running' | 'completed' | 'failed';
  startedAt: string;
  endedAt?: string;
  durationMs?: number;
  error?: string;
  /** What the step did, where worth telling (e.g. which materialized views it refreshed). */
  detail?: string;
}

export interface CompensationRecord {
  step: string;
  state: 'completed' | 'failed';
  durationMs: number;
  error?: string;
  /** What the undo found worth telling (e.g. objects of other roles the target reset kept). */
  detail?: string;
}

export interface PendingGate {
  gate: GateName;
  openedAt: string;
  deadline: string;
  approvers?: string[];
}

export interface FreezeWindow {
  /** Epoch ms when the source stopped accepting writes (sessions drained, probe rejected). */
  frozenAt?: number;
  /** Epoch ms when writes were accepted again (on the target after go-live, or on the source after a rollback). */
  unfrozenAt?: number;
  durationMs?: number;
  /** Part of the window spent waiting for a human at the go-live gate. */
  gateWaitMs?: number;
}

export interface MigrationStatus {
  migrationId: string;
  method?: MigrationMethod;
  phase: MigrationPhase;
  startedAt: string;
  steps: StepRecord[];
  plan?: MigrationPlan;
  pendingGate?: PendingGate;
  /** Approvals given ahead of a gate, applied the moment its automatic checks pass. */
  preApprovals: GateDecision[];
  decisions: GateDecision[];
  /**
   * Approvals and rejections sent as Signals that were refused, with why (signals cannot answer, so they
   * are kept here): the last 20, their text clipped (contract/messages.ts).
   */
  refusedDecisions: { payload: ApprovalPayload; reason: string; at: string }[];
  /** How many older refused decisions were dropped from `refusedDecisions`. */
  refusedDecisionsDropped?: number;
  compensations: CompensationRecord[];
  freezeWindow: FreezeWindow;
  /**
   * The long step running now (copy, initial copy, catch-up, verification, apply): percent, rate and ETA
   * as its activity last reported them (`progressSignal`); cleared when the step ends.
   */
  progress?: StepProgress;
  /** CDC methods: replication progress, refreshed while catching up. */
  replication?: {
    tablesReady?: number;
    tablesTotal?: number;
    lagBytes?: number | null;
    lagSeconds?: number | null;
    /** triggers: captured row changes not yet applied. */
    lagChanges?: number | null;
    /** triggers: the initial copy's progress (percent, rate, time left). */
    copy?: CopyProgress;
    caughtUp?: boolean;
    /** While replication reports errors: their text (or where to look), counters, workers, since when. */
    errors?: ReplicationErrors;
    updatedAt: string;
  };
  /** CDC methods: the full count + checksum comparison on the freeze-point snapshots. */
  verification?: { state: 'running' | 'passed' | 'failed' | 'not-run'; detail?: string };
  /**
   * The catalog compared object by object (indexes, constraints, triggers, functions, views, ...), once
   * compared: empty when nothing differs. dump-restore fails on any; CDC methods report them here
   * before the go-live gate.
   */
  catalogDifferences?: string[];
  /** Where the application points and which side accepts writes, kept up to date by every step and undo. */
  sides: Sides;
  /** Route 53 weighted shift after go-live. */
  traffic?: TrafficStatus;
  /** After go-live with `hold`: until when the source is kept, and the rollback path. */
  hold?: {
    until: string;
    reverseReplication: boolean;
    rollback?: { requestedBy: string; reason?: string; requestedAt: string; windowMs?: number };
  };
  outcome?: MigrationOutcome;
  error?: string;
}

export interface TrafficStatus {
  state: 'prepared' | 'shifting' | 'completed' | 'shifted-back';
  weights: Record<string, number>;
  steps: { percent: number; ok: boolean; errorRate: number; reason?: string }[];
  reason?: string;
}

export interface Sides {
  /** The database the application's config names. */
  application: 'source' | 'target';
  sourceWritable: boolean;
  targetWritable: boolean;
}

export const statusQuery = defineQuery<MigrationStatus>('status');

/**
 * Internal: the verification activity took its snapshots at the freeze point, so the cutover may go on,
 * with what the catalog comparison found on them (absent from signals sent before it existed).
 */
export interface VerificationSnapshotTaken {
  catalogDifferences: string[];
}
export const verificationSnapshotTakenSignal = defineSignal<[VerificationSnapshotTaken?]>('verificationSnapshotTaken');

/**
 * Internal: a freeze or unfreeze took effect at `at` (epoch ms, worker clock). Sent by the activity the
 * moment it happens, so a retry after a worker crash (which reports its own, later time) cannot move
 * the window's recorded edges: the first report of each edge wins.
 */
export interface WindowEdge {
  side: 'source' | 'target';
  edge: 'frozen' | 'unfrozen';
  at: number;
}
export const windowEdgeSignal = defineSignal<[WindowEdge]>('windowEdge');

export type MigrationOutcome = 'completed' | 'rolled-back' | 'failed';

export interface MigrationResult {
  migrationId: string;
  outcome: MigrationOutcome;
  method: MigrationMethod;
  reason?: string;
  rowsCopied: number;
  tables: number;
  verification: 'passed' | 'failed' | 'not-run';
  /** As in the status: what the catalog comparison found, when it ran. */
  catalogDifferences?: string[];
  freezeWindow: FreezeWindow;
  steps: StepRecord[];
  compensations: CompensationRecord[];
  decisions: GateDecision[];
  /** Where the application and the databases were left. */
  sides?: Sides;
}

/**
 * Internal: a long-running activity's progress (contract/progress.ts), sent to its own workflow at most
 * every few seconds so the `status` query and the Temporal UI's details show percent, rate and ETA.
 * Checked by `checkProgress`; anything else is ignored.
 */
export const progressSignal = defineSignal<[StepProgress]>('progress');
