/**
 * What every activity factory shares: the worker's dependencies, the secret resolver (references in,
 * values only inside the activity), the migration's session names, and connections to both sides.
 */
import type { Client } from 'pg';
import type { SecretRef } from '../contract/input';
import type { AppControlDeps } from './app-control';
import { withClient } from './database/pg';
import type { DmsClients } from './methods/dms/aws-dms';
import { appName, ownSessionsPrefix } from './names';
import { createSecretResolver, type SecretClients } from './secrets';
import type { TrafficDeps } from './traffic';

export interface ActivityDeps extends SecretClients, AppControlDeps, TrafficDeps {
  /** AWS DMS and CloudWatch clients (method dms), created on first use. */
  dms: () => DmsClients;
  /** How often DMS waits poll (AWS: seconds; moto: a few ms). */
  dmsPollMs?: number;
  /** How long preflight watches the source's WAL to measure its write rate (default 1 s; tests with no load: less). */
  walSampleMs?: number;
  /** Signals a workflow (verification: its snapshots are taken; freezes: the moment they took effect). */
  signalWorkflow: (workflowId: string, runId: string, signal: string, ...args: unknown[]) => Promise<void>;
  /**
   * The status of a workflow run (`RUNNING`, `COMPLETED`, `TERMINATED`, ...), undefined when Temporal does not know it:
   * how a database lease whose workflow ended is recognised as stale. Without it, no lease is ever stale.
   */
  describeWorkflow?: (workflowId: string, runId?: string) => Promise<string | undefined>;
}

/** Arguments of the replication activities: the endpoints, the method, and the role that owns the subscription. */
export interface CdcArgs {
  /** Which replication method; absent means logical (histories recorded before DMS existed). */
  method?: 'logical' | 'dms' | 'pgcopydb' | 'triggers';
  migrationId: string;
  source: SecretRef;
  target: SecretRef;
  replicationUrl?: SecretRef;
}

export type ActivityContext = ReturnType<typeof createActivityContext>;

export function createActivityContext(deps: ActivityDeps) {
  const resolve = createSecretResolver(deps);
  /** The migration's own administrative sessions: a freeze spares them, a retry recognises them. */
  const admin = (migrationId: string, label: string) => ({
    label,
    applicationName: appName(migrationId, 'admin'),
    ownSessionsPrefix: ownSessionsPrefix(migrationId),
  });
  const endpoints = (args: { source: SecretRef; target: SecretRef }) =>
    Promise.all([resolve(args.source, 'source.url'), resolve(args.target, 'target.url')]);
  /** The role that subscribes on the target: target.replicationUrl when given (PostgreSQL 15 needs a superuser). */
  const subscriberUrl = (args: { target: SecretRef; replicationUrl?: SecretRef }) =>
    args.replicationUrl ? resolve(args.replicationUrl, 'target.replicationUrl') : resolve(args.target, 'target.url');
  /** One administrative session on each side for the length of `fn`. */
  const both = async <T>(
    args: CdcArgs,
    fn: (source: Client, target: Client, urls: { source: string; target: string }) => Promise<T>,
  ): Promise<T> => {
    const [sourceUrl, targetUrl] = await endpoints(args);
    return withClient(sourceUrl, admin(args.migrationId, 'source'), (s) =>
      withClient(targetUrl, admin(args.migrationId, 'target'), (t) => fn(s, t, { source: sourceUrl, target: targetUrl })),
    );
  };
  return { deps, resolve, admin, endpoints, subscriberUrl, both };
}
