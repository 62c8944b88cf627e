/**
 * The AWS DMS method (full-load-and-cdc) as plain functions over injected SDK clients, so activities
 * wrap them with heartbeats and cancellation, and tests run them against a real HTTP server (moto).
 *
 * Every resource is named from the migration id (`pgmig-<id>-source`, `-target`, `-instance`,
 * `-task`), so each `ensure*` is idempotent: a retry after a crash finds what the previous attempt
 * created by its identifier and continues (waits for it) instead of creating a second one.
 *
 * Errors no retry can fix (bad input, access denied, invalid parameters, quota) are thrown as
 * non-retryable ApplicationFailures; everything else is retryable. Connection URLs are registered
 * with `rememberSecret` before anything else happens, and every message leaving this module goes
 * through `redact`: no password appears in a result, failure or progress report.
 */
import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { GetMetricDataCommand, type CloudWatchClient, type MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import {
  CreateEndpointCommand,
  CreateReplicationInstanceCommand,
  CreateReplicationTaskCommand,
  DeleteEndpointCommand,
  DeleteReplicationInstanceCommand,
  DeleteReplicationTaskCommand,
  DescribeEndpointsCommand,
  DescribeReplicationInstancesCommand,
  DescribeReplicationTasksCommand,
  DescribeTableStatisticsCommand,
  StartReplicationTaskCommand,
  StopReplicationTaskCommand,
  type CreateEndpointMessage,
  type DatabaseMigrationServiceClient,
  type Endpoint,
  type PostgreSQLSettings,
  type ReplicationInstance,
  type ReplicationTask,
  type TableStatistics,
  type Tag,
} from '@aws-sdk/client-database-migration-service';
import { ApplicationFailure } from '@temporalio/common';
import { describeUrl } from './pg';
import { redact, rememberSecret } from './secrets';

export interface DmsClients {
  dms: DatabaseMigrationServiceClient;
  cloudwatch: CloudWatchClient;
}

export interface DmsMigration {
  /** Names every resource: `pgmig-<migrationId>-source`, `-target`, `-instance`, `-task`. */
  migrationId: string;
}

// ---------------------------------------------------------------------------------------------
// Names

export interface DmsResourceNames {
  source: string;
  target: string;
  instance: string;
  task: string;
}

/** DMS caps replication instance identifiers at 63 characters; `-instance` is the longest suffix. */
const MAX_BASE = 63 - '-instance'.length;

/**
 * Deterministic DMS identifiers for a migration. DMS identifiers must start with a letter, hold only
 * ASCII letters, digits and single hyphens, and not end with a hyphen; DMS stores instance
 * identifiers in lower case. A migration id that does not fit as is (too long, upper case, `--`)
 * gets a short hash of the original appended, so two migrations never share resources.
 */
export function dmsResourceNames(m: DmsMigration): DmsResourceNames {
  const id = m?.migrationId;
  if (typeof id !== 'string' || !/^[A-Za-z0-9-]+$/.test(id) || !/[A-Za-z0-9]/.test(id)) {
    throw invalid(`migrationId must be letters, digits and dashes (got ${JSON.stringify(redact(String(id)))})`);
  }
  const slug = id.toLowerCase().replace(/-+/g, '-').replace(/^-|-$/g, '');
  let base = `pgmig-${slug}`;
  if (slug !== id || base.length > MAX_BASE) {
    const hash = createHash('sha256').update(id).digest('hex').slice(0, 8);
    base = `pgmig-${slug.slice(0, MAX_BASE - 'pgmig-'.length - 9).replace(/-+$/, '')}-${hash}`;
  }
  return { source: `${base}-source`, target: `${base}-target`, instance: `${base}-instance`, task: `${base}-task` };
}

function tags(m: DmsMigration, component: string): Tag[] {
  return [
    { Key: 'pgmig:migration-id', Value: m.migrationId },
    { Key: 'pgmig:component', Value: component },
  ];
}

// ---------------------------------------------------------------------------------------------
// Errors

function invalid(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(redact(message), 'DmsInvalidInput');
}

/** AWS error codes no retry can fix: the input, the account's permissions or its quota are wrong. */
const NON_RETRYABLE_AWS_ERRORS = new Set([
  'InvalidParameterValueException',
  'InvalidParameterCombinationException',
  'ValidationError',
  'ValidationException',
  'AccessDeniedFault',
  'AccessDeniedException',
  'AccessDenied',
  'UnauthorizedOperation',
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'ResourceNotFoundFault',
  'ResourceQuotaExceededFault',
  'StorageQuotaExceededFault',
  'InvalidSubnet',
  'ReplicationSubnetGroupDoesNotCoverEnoughAZs',
  'UpgradeDependencyFailureFault',
  'InvalidCertificateFault',
  'KMSKeyNotAccessibleFault',
  'KMSAccessDeniedFault',
  'KMSDisabledFault',
  'KMSInvalidStateFault',
  'KMSNotFoundFault',
  'S3AccessDeniedFault',
]);

const HINTS: Record<string, string> = {
  AccessDeniedFault:
    'check the worker role (dms:* on pgmig-* resources, iam:PassRole) and that the account has the dms-vpc-role (and dms-cloudwatch-logs-role for task logs)',
  AccessDeniedException: "check the worker role's IAM permissions",
  ResourceQuotaExceededFault: "the account's DMS quota is used up; delete unused replication instances or endpoints, or raise the quota",
  InvalidSubnet: 'the replication subnet group must name subnets of one VPC in at least two availability zones',
};

interface AwsErrorLike {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

function errorName(err: unknown): string {
  return (err as AwsErrorLike)?.name ?? 'Error';
}

/**
 * Maps an SDK error to an ApplicationFailure whose message names the action and holds no secret:
 * non-retryable for errors no retry can fix (NON_RETRYABLE_AWS_ERRORS), retryable otherwise. The
 * failure's type is the AWS error code, so retry policies can name them.
 */
export function awsFailure(action: string, err: unknown): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const e = (err ?? {}) as AwsErrorLike;
  const name = errorName(err);
  const status = e.$metadata?.httpStatusCode;
  const first = redact(String(e.message ?? err)).split('\n')[0];
  if (/Deserialization error/.test(String(e.message))) {
    // The SDK could not parse the answer. On AWS that would be a transient fault. moto answers an HTML
    // page with HTTP 500 for operations it does not implement.
    const html = /Unexpected token '<'/.test(first);
    return ApplicationFailure.retryable(
      `${action}: the SDK could not parse the answer${status ? ` (HTTP ${status})` : ''}: ${first}` +
        (html ? ' (an HTML page, not an AWS answer: emulators such as moto answer so for operations they do not implement)' : ''),
      'DmsUnexpectedResponse',
    );
  }
  const message = `${action}: ${name}${status ? ` (HTTP ${status})` : ''}: ${first}${HINTS[name] ? ` (${HINTS[name]})` : ''}`;
  return NON_RETRYABLE_AWS_ERRORS.has(name) ? ApplicationFailure.nonRetryable(message, name) : ApplicationFailure.retryable(message, name);
}

async function aws<T>(action: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw awsFailure(action, err);
  }
}

