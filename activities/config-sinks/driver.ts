/** What every config sink implements, and the receipts it returns (fingerprints and references, never values). */
import { createHash } from 'node:crypto';
import type { SecretClients } from '../secrets';

/** sha256 prefix of a value, so a human can tell values apart without seeing them. */
export function fingerprint(value: string | undefined): string | null {
  return value === undefined ? null : createHash('sha256').update(value).digest('hex').slice(0, 12);
}

export interface SwapReceipt {
  sink: string;
  key: string;
  /** sha256 prefix of the previous value, so a human can tell values apart without seeing them. */
  previousFingerprint: string | null;
  newFingerprint: string;
  /** Sink-specific references (versions, labels, attachment names, add-on ids): never a value. */
  details?: Record<string, string | number | boolean | null>;
}

export interface RestoreReceipt {
  sink: string;
  restored: boolean;
  fingerprint: string | null;
  details?: Record<string, string | number | boolean | null>;
}

export interface ConfigSinkDriver {
  describe(): string;
  /**
   * Preflight, before anything changes: whether swap, restore and release can work from this worker
   * (the env file's directory exists and is writable, the secret exists, the key to seal a plain config
   * var is there...). Cheap and without side effects. Each problem names the input field
   * (`configSink.path: ...`); none: usable. What may pass by itself (a service unreachable) is thrown.
   */
  check(): Promise<string[]>;
  read(): Promise<string | undefined>;
  swap(migrationId: string, value: string): Promise<SwapReceipt>;
  /** `receipt` is what `swap` returned, when history has it; without it the sink's own record is used. */
  restore(migrationId: string, receipt?: SwapReceipt): Promise<RestoreReceipt>;
  /**
   * Decommission: the rollback path is given up, so what `restore` would need goes (the Heroku
   * rollback attachment of the old add-on, a label, a backup). Idempotent; after it, restore is a no-op.
   */
  release(migrationId: string): Promise<string[]>;
}

/**
 * What the sinks need from the worker: lazily created SSM / Secrets Manager clients, the worker's
 * environment (secret references, PGMIG_SECRET_KEY) and optionally a `fetch` for the Heroku API.
 * `ActivityDeps` satisfies it.
 */
export interface ConfigSinkClients extends SecretClients {
  fetch?: typeof fetch;
}
