/**
 * The source and target endpoints (EngineName postgres). Credentials come either parsed from
 * connection URLs the caller resolved, or as a Secrets Manager secret DMS reads itself (no password
 * is sent). URLs are registered with `rememberSecret` before anything else happens, and every
 * message leaving this module goes through `redact`: no password appears in a result or failure.
 */
import {
  CreateEndpointCommand,
  DescribeEndpointsCommand,
  type CreateEndpointMessage,
  type Endpoint,
  type PostgreSQLSettings,
} from '@aws-sdk/client-database-migration-service';
import { ApplicationFailure } from '@temporalio/common';
import { awsErrorName } from '../../aws/failure';
import { pollUntil, type PollOptions } from '../../aws/poll';
import { describeUrl } from '../../database/pg';
import { redact, rememberSecret } from '../../secrets';
import { dmsFailure, invalid } from './failure';
import { describeOne, dmsResourceNames, resourceTags, type DmsClients, type DmsMigration } from './resources';

/** The endpoint of this identifier, or undefined when there is none. */
export async function findEndpoint(clients: DmsClients, identifier: string): Promise<Endpoint | undefined> {
  return describeOne(`DescribeEndpoints ${identifier}`, async () => {
    const out = await clients.dms.send(new DescribeEndpointsCommand({ Filters: [{ Name: 'endpoint-id', Values: [identifier] }] }));
    return out.Endpoints?.find((e) => e.EndpointIdentifier === identifier);
  });
}

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
      Tags: resourceTags(m, role),
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
      if (awsErrorName(err) === 'ResourceAlreadyExistsFault') continue;
      throw dmsFailure(`CreateEndpoint ${id} (${req.describe})`, err);
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
