/**
 * The stack's generated passwords, kept in the scratch dir (0600) so every `up` reuses them:
 * the clusters keep the roles' passwords across restarts, and the env file must match them.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { readJson, writeFileAtomic } from './files';

export interface Secrets {
  sourceAdmin: string;
  app: string;
  appWorker: string;
  /** heroku_app: a plain owner without REPLICATION, as Heroku's default credential really is (method triggers). */
  herokuApp: string;
  targetAdmin: string;
  rdsMaster: string;
}

function newPassword(): string {
  return crypto.randomBytes(18).toString('base64url'); // 24 url-safe chars
}

/** The saved passwords, with any missing one generated (and the file rewritten only then). */
export function loadOrCreateSecrets(file: string): Secrets {
  const existing = readJson<Partial<Secrets>>(file) ?? {};
  const secrets: Secrets = {
    sourceAdmin: existing.sourceAdmin ?? newPassword(),
    app: existing.app ?? newPassword(),
    appWorker: existing.appWorker ?? newPassword(),
    herokuApp: existing.herokuApp ?? newPassword(),
    targetAdmin: existing.targetAdmin ?? newPassword(),
    rdsMaster: existing.rdsMaster ?? newPassword(),
  };
  if (JSON.stringify(existing) !== JSON.stringify(secrets)) {
    writeFileAtomic(file, JSON.stringify(secrets, null, 2) + '\n', 0o600);
  }
  fs.chmodSync(file, 0o600);
  return secrets;
}
