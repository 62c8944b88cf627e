/**
 * Resolves secret references inside activities and keeps every resolved value in a redaction set,
 * so no error, log line or heartbeat that leaves an activity can carry a password.
 */
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ApplicationFailure } from '@temporalio/common';
import { describeRef, type SecretRef } from '../contract/input';

export interface SecretClients {
  ssm: () => SSMClient;
  secretsManager: () => SecretsManagerClient;
  env: NodeJS.ProcessEnv;
}

const knownSecrets = new Set<string>();

/** Registers a value (and, for URLs, its password part) so `redact` removes it from any text. */
export function rememberSecret(value: string): void {
  if (value.length < 4) return;
  knownSecrets.add(value);
  try {
    const url = new URL(value);
    if (url.password) {
      knownSecrets.add(url.password);
      knownSecrets.add(decodeURIComponent(url.password));
    }
  } catch {
    // not a URL: the whole value is the secret
  }
}

export function redact(text: string): string {
  let out = text;
  for (const secret of knownSecrets) {
    if (secret.length >= 4) out = out.split(secret).join('***');
  }
  // Belt and braces: any userinfo password in a URL-looking string.
  return out.replace(/(postgres(?:ql)?:\/\/[^:/@\s]+:)[^@\s]+@/g, '$1***@');
}

/** What a reference must hold: a PostgreSQL connection URL (every database field), or an opaque token (API keys). */
export type SecretKind = 'postgres-url' | 'token';

/** A postgres:// or postgresql:// URL that parses (what `pg` would otherwise misread, e.g. as host "base"). */
export function isPostgresUrl(value: string): boolean {
  if (!/^postgres(ql)?:\/\//i.test(value)) return false;
  try {
    new URL(value);
    return true;
  } catch {
    return false;
  }
}

export function createSecretResolver(clients: SecretClients) {
  return async function resolveSecret(ref: SecretRef, field: string, kind: SecretKind = 'postgres-url'): Promise<string> {
    let value: string | undefined;
    if ('env' in ref) {
      value = clients.env[ref.env];
    } else if ('ssm' in ref) {
      const out = await clients.ssm().send(new GetParameterCommand({ Name: ref.ssm, WithDecryption: true }));
      value = out.Parameter?.Value;
    } else {
      const out = await clients.secretsManager().send(new GetSecretValueCommand({ SecretId: ref.secretsManager }));
      value = out.SecretString;
    }
    // Retryable, typed: forward steps' retry policies make these final, undos keep trying (contract/failures.ts).
    if (!value) {
      throw ApplicationFailure.retryable(
        `${field}: secret reference ${describeRef(ref)} resolved to nothing on this worker`,
        'SecretNotFound',
      );
    }
    rememberSecret(value);
    // Named by field and reference, never by value (it may be a password pasted in the wrong place).
    if (kind === 'postgres-url' && !isPostgresUrl(value)) {
      throw ApplicationFailure.retryable(
        `${field}: ${describeRef(ref)} does not hold a postgres:// URL (the value is not shown)`,
        'SecretNotUrl',
      );
    }
    if (ref.database) {
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        throw ApplicationFailure.retryable(
          `${field}: ${describeRef(ref)} is not a connection URL, so "database" cannot apply`,
          'SecretNotUrl',
        );
      }
      url.pathname = `/${encodeURIComponent(ref.database)}`;
      return url.toString();
    }
    return value;
  };
}
export type SecretResolver = ReturnType<typeof createSecretResolver>;

/** Wraps every activity so that no error leaving it can carry a resolved secret. */
export function redactingActivities<T extends object>(activities: T): T {
  const wrap =
    (fn: (...args: unknown[]) => Promise<unknown>) =>
    async (...args: unknown[]) => {
      try {
        return await fn(...args);
      } catch (err) {
        if (err instanceof ApplicationFailure) {
          const clean = redact(err.message);
          if (clean === err.message) throw err;
          throw new ApplicationFailure(clean, err.type, err.nonRetryable, err.details);
        }
        const e = err as Error;
        // A cancellation must stay one, or Temporal would retry the activity instead of ending it.
        if (e?.name === 'CancelledFailure') throw err;
        throw ApplicationFailure.retryable(redact(e?.message ?? String(err)), e?.name ?? 'Error');
      }
    };
  return Object.fromEntries(Object.entries(activities).map(([name, fn]) => [name, wrap(fn as (...a: unknown[]) => Promise<unknown>)])) as T;
}
