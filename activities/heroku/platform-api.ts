/**
 * A small client for the Heroku Platform API (https://devcenter.heroku.com/articles/platform-api-reference):
 * `fetch` with the version-3 Accept header and a bearer token, answers mapped to Temporal failures,
 * and every message redacted. The token is resolved from a SecretRef inside the activity and never
 * appears in a result, a heartbeat or an error.
 *
 * Error mapping: 400/401/403/404/422 are the caller's problem (bad token, no access, no such app,
 * refused change): non-retryable, with Heroku's `id` and message. 429 (rate limit), 5xx, timeouts and
 * network errors are retryable: Temporal's retry policy backs off.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { SecretRef } from '../../contract/input';
import { createSecretResolver, redact, rememberSecret, type SecretClients } from '../secrets';

export const HEROKU_API_URL = 'https://api.heroku.com';
export const HEROKU_ACCEPT = 'application/vnd.heroku+json; version=3';

export type HerokuMethod = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** The parts of the resources this product reads (the real API returns more fields). */
export interface HerokuApp {
  id: string;
  name: string;
  maintenance: boolean;
}

export interface HerokuAddonRef {
  id: string;
  name: string;
  app?: { id: string; name: string };
}

export interface HerokuAttachment {
  id: string;
  name: string;
  addon: HerokuAddonRef;
  app: { id: string; name: string };
}

export interface HerokuFormation {
  id?: string;
  type: string;
  quantity: number;
  size?: string;
}

export interface HerokuDyno {
  id: string;
  name: string;
  type: string;
  state: string;
  created_at: string;
  updated_at?: string;
  size?: string;
}

export interface HerokuClientOptions {
  token: string;
  /** Base URL of the Platform API; the stand-in server in tests. */
  apiUrl?: string;
  /** Per request; a timeout is retryable. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** Details kept on a Heroku failure (no secrets: status, Heroku's error id, method, path). */
export interface HerokuFailureDetails {
  status: number;
  id: string | null;
  method: HerokuMethod;
  path: string;
}

const NON_RETRYABLE_STATUS = new Set([400, 401, 403, 404, 405, 409, 422]);

/** A failure for a non-2xx answer; exported for the unit tests. */
export function herokuFailure(status: number, method: HerokuMethod, path: string, body: unknown): ApplicationFailure {
  const payload = (body && typeof body === 'object' ? body : {}) as { id?: unknown; message?: unknown };
  const id = typeof payload.id === 'string' ? payload.id : null;
  const message = typeof payload.message === 'string' ? payload.message : typeof body === 'string' && body ? body.slice(0, 300) : '';
  const text = redact(`Heroku API ${method} ${path}: ${status}${id ? ` ${id}` : ''}${message ? `: ${message}` : ''}`);
  const details: HerokuFailureDetails = { status, id, method, path };
  if (NON_RETRYABLE_STATUS.has(status)) return ApplicationFailure.nonRetryable(text, 'HerokuApiError', details);
  // 429 rate limit, 5xx, anything unexpected: let the retry policy back off.
  return ApplicationFailure.retryable(text, status === 429 ? 'HerokuRateLimited' : 'HerokuApiUnavailable', details);
}

export class HerokuClient {
  readonly apiUrl: string;
  private readonly token: string;
  private readonly timeoutMs: number;
  private readonly fetchFn: typeof fetch;

  constructor(opts: HerokuClientOptions) {
    if (!opts.token) throw ApplicationFailure.nonRetryable('Heroku API token is empty', 'HerokuTokenMissing');
    this.token = opts.token;
    rememberSecret(opts.token);
    this.apiUrl = (opts.apiUrl ?? HEROKU_API_URL).replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.fetchFn = opts.fetch ?? fetch;
  }

  /** Sends one request; resolves with the parsed JSON body of a 2xx answer. */
  async request<T>(method: HerokuMethod, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await this.fetchFn(`${this.apiUrl}${path}`, {
        method,
        headers: {
          Accept: HEROKU_ACCEPT,
          Authorization: `Bearer ${this.token}`,
          'User-Agent': 'pg-cutover',
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const why =
        e.name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : `${e.message}${e.cause?.code ? ` (${e.cause.code})` : ''}`;
      throw ApplicationFailure.retryable(redact(`Heroku API ${method} ${path}: ${why}`), 'HerokuApiUnreachable');
    }
    const text = await res.text();
    let parsed: unknown = text;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON: keep the text (an HTML error page from a proxy, say)
      }
    }
    if (!res.ok) throw herokuFailure(res.status, method, path, parsed);
    return (text ? parsed : {}) as T;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }
  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }
  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, body);
  }
  delete<T>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }
}

/** `/apps/{app}` with the name or id escaped. */
export function appPath(app: string, rest = ''): string {
  return `/apps/${encodeURIComponent(app)}${rest}`;
}

/** Where a Heroku app is and which secret reference holds the API token (`{"env":"HEROKU_API_KEY"}`). */
export interface HerokuTarget {
  app: string;
  token: SecretRef;
  apiUrl?: string;
}

/** Resolves the token reference (inside an activity) and returns a client. */
export async function openHerokuClient(
  target: { token: SecretRef; apiUrl?: string },
  clients: SecretClients & { fetch?: typeof fetch },
  field = 'heroku.token',
): Promise<HerokuClient> {
  const token = await createSecretResolver(clients)(target.token, field, 'token');
  return new HerokuClient({ token, apiUrl: target.apiUrl, fetch: clients.fetch });
}
