/**
 * AES-256-GCM for the one case where a previous value cannot be kept by reference (a Heroku
 * DATABASE_URL that is a plain config var). The key is the worker's PGMIG_SECRET_KEY (32 random bytes,
 * base64: `openssl rand -base64 32`); it never leaves the worker. The sealed text is bound (GCM
 * additional data) to the migration and the key name, so it cannot be replayed into another one.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';

const PREFIX = 'pgmig:v1:';

export function loadSecretKey(env: NodeJS.ProcessEnv, purpose: string): Buffer {
  const raw = env.PGMIG_SECRET_KEY;
  const hint = 'set PGMIG_SECRET_KEY on the worker to 32 random bytes in base64 (openssl rand -base64 32)';
  if (!raw) throw ApplicationFailure.nonRetryable(`${purpose}; PGMIG_SECRET_KEY is not set on this worker: ${hint}`, 'SecretKeyMissing');
  const key = Buffer.from(raw, 'base64');
  if (key.length !== 32)
    throw ApplicationFailure.nonRetryable(
      `${purpose}; PGMIG_SECRET_KEY is not 32 bytes of base64 (it decodes to ${key.length}): ${hint}`,
      'SecretKeyInvalid',
    );
  return key;
}

export function seal(plain: string, key: Buffer, context: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return `${PREFIX}${iv.toString('base64')}:${cipher.getAuthTag().toString('base64')}:${body.toString('base64')}`;
}

export function unseal(sealed: string, key: Buffer, context: string): string {
  const parts = sealed.startsWith(PREFIX) ? sealed.slice(PREFIX.length).split(':') : [];
  if (parts.length !== 3) throw ApplicationFailure.nonRetryable('sealed value is not in the pgmig:v1 format', 'SealedValueCorrupt');
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(parts[0], 'base64'));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(Buffer.from(parts[1], 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(parts[2], 'base64')), decipher.final()]).toString('utf8');
  } catch {
    throw ApplicationFailure.nonRetryable(
      'sealed value cannot be decrypted: PGMIG_SECRET_KEY differs from the key used at the swap, or the value was altered',
      'SealedValueUndecryptable',
    );
  }
}
