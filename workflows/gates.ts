/**
 * Human decision gates. Decisions arrive as Updates (validated, with an answer) or Signals (same
 * rules; a refused signal is recorded in status, since signals cannot answer). An approval may come
 * before its gate opens: it is kept and applies the moment the workflow reaches the gate, which it
 * only does after the gate's automatic checks passed. A gate that times out decides no-go.
 */
import { condition, upsertMemo, upsertSearchAttributes } from '@temporalio/workflow';
import type { GateName } from '../contract/input';
import { GATES } from '../contract/input';
import { checkDecision, clip, MAX_PROBLEM_CHARS, MAX_REFUSED_DECISIONS, recordedPayload } from '../contract/messages';
import type { ApprovalPayload, GateDecision, MigrationStatus } from '../signals';
import { AwaitingApprovalKey, AwaitingGateKey, GateApproversKey } from '../signals/search-attributes';

export interface GateSettings {
  timeoutMs: number;
  approvers?: string[];
}

export class Gates {
  private readonly decided = new Map<GateName, GateDecision>();
  private readonly passed = new Set<GateName>();
  /** Set by runs that keep the UI's details (patch ui-metadata): told of every change, and GateApprovers is kept. */
  private changed?: () => void;

  constructor(
    private settings: Partial<Record<GateName, GateSettings>>,
    private readonly status: MigrationStatus,
  ) {}

  tellChanges(changed: () => void): void {
    this.changed = changed;
  }

  /**
   * Why a decision must be refused, or undefined when it is acceptable. Pure: used as the Update validator.
   * Shape and size come first (contract/messages.ts: approver, gate, reason bounded). `unbounded`: the
   * rules from before payloads were bounded, for Signals in histories recorded then (replay only).
   */
  refusal(raw: ApprovalPayload, opts: { unbounded?: boolean } = {}): string | undefined {
    let payload = raw;
    if (!opts.unbounded) {
      const shape = checkDecision(raw);
      if (!shape.ok) return shape.problem;
      payload = shape.payload;
    }
    if (!payload || typeof payload.approver !== 'string' || !payload.approver.trim()) return 'approver is required';
    const gate = this.resolveGate(payload);
    if (!gate) {
      return payload.gate === undefined
        ? `no gate is open; name the gate to decide ahead of time (one of: ${this.gateNames().join(', ')})`
        : `unknown gate "${payload.gate}"; this migration has: ${this.gateNames().join(', ')}`;
    }
    const previous = this.decided.get(gate);
    if (this.passed.has(gate))
      return `gate ${gate} is already closed (${previous ? `${previous.approved ? 'approved' : 'rejected'} by ${previous.approver}` : 'passed'})`;
    if (previous)
      return `gate ${gate} was already ${previous.approved ? 'approved' : 'rejected'} by ${previous.approver} at ${previous.decidedAt}`;
    const allowed = this.settings[gate]?.approvers;
    if (allowed && !allowed.includes(payload.approver))
      return `approver "${payload.approver}" is not allowed at gate ${gate} (allowed: ${allowed.join(', ')})`;
    return undefined;
  }

  decide(payload: ApprovalPayload, approved: boolean, via: 'update' | 'signal'): GateDecision {
    const gate = this.resolveGate(payload)!;
    const decision: GateDecision = {
      gate,
      approved,
      approver: payload.approver,
      ...(payload.reason ? { reason: payload.reason } : {}),
      decidedAt: new Date(Date.now()).toISOString(),
      via,
    };
    this.decided.set(gate, decision);
    if (this.status.pendingGate?.gate === gate) this.status.decisions.push(decision);
    else this.status.preApprovals.push(decision);
    upsertMemo({ decisions: [...this.decided.values()] });
    this.changed?.();
    return decision;
  }

