/** Connections to the source and target, with errors classified into retryable and not. */
import { ApplicationFailure } from '@temporalio/common';
import { Client, escapeIdentifier } from 'pg';
import { redact } from '../secrets';

export const qi = escapeIdentifier;
export const qname = (schema: string, name: string): string => `${qi(schema)}.${qi(name)}`;

/** "user@host:port/db": how a database is named in messages; never includes the password. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${decodeURIComponent(u.username)}@${u.hostname}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return '(unparseable connection URL)';
  }
}

export function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
}

/** libpq environment for pg_dump / pg_restore: keeps the password out of argv (and so out of `ps`). */
export function libpqEnv(url: string, applicationName: string): NodeJS.ProcessEnv {
  const u = new URL(url);
  const env: NodeJS.ProcessEnv = {
    PGHOST: u.hostname,
    PGPORT: u.port || '5432',
    PGUSER: decodeURIComponent(u.username),
    PGPASSWORD: decodeURIComponent(u.password),
    PGDATABASE: databaseName(url),
    PGAPPNAME: applicationName,
    PGCONNECT_TIMEOUT: '10',
  };
  const sslmode = u.searchParams.get('sslmode');
  if (sslmode) env.PGSSLMODE = sslmode;
  const rootCert = u.searchParams.get('sslrootcert');
  if (rootCert) env.PGSSLROOTCERT = rootCert;
  return env;
}

/** Refusals a retry does not cure by itself (credentials, pg_hba, a missing database, CONNECT privilege). */
const REJECTED_SQLSTATES: Record<string, string> = {
  '28P01': 'password authentication failed',
  '28000': 'authorization rejected (pg_hba / role cannot log in)',
  '3D000': 'database does not exist',
  '42501': 'insufficient privilege',
};

const TRANSIENT_NET = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'EAI_AGAIN']);

/**
 * Every connection failure is retryable; the rejected and not-found ones carry the types of
 * ACCESS_FAILURE_TYPES (contract/failures.ts), which forward steps' retry policies make final and
 * undos' do not. `transient`: worth retrying at once (preflight's bounded wait).
 */
function classify(err: unknown, label: string, url: string): { failure: ApplicationFailure; transient: boolean } {
  const e = err as { code?: string; message?: string };
  const where = `${label} (${describeUrl(url)})`;
  const message = redact(e.message ?? String(err));
  if (e.code && REJECTED_SQLSTATES[e.code]) {
    return {
      failure: ApplicationFailure.retryable(`${where}: ${REJECTED_SQLSTATES[e.code]}: ${message}`, 'ConnectionRejected'),
      transient: false,
    };
  }
  if (e.code === 'ENOTFOUND') {
    return { failure: ApplicationFailure.retryable(`${where}: host not found: ${message}`, 'HostNotFound'), transient: false };
  }
  if (e.code && TRANSIENT_NET.has(e.code)) {
    return {
      failure: ApplicationFailure.retryable(`${where}: cannot reach the server (${e.code}): ${message}`, 'Unreachable'),
      transient: true,
    };
  }
  return { failure: ApplicationFailure.retryable(`${where}: ${message}`, 'ConnectionError'), transient: true };
}

export interface ConnectOptions {
  label: string;
  applicationName: string;
  /**
   * Keep retrying unreachable servers this long, then fail for good; a refusal (credentials, host not
   * found) fails for good at once (preflight uses this). Without it every failure is left to the
   * caller's retry policy (see contract/failures.ts).
   */
  unreachableForMs?: number;
}

/** Opens a client; session settings make checksums comparable across servers. */
export async function connect(url: string, opts: ConnectOptions): Promise<Client> {
  const deadline = Date.now() + (opts.unreachableForMs ?? 0);
  for (;;) {
    const client = new Client({ connectionString: url, application_name: opts.applicationName, connectionTimeoutMillis: 10_000 });
    client.on('error', () => undefined); // a terminated backend must not crash the worker
    try {
      await client.connect();
      await client.query(
        "SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 1; SET bytea_output = 'hex'",
      );
      return client;
    } catch (err) {
      await client.end().catch(() => undefined);
      const { failure, transient } = classify(err, opts.label, url);
      if (opts.unreachableForMs !== undefined) {
        if (transient && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        throw ApplicationFailure.nonRetryable(failure.message, transient ? 'Unreachable' : failure.type);
      }
      throw failure;
    }
  }
}

export async function withClient<T>(url: string, opts: ConnectOptions, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = await connect(url, opts);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Terminates this migration's own leftover sessions (a killed worker's pg_dump / pg_restore) by application_name. */
export async function terminateByApplicationName(client: Client, applicationNamePrefix: string): Promise<number> {
  const res = await client.query(
    `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n
       FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name LIKE $1 || '%'`,
    [applicationNamePrefix],
  );
  return res.rows[0].n as number;
}
