/**
 * Route 53 traffic-shift activities over `route53.ts`: the workflow runs the steps (weights, bake as a
 * durable timer, health gate) so a shift survives worker restarts and shows in the history.
 */
import { Route53Client } from '@aws-sdk/client-route-53';
import { Context } from '@temporalio/activity';
import * as route53 from './route53';
import { redactingActivities } from './secrets';

export interface TrafficDeps {
  route53?: () => Route53Client;
  fetch?: typeof fetch;
  /** Poll interval of INSYNC waits (AWS: seconds; moto: a few ms). */
  route53PollMs?: number;
}

export function createTrafficActivities(deps: TrafficDeps) {
  let client: Route53Client | undefined;
  const clients = (): route53.Route53Clients => ({
    route53: deps.route53 ? deps.route53() : (client ??= new Route53Client({})),
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
  });
  const wait = () => {
    const ctx = Context.current();
    return { intervalMs: deps.route53PollMs ?? 5_000, onProgress: (p: unknown) => ctx.heartbeat(p), signal: ctx.cancellationSignal };
  };
  return redactingActivities({
    async readDnsRecords(args: {
      dns: route53.WeightedRecordSpec;
    }): Promise<{ weights: Record<string, number>; ttl: Record<string, number> }> {
      const records = await route53.readWeightedRecords(clients(), args.dns);
      const ttl: Record<string, number> = {};
      for (const r of records) if (r.ttl !== undefined) ttl[r.setIdentifier] = r.ttl;
      return { weights: route53.weightsOf(records), ttl };
    },
    async lowerDnsTtl(args: {
      dns: route53.WeightedRecordSpec;
      ttlSeconds: number;
    }): Promise<{ oldAnswersExpireAfterMs: number; changed: string[] }> {
      const done = await route53.lowerTtl(clients(), args.dns, args.ttlSeconds, wait());
      return { oldAnswersExpireAfterMs: done.oldAnswersExpireAfterMs, changed: done.changed };
    },
    async restoreDnsTtl(args: { dns: route53.WeightedRecordSpec; previousTtl: Record<string, number> }): Promise<{ restored: string[] }> {
      const done = await route53.restoreTtl(clients(), args.dns, args.previousTtl, wait());
      return { restored: done.restored };
    },
    async setDnsWeights(args: {
      dns: route53.WeightedRecordSpec;
      weights: Record<string, number>;
    }): Promise<{ weights: Record<string, number>; changed: boolean }> {
      const done = await route53.setWeights(clients(), args.dns, args.weights, wait());
      return { weights: done.weights, changed: done.changed };
    },
    async trafficHealthGate(args: { gate: route53.HealthGateSpec }): Promise<route53.HealthGateResult> {
      return route53.healthGate(clients(), args.gate, { signal: Context.current().cancellationSignal });
    },
  });
}

export type TrafficActivities = ReturnType<typeof createTrafficActivities>;
