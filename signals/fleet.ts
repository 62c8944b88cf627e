/**
 * What clients send and ask a running `migrateFleet`: Updates `pause`, `resume`, `cancel` (payload
 * `{ by, reason? }`) and `approveWave` (`{ approver, wave, reason? }`), checked by contract/fleet.ts in
 * the workflow's validators and in the CLI; the query `fleetStatus`.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { FleetControlPayload, WaveApprovalPayload } from '../contract/fleet';
import type { FleetEvent, FleetItem, FleetItemState } from '../contract/fleet-state';

export type FleetPhase =
  'discovering' | 'awaiting-approval' | 'running' | 'paused' | 'draining' | 'halted' | 'cancelling' | 'reporting' | 'done';
export type FleetOutcome = 'completed' | 'halted' | 'cancelled';

export interface FleetReportFiles {
  json: string;
  markdown: string;
  chart: string;
}

export interface FleetStatus {
  fleetId: string;
  phase: FleetPhase;
  startedAt: string;
  /** The wave running now (or the last one, once done). */
  wave: { index: number; name: string; of: number };
  waves: { name: string; size: number; state: 'waiting' | 'running' | 'passed' | 'failed' | 'not-started' }[];
  counts: Record<FleetItemState, number>;
  failureBudget: { allowed: number; used: number; exceeded: boolean };
  concurrency: number;
  paused?: { by: string; reason?: string; at: string };
  cancelled?: { by: string; reason?: string; at: string };
  halted?: string;
  approvals: { wave: string; approver: string; reason?: string; at: string }[];
  /** Continue-as-new: which run of the fleet this is (0 for the first). */
  run: number;
  events: FleetEvent[];
  items: FleetItem[];
  outcome?: FleetOutcome;
  report?: FleetReportFiles;
  reportError?: string;
}

export interface FleetResult {
  fleetId: string;
  outcome: FleetOutcome;
  reason?: string;
  counts: Record<FleetItemState, number>;
  items: FleetItem[];
  startedAt: string;
  endedAt: string;
  report?: FleetReportFiles;
  reportError?: string;
}

export const fleetStatusQuery = defineQuery<FleetStatus>('fleetStatus');
export const pauseFleetUpdate = defineUpdate<FleetStatus['paused'], [FleetControlPayload]>('pause');
export const resumeFleetUpdate = defineUpdate<{ resumedAt: string }, [FleetControlPayload]>('resume');
export const cancelFleetUpdate = defineUpdate<FleetStatus['cancelled'], [FleetControlPayload]>('cancel');
export const approveWaveUpdate = defineUpdate<{ wave: string; approver: string; at: string }, [WaveApprovalPayload]>('approveWave');
