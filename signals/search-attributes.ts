/** Custom search attributes the workflow upserts, so the Web UI / CLI can list migrations by phase or gate. */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const MigrationPhaseKey = defineSearchAttributeKey('MigrationPhase', SearchAttributeType.KEYWORD);
export const MigrationMethodKey = defineSearchAttributeKey('MigrationMethod', SearchAttributeType.KEYWORD);
export const AwaitingApprovalKey = defineSearchAttributeKey('AwaitingApproval', SearchAttributeType.BOOL);
export const AwaitingGateKey = defineSearchAttributeKey('AwaitingGate', SearchAttributeType.KEYWORD);
export const MigrationOutcomeKey = defineSearchAttributeKey('MigrationOutcome', SearchAttributeType.KEYWORD);
export const WritesFrozenKey = defineSearchAttributeKey('WritesFrozen', SearchAttributeType.BOOL);
export const GateApproversKey = defineSearchAttributeKey('GateApprovers', SearchAttributeType.KEYWORD_LIST);
export const FleetIdKey = defineSearchAttributeKey('FleetId', SearchAttributeType.KEYWORD);
