/**
 * Route 53 traffic-shift activities over records.ts, changes.ts and health-gate.ts: the workflow
 * runs the steps (weights, bake as a durable timer, health gate) so a shift survives worker
 * restarts and shows in the history.
 */
import { Route53Client } from '@aws-sdk/client-route-53';
import { Context } from '@temporalio/activity';
import { redactingActivities } from '../secrets';
import { lowerTtl, restoreTtl, setWeights } from './changes';
import { healthGate, type HealthGateResult, type HealthGateSpec } from './health-gate';
import { readWeightedRecords, weightsOf, type Route53Clients, type WeightedRecordSpec } from './records';

export interface TrafficDeps {
  route53?: () => Route53Client;
  fetch?: typeof fetch;
  /** Poll interval of INSYNC waits (AWS: seconds; moto: a few ms). */
  route53PollMs?: number;
}

export function createTrafficActivities(deps: TrafficDeps) {
  let client: Route53Client | undefined;
  const clients = (): Route53Clients => ({
    route53: deps.route53 ? deps.route53() : (client ??= new Route53Client({})),
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
  });
  const wait = () => {
    const ctx = Context.current();
    return { intervalMs: deps.route53PollMs ?? 5_000, onProgress: (p: unknown) => ctx.heartbeat(p), signal: ctx.cancellationSignal };
  };
  return redactingActivities({
    async readDnsRecords(args: { dns: WeightedRecordSpec }): Promise<{ weights: Record<string, number>; ttl: Record<string, number> }> {
      const records = await readWeightedRecords(clients(), args.dns);
      const ttl: Record<string, number> = {};
      for (const r of records) if (r.ttl !== undefined) ttl[r.setIdentifier] = r.ttl;
      return { weights: weightsOf(records), ttl };
    },
    async lowerDnsTtl(args: {
      dns: WeightedRecordSpec;
      ttlSeconds: number;
    }): Promise<{ oldAnswersExpireAfterMs: number; changed: string[] }> {
      const done = await lowerTtl(clients(), args.dns, args.ttlSeconds, wait());
      return { oldAnswersExpireAfterMs: done.oldAnswersExpireAfterMs, changed: done.changed };
    },
    async restoreDnsTtl(args: { dns: WeightedRecordSpec; previousTtl: Record<string, number> }): Promise<{ restored: string[] }> {
      const done = await restoreTtl(clients(), args.dns, args.previousTtl, wait());
      return { restored: done.restored };
    },
    async setDnsWeights(args: {
      dns: WeightedRecordSpec;
      weights: Record<string, number>;
    }): Promise<{ weights: Record<string, number>; changed: boolean }> {
      const done = await setWeights(clients(), args.dns, args.weights, wait());
      return { weights: done.weights, changed: done.changed };
    },
    async trafficHealthGate(args: { gate: HealthGateSpec }): Promise<HealthGateResult> {
      const ctx = Context.current();
      // A heartbeat per sample: a gate longer than the heartbeat timeout is not mistaken for a dead worker, and cancellation arrives.
      return healthGate(clients(), args.gate, { signal: ctx.cancellationSignal, onSample: (round) => ctx.heartbeat({ round }) });
    },
  });
}

export type TrafficActivities = ReturnType<typeof createTrafficActivities>;
