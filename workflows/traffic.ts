/**
 * Route 53 weighted shift, the way Flagger / Argo Rollouts run a canary: TTL lowered ahead of the
 * window (and its old answers waited out), then after go-live the weights move old -> new in steps,
 * each waited INSYNC, baked (a durable timer) and judged by a health gate; a failed gate (or a no-go
 * before the last step) shifts back to the weights read before anything changed.
 */
import { sleep } from '@temporalio/workflow';
import { activities } from './activity-options';
import { durationMs, type MigrationInput } from '../contract/input';
import type { TrafficStatus } from '../signals';
import type { Gates } from './gates';
import type { Progress } from './progress';
import type { Compensations } from './saga';

const acts = activities.traffic;

type TrafficInput = NonNullable<MigrationInput['traffic']>;

export class TrafficShift {
  private original?: { weights: Record<string, number>; ttl: Record<string, number> };

  constructor(
    private readonly traffic: TrafficInput,
    private readonly progress: Progress,
    private readonly status: { traffic?: TrafficStatus },
  ) {}

  private get dns() {
    return { hostedZoneId: this.traffic.hostedZoneId, recordName: this.traffic.recordName, type: this.traffic.type };
  }

  /** Ahead of the window: remember weights and TTLs, lower the TTL, wait until resolvers dropped old answers. */
  async prepare(saga: Compensations): Promise<void> {
    const dns = this.dns;
    const original = await this.progress.step('read-dns', 'preflight', () => acts.readDnsRecords({ dns }));
    this.original = original;
    this.status.traffic = { state: 'prepared', weights: original.weights, steps: [] };
    saga.register('restore-dns-ttl', () => acts.restoreDnsTtl({ dns, previousTtl: original.ttl }));
    const lowered = await this.progress.step('lower-dns-ttl', 'preflight', () =>
      acts.lowerDnsTtl({ dns, ttlSeconds: this.traffic.ttlSeconds }),
    );
    if (lowered.oldAnswersExpireAfterMs > 0) await sleep(lowered.oldAnswersExpireAfterMs);
  }

  /** After go-live. Never throws for a failed gate: it shifts back and reports. */
  async shift(gates: Gates): Promise<void> {
    const dns = this.dns;
    const t = this.traffic;
    const original = this.original!;
    const state = this.status.traffic!;
    const shiftBack = async (reason: string) => {
      await this.progress.step('shift-back', 'shifting-traffic', () => acts.setDnsWeights({ dns, weights: original.weights }));
      state.state = 'shifted-back';
      state.reason = reason;
      state.weights = original.weights;
    };
    state.state = 'shifting';
    for (const [i, percent] of t.steps.entries()) {
      if (i === t.steps.length - 1 && t.approveBeforeLast) {
        this.progress.phase('awaiting-traffic', `${percent}% next`);
        const decision = await gates.wait('traffic');
        if (!decision.approved) {
          await shiftBack(`no-go before the last step (${decision.via === 'timeout' ? 'timeout' : decision.approver})`);
          break;
        }
      }
      const weights = { [t.oldSetIdentifier]: 100 - percent, [t.newSetIdentifier]: percent };
      await this.progress.step(`traffic-${percent}`, 'shifting-traffic', () => acts.setDnsWeights({ dns, weights }));
      state.weights = weights;
      await sleep(durationMs(t.bake));
      const gate = await this.progress.step(`health-gate-${percent}`, 'shifting-traffic', () =>
        acts.trafficHealthGate({
          gate: {
            probes: t.gate.probes,
            healthCheckIds: t.gate.healthCheckIds,
            samples: t.gate.samples,
            intervalMs: durationMs(t.gate.interval),
            maxErrorRate: t.gate.maxErrorRate,
          },
        }),
      );
      state.steps.push({ percent, ok: gate.ok, errorRate: gate.errorRate, ...(gate.reason ? { reason: gate.reason } : {}) });
      if (!gate.ok) {
        await shiftBack(`health gate failed at ${percent}%: ${gate.reason ?? 'unhealthy'}`);
        break;
      }
    }
    if (state.state === 'shifting') state.state = 'completed';
    await this.progress.step('restore-dns-ttl', 'shifting-traffic', () => acts.restoreDnsTtl({ dns, previousTtl: original.ttl }));
  }
}
