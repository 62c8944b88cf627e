/**
 * Where the application reads DATABASE_URL from. Every sink keeps the previous value out of history:
 * `swap` stores it (for the env file: a 0600 backup beside the file) and returns a receipt that holds
 * only a fingerprint; `restore` puts it back. Both are idempotent.
 */
import type { ConfigSink } from '../../contract/input';
import { EnvFileSink } from './env-file';

export interface SwapReceipt {
  sink: string;
  key: string;
  /** sha256 prefix of the previous value, so a human can tell values apart without seeing them. */
  previousFingerprint: string | null;
  newFingerprint: string;
}

export interface RestoreReceipt {
  sink: string;
  restored: boolean;
  fingerprint: string | null;
}

export interface ConfigSinkDriver {
  describe(): string;
  read(): Promise<string | undefined>;
  swap(migrationId: string, value: string): Promise<SwapReceipt>;
  restore(migrationId: string): Promise<RestoreReceipt>;
}

export function openConfigSink(sink: ConfigSink): ConfigSinkDriver {
  switch (sink.type) {
    case 'env-file':
      return new EnvFileSink(sink.path, sink.key);
  }
}
