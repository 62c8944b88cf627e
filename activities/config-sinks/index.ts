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
import { EnvFileSink } from './env-file';
import { HerokuConfigSink } from './heroku';
import { SecretsManagerSink } from './secrets-manager';
import { SsmSink } from './ssm';
import type { ConfigSinkClients, ConfigSinkDriver } from './driver';

export type { ConfigSinkClients, ConfigSinkDriver, RestoreReceipt, SwapReceipt } from './driver';

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