// ---------------------------------------------------------------------------------------------
// Polling

export interface DmsWaitProgress {
  /** What is being waited for, e.g. `replication instance pgmig-x-instance`. */
  resource: string;
  status: string;
  elapsedMs: number;
  polls: number;
}

export interface PollOptions {
  /** Between two describes; defaults suit AWS (15 s for instances, 5 s otherwise). Tests pass a few ms. */
  intervalMs?: number;
  /** Give up (retryably: a retry resumes the wait) after this long. */
  timeoutMs?: number;
  /** Called after every describe: activities heartbeat here. Must not throw. */
  onProgress?: (progress: DmsWaitProgress) => void;
  /** Activity cancellation (`Context.current().cancellationSignal`): ends the wait with its reason. */
  signal?: AbortSignal;
}

export type PollStep<T> = { done: true; value: T } | { done: false; status: string };

/**
 * Calls `check` until it reports done, reporting progress after each call and sleeping `intervalMs`
 * between calls. On timeout: a retryable `DmsWaitTimeout` failure (the next attempt finds the
 * resource by name and waits on). Cancellation rejects with the signal's reason.
 */
export async function pollUntil<T>(
  resource: string,
  check: () => Promise<PollStep<T>>,
  opts: PollOptions = {},
  defaults: { intervalMs: number; timeoutMs: number } = { intervalMs: 5_000, timeoutMs: 15 * 60_000 },
): Promise<T> {
  const intervalMs = opts.intervalMs ?? defaults.intervalMs;
  const timeoutMs = opts.timeoutMs ?? defaults.timeoutMs;
  const started = Date.now();
  for (let polls = 1; ; polls++) {
    if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('cancelled');
    const step = await check();
    const elapsedMs = Date.now() - started;
    opts.onProgress?.({ resource, status: step.done ? 'done' : step.status, elapsedMs, polls });
    if (step.done) return step.value;
    if (elapsedMs >= timeoutMs) {
      throw ApplicationFailure.retryable(
        `${resource}: still '${step.status}' after ${(elapsedMs / 1000).toFixed(1)} s (limit ${(timeoutMs / 1000).toFixed(1)} s); a retry finds it and waits on`,
        'DmsWaitTimeout',
      );
    }
    try {
      await delay(Math.max(0, Math.min(intervalMs, timeoutMs - elapsedMs)), undefined, { signal: opts.signal });
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? err;
      throw err;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Describe helpers: "not found" is an empty answer (AWS raises ResourceNotFoundFault when a filter
// matches nothing; moto returns an empty list).

async function findEndpoint(clients: DmsClients, identifier: string): Promise<Endpoint | undefined> {
  try {
    const out = await clients.dms.send(new DescribeEndpointsCommand({ Filters: [{ Name: 'endpoint-id', Values: [identifier] }] }));
    return out.Endpoints?.find((e) => e.EndpointIdentifier === identifier);
  } catch (err) {
    if (errorName(err) === 'ResourceNotFoundFault') return undefined;
    throw awsFailure(`DescribeEndpoints ${identifier}`, err);
  }
}

async function findInstance(clients: DmsClients, identifier: string): Promise<ReplicationInstance | undefined> {
  try {
    const out = await clients.dms.send(
      new DescribeReplicationInstancesCommand({ Filters: [{ Name: 'replication-instance-id', Values: [identifier] }] }),
    );
    return out.ReplicationInstances?.find((i) => i.ReplicationInstanceIdentifier === identifier);
  } catch (err) {
    if (errorName(err) === 'ResourceNotFoundFault') return undefined;
    throw awsFailure(`DescribeReplicationInstances ${identifier}`, err);
  }
}

async function findTask(clients: DmsClients, filter: { id: string } | { arn: string }): Promise<ReplicationTask | undefined> {
  const [name, value] = 'id' in filter ? ['replication-task-id', filter.id] : ['replication-task-arn', filter.arn];
  try {
    const out = await clients.dms.send(new DescribeReplicationTasksCommand({ Filters: [{ Name: name, Values: [value] }] }));
    return out.ReplicationTasks?.find((t) =>
      'id' in filter ? t.ReplicationTaskIdentifier === filter.id : t.ReplicationTaskArn === filter.arn,
    );
  } catch (err) {
    if (errorName(err) === 'ResourceNotFoundFault') return undefined;
    throw awsFailure(`DescribeReplicationTasks ${value}`, err);
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Endpoints

export type DmsSslMode = 'none' | 'require' | 'verify-ca' | 'verify-full';

/** libpq `sslmode` -> DMS `SslMode`. DMS has no "prefer"/"allow": prefer means TLS when offered, so require. */
const LIBPQ_TO_DMS_SSL: Record<string, DmsSslMode> = {
  disable: 'none',
  allow: 'none',
  prefer: 'require',
  require: 'require',
  'verify-ca': 'verify-ca',
  'verify-full': 'verify-full',
};

/** An endpoint whose credentials (host, port, username, password) DMS reads from Secrets Manager itself. */
export interface DmsSecretsManagerConnection {
  /** ARN or name of a secret holding `{"username","password","host","port"}` (the RDS secret format). */
  secretsManagerSecretId: string;
  /** IAM role DMS assumes to read the secret (trusts dms.<region>.amazonaws.com; secretsmanager:GetSecretValue). */
  accessRoleArn: string;
  databaseName: string;
  sslMode?: DmsSslMode;
}

export type EnsureEndpointsInput = ({ sourceUrl: string; source?: never } | { source: DmsSecretsManagerConnection; sourceUrl?: never }) &
  ({ targetUrl: string; target?: never } | { target: DmsSecretsManagerConnection; targetUrl?: never }) & {
    /** DMS certificate (ImportCertificate) of the CA for `verify-ca` / `verify-full`, e.g. the RDS global bundle. */
    sourceCertificateArn?: string;
    targetCertificateArn?: string;
    /**
     * Run on every target connection. Default `SET session_replication_role = 'replica'`: foreign keys
     * and user triggers do not fire while DMS loads tables in parallel and applies changes (the
     * source already ran them). null: none.
     */
    targetAfterConnectScript?: string | null;
  };

export interface EnsuredEndpoints {
  sourceEndpointArn: string;
  targetEndpointArn: string;
  created: { source: boolean; target: boolean };
  /** Things that will not work against real AWS, e.g. a loopback host a replication instance cannot reach. */
  warnings: string[];
}

const DEFAULT_TARGET_AFTER_CONNECT = "SET session_replication_role = 'replica'";

type EndpointRole = 'source' | 'target';

interface EndpointRequest {
  message: CreateEndpointMessage;
  /** For comparing with an existing endpoint and for messages: never holds the password. */
  describe: string;
  expect: { ServerName?: string; Port?: number; DatabaseName?: string; Username?: string; SecretsManagerSecretId?: string };
  warnings: string[];
}

function fromUrl(role: EndpointRole, url: string): Omit<EndpointRequest, 'message'> & { fields: Partial<CreateEndpointMessage> } {
  if (typeof url !== 'string' || url.length === 0) throw invalid(`${role} connection URL is empty`);
  rememberSecret(url);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalid(`${role} connection URL cannot be parsed (its text is withheld: it may hold a password)`);
  }
  const queryPassword = u.searchParams.get('password');
  if (queryPassword) rememberSecret(queryPassword);
  const where = `${role} ${describeUrl(url)}`;
  const scheme = u.protocol.replace(/:$/, '');
  if (scheme !== 'postgres' && scheme !== 'postgresql') {
    throw invalid(`${where}: engine '${scheme}' is not PostgreSQL; the DMS method moves PostgreSQL to PostgreSQL (EngineName postgres)`);
  }
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (!host)
    throw invalid(
      `${where}: the URL has no host; DMS connects over TCP and needs a server name (Unix sockets and host= parameters are not reachable from a replication instance)`,
    );
  const port = u.port ? Number(u.port) : 5432;
  let database: string;
  let username: string;
  let password: string;
  try {
    database = decodeURIComponent(u.pathname.replace(/^\//, ''));
    username = decodeURIComponent(u.username);
    password = u.password ? decodeURIComponent(u.password) : (queryPassword ?? '');
  } catch {
    throw invalid(`${where}: the URL holds malformed percent-encoding`);
  }
  if (!database || database.includes('/')) throw invalid(`${where}: the URL names no single database`);
  if (!username) throw invalid(`${where}: the URL has no user name`);
  if (!password) throw invalid(`${where}: the URL has no password (use a Secrets Manager secret for password-less endpoints)`);
  rememberSecret(password);
  const sslParam = u.searchParams.get('sslmode');
  let sslMode: DmsSslMode;
  if (sslParam === null) {
    // No sslmode means libpq's "prefer". Heroku Postgres refuses unencrypted connections and RDS for
    // PostgreSQL 15+ forces TLS, so DMS's own default ("none") would fail on both.
    sslMode = 'require';
  } else {
    const mapped = LIBPQ_TO_DMS_SSL[sslParam];
    if (!mapped) throw invalid(`${where}: sslmode '${sslParam}' is not one of ${Object.keys(LIBPQ_TO_DMS_SSL).join(', ')}`);
    sslMode = mapped;
  }
  const warnings: string[] = [];
  if (/^(localhost|127\.|::1$|0\.0\.0\.0$)/.test(host)) {
    warnings.push(`${role} host ${host} is a loopback address: a DMS replication instance cannot reach it`);
  }
  return {
    fields: { ServerName: host, Port: port, DatabaseName: database, Username: username, Password: password, SslMode: sslMode },
    describe: where,
    expect: { ServerName: host, Port: port, DatabaseName: database, Username: username },
    warnings,
  };
}

function fromSecret(
  role: EndpointRole,
  conn: DmsSecretsManagerConnection,
): Omit<EndpointRequest, 'message'> & { fields: Partial<CreateEndpointMessage>; pg: PostgreSQLSettings } {
  if (!conn || typeof conn !== 'object') throw invalid(`${role}: give a connection URL or a Secrets Manager connection`);
  const { secretsManagerSecretId: secretId, accessRoleArn, databaseName, sslMode = 'require' } = conn;
  if (typeof secretId !== 'string' || !secretId.trim()) throw invalid(`${role}.secretsManagerSecretId is empty`);
  if (typeof accessRoleArn !== 'string' || !/^arn:aws[\w-]*:iam::\d{12}:role\/.+/.test(accessRoleArn)) {
    throw invalid(`${role}.accessRoleArn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)`);
  }
  if (typeof databaseName !== 'string' || !databaseName) throw invalid(`${role}.databaseName is empty`);
  if (!Object.values(LIBPQ_TO_DMS_SSL).includes(sslMode)) throw invalid(`${role}.sslMode must be none, require, verify-ca or verify-full`);
  return {
    fields: { DatabaseName: databaseName, SslMode: sslMode },
    pg: { SecretsManagerSecretId: secretId, SecretsManagerAccessRoleArn: accessRoleArn, DatabaseName: databaseName },
    describe: `${role} secretsManager:${secretId}/${databaseName}`,
    expect: { DatabaseName: databaseName, SecretsManagerSecretId: secretId },
    warnings: [],
  };
}

function endpointRequest(
  m: DmsMigration,
  identifier: string,
  role: EndpointRole,
  conn: { url: string } | { secret: DmsSecretsManagerConnection },
  certificateArn: string | undefined,
  afterConnectScript: string | null | undefined,
): EndpointRequest {
  const parsed = 'url' in conn ? { ...fromUrl(role, conn.url), pg: {} as PostgreSQLSettings } : fromSecret(role, conn.secret);
  const pg: PostgreSQLSettings = { ...parsed.pg };
  if (role === 'source') {
    // Keeps the replication slot's restart_lsn moving on an idle source, so WAL cannot pile up.
    pg.HeartbeatEnable = true;
    // DDL capture installs an event trigger, which needs a superuser: Heroku does not give one.
    // Schema changes are frozen for the migration instead.
    pg.CaptureDdls = false;
  } else {
    const script = afterConnectScript === undefined ? DEFAULT_TARGET_AFTER_CONNECT : afterConnectScript;
    if (script) pg.AfterConnectScript = script;
  }
  // Booleans stay booleans (DMS's default maps them to varchar(5)); needs the setting on both sides.
  pg.MapBooleanAsBoolean = true;
  return {
    message: {
      EndpointIdentifier: identifier,
      EndpointType: role,
      EngineName: 'postgres',
      ...parsed.fields,
      ...(certificateArn ? { CertificateArn: certificateArn } : {}),
      PostgreSQLSettings: pg,
      Tags: tags(m, role),
    },
    describe: parsed.describe,
    expect: parsed.expect,
    warnings: parsed.warnings,
  };
}

function endpointMismatch(existing: Endpoint, req: EndpointRequest): string | undefined {
  if (existing.EndpointType && existing.EndpointType.toLowerCase() !== req.message.EndpointType) return `type ${existing.EndpointType}`;
  if (existing.EngineName && existing.EngineName !== 'postgres') return `engine ${existing.EngineName}`;
  const e = req.expect;
  if (e.SecretsManagerSecretId !== undefined && existing.PostgreSQLSettings?.SecretsManagerSecretId !== e.SecretsManagerSecretId) {
    return 'Secrets Manager secret';
  }
  if (e.ServerName !== undefined && existing.ServerName !== e.ServerName) return `server ${existing.ServerName}`;
  if (e.Port !== undefined && existing.Port !== undefined && existing.Port !== e.Port) return `port ${existing.Port}`;
  if (e.DatabaseName !== undefined && existing.DatabaseName !== undefined && existing.DatabaseName !== e.DatabaseName)
    return `database ${existing.DatabaseName}`;
  if (e.Username !== undefined && existing.Username !== undefined && existing.Username !== e.Username) return `user ${existing.Username}`;
  return undefined;
}

async function ensureEndpoint(clients: DmsClients, req: EndpointRequest, opts: PollOptions): Promise<{ arn: string; created: boolean }> {
  const id = req.message.EndpointIdentifier!;
  for (let attempt = 0; attempt < 3; attempt++) {
    let existing = await findEndpoint(clients, id);
    if (existing?.Status === 'deleting') {
      await pollUntil(
        `endpoint ${id} (being deleted)`,
        async () => {
          const e = await findEndpoint(clients, id);
          return e ? { done: false, status: e.Status ?? 'deleting' } : { done: true, value: undefined };
        },
        opts,
      );
      existing = undefined;
    }
    if (existing?.EndpointArn) {
      const mismatch = endpointMismatch(existing, req);
      if (mismatch) {
        throw ApplicationFailure.nonRetryable(
          redact(
            `endpoint ${id} already exists with a different ${mismatch} than ${req.describe}; delete it (stopAndDelete) or use another migrationId`,
          ),
          'DmsEndpointConflict',
        );
      }
      return { arn: existing.EndpointArn, created: false };
    }
    try {
      const out = await clients.dms.send(new CreateEndpointCommand(req.message));
      const arn = out.Endpoint?.EndpointArn;
      if (!arn) throw ApplicationFailure.retryable(`CreateEndpoint ${id}: no ARN in the answer`, 'DmsUnexpectedResponse');
      return { arn, created: true };
    } catch (err) {
      // A concurrent attempt created it between our describe and create: describe again.
      if (errorName(err) === 'ResourceAlreadyExistsFault') continue;
      throw awsFailure(`CreateEndpoint ${id} (${req.describe})`, err);
    }
  }
  throw ApplicationFailure.retryable(
    `endpoint ${id}: exists according to CreateEndpoint but DescribeEndpoints does not list it`,
    'DmsInconsistent',
  );
}

/**
 * Source and target endpoints (EngineName postgres). Credentials come either parsed from connection
 * URLs the caller resolved, or as a Secrets Manager secret DMS reads itself (no password is sent).
 * Returns ARNs only.
 */
export async function ensureEndpoints(
  clients: DmsClients,
  m: DmsMigration,
  input: EnsureEndpointsInput,
  opts: PollOptions = {},
): Promise<EnsuredEndpoints> {
  // Register the secrets first, so that even a failure naming the migration cannot carry them.
  if (typeof input?.sourceUrl === 'string') rememberSecret(input.sourceUrl);
  if (typeof input?.targetUrl === 'string') rememberSecret(input.targetUrl);
  const names = dmsResourceNames(m);
  const side = (role: EndpointRole): { url: string } | { secret: DmsSecretsManagerConnection } => {
    const url = role === 'source' ? input?.sourceUrl : input?.targetUrl;
    const secret = role === 'source' ? input?.source : input?.target;
    if (url !== undefined && secret !== undefined) throw invalid(`${role}: give either ${role}Url or ${role} (Secrets Manager), not both`);
    if (url !== undefined) return { url };
    if (secret !== undefined) return { secret };
    throw invalid(`${role}: missing; give ${role}Url or ${role}: { secretsManagerSecretId, accessRoleArn, databaseName }`);
  };
  // Validate both sides before creating anything.
  const source = endpointRequest(m, names.source, 'source', side('source'), input.sourceCertificateArn, undefined);
  const target = endpointRequest(m, names.target, 'target', side('target'), input.targetCertificateArn, input.targetAfterConnectScript);
  const s = await ensureEndpoint(clients, source, opts);
  const t = await ensureEndpoint(clients, target, opts);
  return {
    sourceEndpointArn: s.arn,
    targetEndpointArn: t.arn,
    created: { source: s.created, target: t.created },
    warnings: [...source.warnings, ...target.warnings],
  };
}

// ---------------------------------------------------------------------------------------------
// 2. Replication instance

export interface ReplicationInstanceSpec extends PollOptions {
  instanceClass?: string;
  /** GB. */
  allocatedStorage?: number;
  multiAz?: boolean;
  /** Needed (or a NAT gateway) to reach Heroku Postgres over the internet. AWS's default: true. */
  publiclyAccessible?: boolean;
  replicationSubnetGroupIdentifier?: string;
  vpcSecurityGroupIds?: string[];
  engineVersion?: string;
}

/** Statuses a replication instance does not leave by itself. */
const INSTANCE_BROKEN = new Set([
  'failed',
  'storage-full',
  'incompatible-credentials',
  'incompatible-network',
  'inaccessible-encryption-credentials',
]);

/**
 * Creates the replication instance (or finds the one a previous attempt created) and waits until it
 * is `available`: 5-15 minutes on AWS, so pass `onProgress` to heartbeat.
 */
export async function ensureReplicationInstance(clients: DmsClients, m: DmsMigration, spec: ReplicationInstanceSpec = {}): Promise<string> {
  const id = dmsResourceNames(m).instance;
  const instanceClass = spec.instanceClass ?? 'dms.t3.medium';
  const allocatedStorage = spec.allocatedStorage ?? 50;
  if (!/^dms\.[a-z0-9]+\.[a-z0-9]+$/.test(instanceClass))
    throw invalid(`instanceClass '${instanceClass}' is not a DMS instance class (e.g. dms.t3.medium)`);
  if (!Number.isInteger(allocatedStorage) || allocatedStorage < 5 || allocatedStorage > 6144) {
    throw invalid(`allocatedStorage must be a whole number of GB between 5 and 6144 (got ${allocatedStorage})`);
  }
  const resource = `replication instance ${id}`;
  const wait = { intervalMs: 15_000, timeoutMs: 40 * 60_000 };
  let existing = await findInstance(clients, id);
  if (existing?.ReplicationInstanceStatus === 'deleting') {
    await pollUntil(
      `${resource} (being deleted)`,
      async () => {
        const i = await findInstance(clients, id);
        return i ? { done: false, status: i.ReplicationInstanceStatus ?? 'deleting' } : { done: true, value: undefined };
      },
      spec,
      wait,
    );
    existing = undefined;
  }
  if (!existing?.ReplicationInstanceArn) {
    try {
      await clients.dms.send(
        new CreateReplicationInstanceCommand({
          ReplicationInstanceIdentifier: id,
          ReplicationInstanceClass: instanceClass,
          AllocatedStorage: allocatedStorage,
          MultiAZ: spec.multiAz ?? false,
          ...(spec.publiclyAccessible !== undefined ? { PubliclyAccessible: spec.publiclyAccessible } : {}),
          ...(spec.replicationSubnetGroupIdentifier ? { ReplicationSubnetGroupIdentifier: spec.replicationSubnetGroupIdentifier } : {}),
          ...(spec.vpcSecurityGroupIds?.length ? { VpcSecurityGroupIds: spec.vpcSecurityGroupIds } : {}),
          ...(spec.engineVersion ? { EngineVersion: spec.engineVersion } : {}),
          Tags: tags(m, 'instance'),
        }),
      );
    } catch (err) {
      // ResourceAlreadyExistsFault: a concurrent attempt created it; the wait below finds it.
      if (errorName(err) !== 'ResourceAlreadyExistsFault')
        throw awsFailure(`CreateReplicationInstance ${id} (${instanceClass}, ${allocatedStorage} GB)`, err);
    }
  }
  return pollUntil(
    resource,
    async () => {
      const i = await findInstance(clients, id);
      if (!i?.ReplicationInstanceArn) return { done: false, status: 'not listed yet' };
      const status = i.ReplicationInstanceStatus ?? 'unknown';
      if (status === 'available') return { done: true, value: i.ReplicationInstanceArn };
      if (INSTANCE_BROKEN.has(status)) {
        throw ApplicationFailure.nonRetryable(
          `${resource} is '${status}'; delete it (stopAndDelete) and check its subnet group, security groups and storage`,
          'DmsInstanceFailed',
        );
      }
      return { done: false, status };
    },
    spec,
    wait,
  );
}

// ---------------------------------------------------------------------------------------------
// 3. Task

export interface DmsTable {
  schema: string;
  name: string;
}

/** One selection rule per table, names exactly as in the catalog (DMS matches them case-sensitively). */
export function buildTableMappings(tables: DmsTable[]): string {
  if (!Array.isArray(tables) || tables.length === 0) throw invalid('tables: at least one table is needed');
  const seen = new Set<string>();
  const rules: object[] = [];
  for (const t of tables) {
    if (!t || typeof t.schema !== 'string' || typeof t.name !== 'string' || !t.schema || !t.name) {
      throw invalid(`tables: each entry needs a non-empty schema and name (got ${JSON.stringify(t)})`);
    }
    // '%' is DMS's wildcard in object locators: a literal one would select other tables too.
    if (t.schema.includes('%') || t.name.includes('%'))
      throw invalid(`tables: ${JSON.stringify(`${t.schema}.${t.name}`)} contains '%', which DMS reads as a wildcard`);
    const key = JSON.stringify([t.schema, t.name]);
    if (seen.has(key)) continue;
    seen.add(key);
    const n = rules.length + 1;
    rules.push({
      'rule-type': 'selection',
      'rule-id': String(n),
      'rule-name': `include-${n}`,
      'object-locator': { 'schema-name': t.schema, 'table-name': t.name },
      'rule-action': 'include',
      filters: [],
    });
  }
  return JSON.stringify({ rules });
}

/** The (schema, table) pairs a table-mapping document includes, in a comparable form. */
export function selectedTables(tableMappings: string): DmsTable[] {
  const doc = JSON.parse(tableMappings) as { rules?: Array<Record<string, unknown>> };
  return (doc.rules ?? [])
    .filter((r) => r['rule-type'] === 'selection' && r['rule-action'] === 'include')
    .map((r) => {
      const loc = r['object-locator'] as { 'schema-name': string; 'table-name': string };
      return { schema: loc['schema-name'], name: loc['table-name'] };
    });
}

export interface TaskSettingsOptions {
  /** Limited LOB mode with this cap (KB) instead of full LOB mode. Larger values are truncated (the task fails instead, see FailTasksOnLobTruncation). */
  limitedLobMaxSizeKb?: number;
  /** Tables loaded in parallel (DMS default 8, max 49). */
  maxFullLoadSubTasks?: number;
}

/**
 * Task settings: the schema is restored before the task starts, so the target tables are left as they
 * are (FullLoadSettings.TargetTablePrepMode DO_NOTHING; DMS keeps that option under FullLoadSettings,
 * not TargetMetadata); row-level validation; task logging (the CloudWatch log group is DMS's own:
 * it cannot be set on create).
 */
export function buildTaskSettings(opts: TaskSettingsOptions = {}): string {
  const lob =
    opts.limitedLobMaxSizeKb !== undefined
      ? { SupportLobs: true, FullLobMode: false, LimitedSizeLobMode: true, LobMaxSize: opts.limitedLobMaxSizeKb }
      : { SupportLobs: true, FullLobMode: true, LimitedSizeLobMode: false, LobChunkSize: 64 };
  return JSON.stringify({
    TargetMetadata: { TargetSchema: '', ...lob },
    FullLoadSettings: {
      TargetTablePrepMode: 'DO_NOTHING',
      CreatePkAfterFullLoad: false,
      StopTaskCachedChangesApplied: false,
      StopTaskCachedChangesNotApplied: false,
      MaxFullLoadSubTasks: opts.maxFullLoadSubTasks ?? 8,
      CommitRate: 10000,
    },
    ValidationSettings: {
      EnableValidation: true,
      ValidationMode: 'ROW_LEVEL',
      ThreadCount: 5,
      FailureMaxCount: 10000,
    },
    Logging: { EnableLogging: true },
  });
}

export interface TaskSpec extends PollOptions, TaskSettingsOptions {
  sourceEndpointArn: string;
  targetEndpointArn: string;
  replicationInstanceArn: string;
  tables: DmsTable[];
  /** Wait until the task is `ready` (default). moto never moves a task out of `creating`: see the tests. */
  waitForReady?: boolean;
}

/** A task in one of these has been created and can be started, is running, or has run. */
const TASK_SETTLED = new Set(['ready', 'running', 'starting', 'stopped', 'stopping']);

function taskFailure(resource: string, task: ReplicationTask): ApplicationFailure {
  const reason = task.LastFailureMessage ? `: ${redact(task.LastFailureMessage)}` : '';
  return ApplicationFailure.nonRetryable(`${resource} failed${reason}`, 'DmsTaskFailed');
}

/** Creates the full-load-and-cdc task (or finds the one a previous attempt created) and waits until it is `ready`. */
export async function ensureTask(clients: DmsClients, m: DmsMigration, spec: TaskSpec): Promise<string> {
  const id = dmsResourceNames(m).task;
  for (const k of ['sourceEndpointArn', 'targetEndpointArn', 'replicationInstanceArn'] as const) {
    if (typeof spec?.[k] !== 'string' || !spec[k].startsWith('arn:')) throw invalid(`${k} must be an ARN`);
  }
  const tableMappings = buildTableMappings(spec.tables);
  const resource = `replication task ${id}`;
  let existing = await findTask(clients, { id });
  if (existing?.Status === 'deleting') {
    await pollUntil(
      `${resource} (being deleted)`,
      async () => {
        const t = await findTask(clients, { id });
        return t ? { done: false, status: t.Status ?? 'deleting' } : { done: true, value: undefined };
      },
      spec,
    );
    existing = undefined;
  }
  if (existing) {
    const wrong = (['sourceEndpointArn', 'targetEndpointArn', 'replicationInstanceArn'] as const).find(
      (k) =>
        existing![(k.charAt(0).toUpperCase() + k.slice(1)) as 'SourceEndpointArn' | 'TargetEndpointArn' | 'ReplicationInstanceArn'] !==
        spec[k],
    );
    const sameTables =
      existing.TableMappings === undefined ||
      JSON.stringify(
        selectedTables(existing.TableMappings)
          .map((t) => [t.schema, t.name])
          .sort(),
      ) ===
        JSON.stringify(
          selectedTables(tableMappings)
            .map((t) => [t.schema, t.name])
            .sort(),
        );
    if (wrong || !sameTables) {
      throw ApplicationFailure.nonRetryable(
        `${resource} already exists with a different ${wrong ?? 'table selection'}; delete it (stopAndDelete) or use another migrationId`,
        'DmsTaskConflict',
      );
    }
  } else {
    try {
      await clients.dms.send(
        new CreateReplicationTaskCommand({
          ReplicationTaskIdentifier: id,
          SourceEndpointArn: spec.sourceEndpointArn,
          TargetEndpointArn: spec.targetEndpointArn,
          ReplicationInstanceArn: spec.replicationInstanceArn,
          MigrationType: 'full-load-and-cdc',
          TableMappings: tableMappings,
          ReplicationTaskSettings: buildTaskSettings(spec),
          Tags: tags(m, 'task'),
        }),
      );
    } catch (err) {
      if (errorName(err) !== 'ResourceAlreadyExistsFault') throw awsFailure(`CreateReplicationTask ${id}`, err);
    }
  }
  return pollUntil(
    resource,
    async () => {
      const t = await findTask(clients, { id });
      if (!t?.ReplicationTaskArn) return { done: false, status: 'not listed yet' };
      const status = t.Status ?? 'unknown';
      if (status === 'failed') throw taskFailure(resource, t);
      if (spec.waitForReady === false || TASK_SETTLED.has(status)) return { done: true, value: t.ReplicationTaskArn };
      return { done: false, status };
    },
    spec,
  );
}

// ---------------------------------------------------------------------------------------------
// 4. Start, stop, progress

export interface StartTaskResult {
  status: string;
  /** The StartReplicationTaskType used, or undefined when the task was already running. */
  startType?: 'start-replication' | 'resume-processing';
  alreadyRunning: boolean;
}

const TASK_RUNNING = new Set(['running', 'starting']);

/**
 * Starts the task (`start-replication` the first time, `resume-processing` after a stop) and waits
 * until it is `running`. Idempotent: a running or starting task is left alone. Whether the task can
 * start is left to DMS: a task that is not `ready` yet is refused with InvalidResourceStateFault,
 * which becomes a retryable failure.
 */
export async function startTask(
  clients: DmsClients,
  taskArn: string,
  opts: PollOptions & { waitForRunning?: boolean } = {},
): Promise<StartTaskResult> {
  const resource = `replication task ${taskArn}`;
  const describe = async (): Promise<ReplicationTask> => {
    const t = await findTask(clients, { arn: taskArn });
    if (!t) throw ApplicationFailure.nonRetryable(`${resource} does not exist`, 'DmsTaskNotFound');
    return t;
  };
  const waitRunning = async (): Promise<string> =>
    opts.waitForRunning === false
      ? ((await describe()).Status ?? 'unknown')
      : pollUntil(
          resource,
          async () => {
            const t = await describe();
            const status = t.Status ?? 'unknown';
            if (status === 'running') return { done: true, value: status };
            if (status === 'failed') throw taskFailure(resource, t);
            if (status === 'stopped') {
              throw ApplicationFailure.retryable(
                `${resource} stopped right after starting${t.StopReason ? ` (${redact(t.StopReason)})` : ''}`,
                'DmsTaskStopped',
              );
            }
            return { done: false, status };
          },
          opts,
        );

  let task = await describe();
  if (TASK_RUNNING.has(task.Status ?? '')) return { status: await waitRunning(), alreadyRunning: true };
  if (task.Status === 'stopping') {
    task = await pollUntil(
      `${resource} (stopping)`,
      async () => {
        const t = await describe();
        return t.Status === 'stopping' ? { done: false, status: 'stopping' } : { done: true, value: t };
      },
      opts,
    );
  }
  const startType = task.ReplicationTaskStartDate ? 'resume-processing' : 'start-replication';
  try {
    await clients.dms.send(new StartReplicationTaskCommand({ ReplicationTaskArn: taskArn, StartReplicationTaskType: startType }));
  } catch (err) {
    if (errorName(err) !== 'InvalidResourceStateFault') throw awsFailure(`StartReplicationTask ${taskArn}`, err);
    const now = await describe();
    if (TASK_RUNNING.has(now.Status ?? '')) return { status: await waitRunning(), alreadyRunning: true };
    throw ApplicationFailure.retryable(
      `${resource} is '${now.Status}' and cannot start yet: ${redact(String((err as Error).message))}`,
      'DmsTaskNotStartable',
    );
  }
  return { status: await waitRunning(), startType, alreadyRunning: false };
}

/** Stops a running task and waits until it has stopped. A task that is not running is left as it is. */
export async function stopTask(
  clients: DmsClients,
  taskArn: string,
  opts: PollOptions = {},
): Promise<{ status: string; stopped: boolean }> {
  let stopped = false;
  const status = await pollUntil(
    `replication task ${taskArn} (stopping)`,
    async () => {
      const t = await findTask(clients, { arn: taskArn });
      if (!t) return { done: true, value: 'gone' };
      const s = t.Status ?? 'unknown';
      if (s === 'running') {
        try {
          await clients.dms.send(new StopReplicationTaskCommand({ ReplicationTaskArn: taskArn }));
          stopped = true;
        } catch (err) {
          // Not stoppable in this state (e.g. still starting) or already stopping: look again next round.
          if (errorName(err) !== 'InvalidResourceStateFault' && errorName(err) !== 'ResourceNotFoundFault')
            throw awsFailure(`StopReplicationTask ${taskArn}`, err);
        }
        return { done: false, status: 'stop requested' };
      }
      if (s === 'starting' || s === 'stopping') return { done: false, status: s };
      return { done: true, value: s };
    },
    opts,
  );
  return { status, stopped };
}

export interface DmsTableProgress {
  schema: string;
  name: string;
  /** DMS's TableState, e.g. "Before load", "Full load", "Table completed", "Table error". */
  state?: string;
  inserts: number;
  updates: number;
  deletes: number;
  ddls: number;
  fullLoadRows: number;
  fullLoadErrorRows: number;
  /** e.g. "Not enabled", "Pending records", "Validated", "Mismatched records", "No primary key". */
  validationState?: string;
  validationPendingRecords: number;
  validationFailedRecords: number;
  validationSuspendedRecords: number;
}

export interface DmsTaskProgress {
  status: string;
  fullLoadProgressPercent: number;
  tablesLoaded: number;
  tablesLoading: number;
  tablesQueued: number;
  tablesErrored: number;
  fullLoadComplete: boolean;
  elapsedMs?: number;
  stopReason?: string;
  lastFailureMessage?: string;
  tables: DmsTableProgress[];
  /** Why `tables` is empty when DescribeTableStatistics could not be read (e.g. moto does not implement it). */
  tablesUnavailable?: string;
}

async function tableStatistics(clients: DmsClients, taskArn: string): Promise<TableStatistics[]> {
  const out: TableStatistics[] = [];
  let marker: string | undefined;
  do {
    const page = await clients.dms.send(
      new DescribeTableStatisticsCommand({ ReplicationTaskArn: taskArn, MaxRecords: 500, Marker: marker }),
    );
    out.push(...(page.TableStatistics ?? []));
    marker = page.Marker;
  } while (marker);
  return out;
}

/** One progress sample: task status and statistics, and per-table counters and validation state. */
export async function taskProgress(clients: DmsClients, taskArn: string): Promise<DmsTaskProgress> {
  const task = await findTask(clients, { arn: taskArn });
  if (!task) throw ApplicationFailure.nonRetryable(`replication task ${taskArn} does not exist`, 'DmsTaskNotFound');
  const stats = task.ReplicationTaskStats ?? {};
  let tables: DmsTableProgress[] = [];
  let tablesUnavailable: string | undefined;
  try {
    tables = (await tableStatistics(clients, taskArn)).map((t) => ({
      schema: t.SchemaName ?? '',
      name: t.TableName ?? '',
      state: t.TableState,
      inserts: t.Inserts ?? 0,
      updates: t.Updates ?? 0,
      deletes: t.Deletes ?? 0,
      ddls: t.Ddls ?? 0,
      fullLoadRows: t.FullLoadRows ?? 0,
      fullLoadErrorRows: t.FullLoadErrorRows ?? 0,
      validationState: t.ValidationState,
      validationPendingRecords: t.ValidationPendingRecords ?? 0,
      validationFailedRecords: t.ValidationFailedRecords ?? 0,
      validationSuspendedRecords: t.ValidationSuspendedRecords ?? 0,
    }));
  } catch (err) {
    // A task that has never run has no statistics yet (InvalidResourceStateFault on AWS); a failure
    // here must not hide the task-level progress, so it is reported beside it.
    tablesUnavailable = awsFailure(`DescribeTableStatistics ${taskArn}`, err).message;
  }
  const status = task.Status ?? 'unknown';
  const percent = stats.FullLoadProgressPercent ?? 0;
  const loading = stats.TablesLoading ?? 0;
  const queued = stats.TablesQueued ?? 0;
  const errored = stats.TablesErrored ?? 0;
  const fullLoadComplete =
    (status === 'running' || status === 'stopped') &&
    task.ReplicationTaskStartDate != null &&
    percent >= 100 &&
    loading === 0 &&
    queued === 0 &&
    errored === 0 &&
    !tables.some((t) => t.state === 'Table error' || t.state === 'Before load' || t.state === 'Full load');
  return {
    status,
    fullLoadProgressPercent: percent,
    tablesLoaded: stats.TablesLoaded ?? 0,
    tablesLoading: loading,
    tablesQueued: queued,
    tablesErrored: errored,
    fullLoadComplete,
    ...(stats.ElapsedTimeMillis !== undefined ? { elapsedMs: stats.ElapsedTimeMillis } : {}),
    ...(task.StopReason ? { stopReason: redact(task.StopReason) } : {}),
    ...(task.LastFailureMessage ? { lastFailureMessage: redact(task.LastFailureMessage) } : {}),
    tables,
    ...(tablesUnavailable ? { tablesUnavailable } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// 5. CDC latency from CloudWatch

export interface DmsTaskRef {
  taskArn: string;
  replicationInstanceIdentifier: string;
  /** The task's own identifier, also tried as the metric dimension (see cdcLatency). */
  taskIdentifier?: string;
}

export interface CdcLatency {
  /** Seconds between a commit on the source and DMS reading it; undefined until DMS published a datapoint. */
  sourceSeconds: number | undefined;
  /** Seconds between a commit on the source and DMS applying it on the target. */
  targetSeconds: number | undefined;
  sourceAt?: string;
  targetAt?: string;
}

function arnResource(arn: string): string {
  return arn.slice(arn.lastIndexOf(':') + 1);
}

/**
 * The latest CDCLatencySource / CDCLatencyTarget datapoints (namespace AWS/DMS, dimensions
 * ReplicationInstanceIdentifier + ReplicationTaskIdentifier) of the last 5 minutes before `now`.
 * DMS's ReplicationTaskIdentifier dimension holds the task's resource id (the last part of its ARN),
 * not the name given at creation; both are queried, and the newest datapoint wins.
 */
export async function cdcLatency(clients: DmsClients, ref: DmsMigration | DmsTaskRef, now: Date = new Date()): Promise<CdcLatency> {
  let task: DmsTaskRef;
  if ('migrationId' in ref) {
    const names = dmsResourceNames(ref);
    const t = await findTask(clients, { id: names.task });
    if (!t?.ReplicationTaskArn) throw ApplicationFailure.nonRetryable(`replication task ${names.task} does not exist`, 'DmsTaskNotFound');
    task = { taskArn: t.ReplicationTaskArn, replicationInstanceIdentifier: names.instance, taskIdentifier: names.task };
  } else {
    task = ref;
  }
  const taskDims = [...new Set([arnResource(task.taskArn), ...(task.taskIdentifier ? [task.taskIdentifier] : [])])];
  const metrics = [
    ['src', 'CDCLatencySource'],
    ['tgt', 'CDCLatencyTarget'],
  ] as const;
  const queries: MetricDataQuery[] = [];
  taskDims.forEach((dim, i) => {
    for (const [key, metricName] of metrics) {
      queries.push({
        Id: `${key}${i}`,
        MetricStat: {
          Metric: {
            Namespace: 'AWS/DMS',
            MetricName: metricName,
            Dimensions: [
              { Name: 'ReplicationInstanceIdentifier', Value: task.replicationInstanceIdentifier },
              { Name: 'ReplicationTaskIdentifier', Value: dim },
            ],
          },
          Period: 60,
          Stat: 'Maximum',
        },
        ReturnData: true,
      });
    }
  });
  const out = await aws(`GetMetricData AWS/DMS CDCLatency* for ${task.taskArn}`, () =>
    clients.cloudwatch.send(
      new GetMetricDataCommand({
        StartTime: new Date(now.getTime() - 5 * 60_000),
        EndTime: now,
        ScanBy: 'TimestampDescending',
        MetricDataQueries: queries,
      }),
    ),
  );
  const latest = (key: string): { value: number; at: Date } | undefined => {
    let best: { value: number; at: Date } | undefined;
    for (const r of out.MetricDataResults ?? []) {
      if (!r.Id?.startsWith(key)) continue;
      (r.Timestamps ?? []).forEach((at, i) => {
        const value = r.Values?.[i];
        if (value !== undefined && (!best || at.getTime() > best.at.getTime())) best = { value, at };
      });
    }
    return best;
  };
  const src = latest('src');
  const tgt = latest('tgt');
  return {
    sourceSeconds: src?.value,
    targetSeconds: tgt?.value,
    ...(src ? { sourceAt: src.at.toISOString() } : {}),
    ...(tgt ? { targetAt: tgt.at.toISOString() } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// 6. Cleanup

export interface DmsDeleted {
  /** ARNs this call deleted; absent = it was already gone (or being deleted). */
  task?: string;
  sourceEndpoint?: string;
  targetEndpoint?: string;
  replicationInstance?: string;
  /** The task was running and this call stopped it. */
  stoppedTask: boolean;
}

/**
 * Stops the task if it runs (waiting until stopped), deletes it (waiting until it is gone: endpoints
 * and instance cannot be deleted while a task uses them), then the endpoints and the replication
 * instance. Idempotent: what is already gone is skipped; everything gone is success. The instance is
 * left `deleting` (billing stops; AWS finishes within minutes), not waited for.
 */
export async function stopAndDelete(clients: DmsClients, m: DmsMigration, opts: PollOptions = {}): Promise<DmsDeleted> {
  const names = dmsResourceNames(m);
  const deleted: DmsDeleted = { stoppedTask: false };

  const task = await findTask(clients, { id: names.task });
  if (task?.ReplicationTaskArn && task.Status !== 'deleting') {
    const arn = task.ReplicationTaskArn;
    deleted.stoppedTask = (await stopTask(clients, arn, opts)).stopped;
    await pollUntil(
      `replication task ${names.task} (deleting)`,
      async () => {
        const t = await findTask(clients, { id: names.task });
        if (!t) return { done: true, value: undefined };
        if (t.Status === 'deleting') return { done: false, status: 'deleting' };
        try {
          await clients.dms.send(new DeleteReplicationTaskCommand({ ReplicationTaskArn: arn }));
          deleted.task = arn;
        } catch (err) {
          if (errorName(err) === 'ResourceNotFoundFault') return { done: true, value: undefined };
          if (errorName(err) !== 'InvalidResourceStateFault') throw awsFailure(`DeleteReplicationTask ${arn}`, err);
        }
        return { done: false, status: t.Status ?? 'unknown' };
      },
      opts,
    );
  } else if (task) {
    await pollUntil(
      `replication task ${names.task} (deleting)`,
      async () => {
        const t = await findTask(clients, { id: names.task });
        return t ? { done: false, status: t.Status ?? 'deleting' } : { done: true, value: undefined };
      },
      opts,
    );
  }

  for (const [key, id] of [
    ['sourceEndpoint', names.source],
    ['targetEndpoint', names.target],
  ] as const) {
    const e = await findEndpoint(clients, id);
    if (!e?.EndpointArn || e.Status === 'deleting') continue;
    try {
      await clients.dms.send(new DeleteEndpointCommand({ EndpointArn: e.EndpointArn }));
      deleted[key] = e.EndpointArn;
    } catch (err) {
      if (errorName(err) !== 'ResourceNotFoundFault') throw awsFailure(`DeleteEndpoint ${id}`, err);
    }
  }

  await pollUntil(
    `replication instance ${names.instance} (deleting)`,
    async () => {
      const i = await findInstance(clients, names.instance);
      if (!i?.ReplicationInstanceArn || i.ReplicationInstanceStatus === 'deleting') return { done: true, value: undefined };
      try {
        await clients.dms.send(new DeleteReplicationInstanceCommand({ ReplicationInstanceArn: i.ReplicationInstanceArn }));
        deleted.replicationInstance = i.ReplicationInstanceArn;
        return { done: true, value: undefined };
      } catch (err) {
        if (errorName(err) === 'ResourceNotFoundFault') return { done: true, value: undefined };
        // Still creating, or another task still uses it: try again next round.
        if (errorName(err) === 'InvalidResourceStateFault') return { done: false, status: i.ReplicationInstanceStatus ?? 'unknown' };
        throw awsFailure(`DeleteReplicationInstance ${names.instance}`, err);
      }
    },
    opts,
    { intervalMs: 15_000, timeoutMs: 40 * 60_000 },
  );

  return deleted;
}

/** The ARN of this migration's task (the workflow passes the migration id, not ARNs). */
export async function findTaskArn(clients: DmsClients, m: DmsMigration): Promise<string> {
  const task = await findTask(clients, { id: dmsResourceNames(m).task });
  if (!task?.ReplicationTaskArn) {
    throw ApplicationFailure.nonRetryable(
      `DMS task ${dmsResourceNames(m).task} does not exist; was replication started?`,
      'DmsTaskMissing',
    );
  }
  return task.ReplicationTaskArn;
}
