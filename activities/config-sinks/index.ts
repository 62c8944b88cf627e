/**
 * Where the application reads DATABASE_URL from. Every sink keeps the previous value out of history,
 * by reference or encrypted, in a durable place of its own that a retry and a compensation find
 * again without the receipt (a swap whose activity died before returning left none in history):
 *
 * | sink            | the previous value is kept                                                      |
 * | env-file        | a 0600 backup file beside the env file                                          |
 * | ssm             | by reference: a version label `pgmig-<id>-previous` on the parameter's old version |
 * | secrets-manager | by reference: a staging label `pgmig-<id>-previous` on the secret's old version   |
 * | heroku          | by reference: the Postgres add-on itself, attached as the rollback attachment;  |
 * |                 | a plain config var is kept AES-256-GCM encrypted in a config var of the app     |
 *
 * `swap` returns a receipt with fingerprints, versions and names only; `restore(migrationId, receipt?)`
 * puts the previous value back. Both are idempotent: a retried swap keeps the value found by the first
 * attempt, restore twice is harmless, and restore without a swap changes nothing.
 */
import type { ConfigSink } from '../../contract/input';
import type { SecretClients } from '../secrets';
import { EnvFileSink } from './env-file';
import { HerokuConfigSink } from './heroku';
import { SecretsManagerSink } from './secrets-manager';
import { SsmSink } from './ssm';

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

export function openConfigSink(sink: ConfigSink, clients: ConfigSinkClients): ConfigSinkDriver {
  switch (sink.type) {
    case 'env-file':
      return new EnvFileSink(sink.path, sink.key);
    case 'ssm':
      return new SsmSink(clients.ssm, sink.name);
    case 'secrets-manager':
      return new SecretsManagerSink(clients.secretsManager, sink.secretId, sink.jsonKey);
    case 'heroku':
      return new HerokuConfigSink(sink, clients);
  }
}

export { previousLabel } from './names';
