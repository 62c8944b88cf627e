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

const NON_RETRYABLE_SQLSTATES: Record<string, string> = {
  '28P01': 'password authentication failed',
  '28000': 'authorization rejected (pg_hba / role cannot log in)',
  '3D000': 'database does not exist',
  '42501': 'insufficient privilege',
};

const TRANSIENT_NET = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'EAI_AGAIN']);

function classify(err: unknown, label: string, url: string): Error {
  const e = err as { code?: string; message?: string };
  const where = `${label} (${describeUrl(url)})`;
  const message = redact(e.message ?? String(err));
  if (e.code && NON_RETRYABLE_SQLSTATES[e.code]) {
    return ApplicationFailure.nonRetryable(`${where}: ${NON_RETRYABLE_SQLSTATES[e.code]}: ${message}`, 'ConnectionRejected');
  }
  if (e.code === 'ENOTFOUND') {
    return ApplicationFailure.nonRetryable(`${where}: host not found: ${message}`, 'HostNotFound');
  }
  if (e.code && TRANSIENT_NET.has(e.code)) {
    return ApplicationFailure.retryable(`${where}: cannot reach the server (${e.code}): ${message}`, 'Unreachable');
  }
  return ApplicationFailure.retryable(`${where}: ${message}`, 'ConnectionError');
}

export interface ConnectOptions {
  label: string;
  applicationName: string;
  /** Keep retrying unreachable servers this long, then fail for good (preflight uses this). */
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
      const failure = classify(err, opts.label, url);
      const transient = failure instanceof ApplicationFailure && !failure.nonRetryable;
      if (transient && opts.unreachableForMs !== undefined) {
        if (Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        throw ApplicationFailure.nonRetryable(failure.message, 'Unreachable');
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