  /**
   * Records a refused signal (updates get the refusal as their answer instead): clipped text, and only
   * the last MAX_REFUSED_DECISIONS, so no client can grow status without bound.
   */
  refuse(payload: unknown, reason: string): void {
    const refused = this.status.refusedDecisions;
    refused.push({ payload: recordedPayload(payload), reason: clip(reason, MAX_PROBLEM_CHARS), at: new Date(Date.now()).toISOString() });
    if (refused.length > MAX_REFUSED_DECISIONS) {
      const dropped = refused.splice(0, refused.length - MAX_REFUSED_DECISIONS).length;
      this.status.refusedDecisionsDropped = (this.status.refusedDecisionsDropped ?? 0) + dropped;
    }
  }

  /**
   * Opens the gate and waits for a decision or the timeout (no-go). `unless`: what the decision would be
   * about has failed meanwhile (a replication beside the workflow died): the wait ends by throwing it.
   */
  async wait(gate: GateName, opts: { unless?: () => Error | undefined } = {}): Promise<GateDecision> {
    const settings = this.settings[gate]!;
    const openedAt = Date.now();
    this.status.pendingGate = {
      gate,
      openedAt: new Date(openedAt).toISOString(),
      deadline: new Date(openedAt + settings.timeoutMs).toISOString(),
      ...(settings.approvers ? { approvers: settings.approvers } : {}),
    };
    const early = this.decided.get(gate);
    if (early) {
      this.status.preApprovals = this.status.preApprovals.filter((d) => d !== early);
      this.status.decisions.push(early);
    } else {
      upsertSearchAttributes([
        { key: AwaitingApprovalKey, value: true },
        { key: AwaitingGateKey, value: gate },
        ...(this.changed && settings.approvers ? [{ key: GateApproversKey, value: settings.approvers }] : []),
      ]);
      this.changed?.();
      const until = () => this.decided.has(gate) || opts.unless?.() !== undefined;
      const deadline = `${gate} gate: no decision by ${new Date(openedAt + settings.timeoutMs).toISOString().slice(11, 19)} UTC means no-go`;
      const inTime = await (this.changed
        ? condition(until, settings.timeoutMs, { summary: deadline })
        : condition(until, settings.timeoutMs));
      const failed = this.decided.has(gate) ? undefined : opts.unless?.();
      if (failed) {
        this.closeSearchAttributes(settings);
        this.status.pendingGate = undefined;
        this.changed?.();
        throw failed;
      }
      if (!inTime) {
        const timeout: GateDecision = {
          gate,
          approved: false,
          approver: 'timeout',
          reason: `no decision within ${Math.round(settings.timeoutMs / 1000)} s`,
          decidedAt: new Date(Date.now()).toISOString(),
          via: 'timeout',
        };
        this.decided.set(gate, timeout);
        this.status.decisions.push(timeout);
        upsertMemo({ decisions: [...this.decided.values()] });
      }
      this.closeSearchAttributes(settings);
    }
    this.passed.add(gate);
    this.status.pendingGate = undefined;
    this.changed?.();
    return this.decided.get(gate)!;
  }

  private closeSearchAttributes(settings: GateSettings): void {
    upsertSearchAttributes([
      { key: AwaitingApprovalKey, value: false },
      { key: AwaitingGateKey, value: null },
      ...(this.changed && settings.approvers ? [{ key: GateApproversKey, value: null }] : []),
    ]);
  }

  /** Opens a decided gate again (the decommission gate after a no-go: hold, then ask again). */
  reopen(gate: GateName): void {
    this.decided.delete(gate);
    this.passed.delete(gate);
  }

  /** Removes a gate this migration does not have (the cutover gate of a dump-restore). */
  drop(gate: GateName): void {
    delete this.settings[gate];
  }

  /** Gates still ahead or open; decisions for any other name are refused. */
  private gateNames(): GateName[] {
    return GATES.filter((g) => this.settings[g] !== undefined);
  }

  private resolveGate(payload: ApprovalPayload): GateName | undefined {
    if (payload.gate === undefined) return this.status.pendingGate?.gate;
    return this.gateNames().find((g) => g === payload.gate);
  }
}
