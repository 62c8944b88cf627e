/**
 * The application's own password on the target: generated here (or resolved from roles.appPassword),
 * set as a SCRAM-SHA-256 verifier computed on the worker, so that neither the statement nor a server's
 * statement log carries the password, and returned only inside the URL the config sink receives.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { escapeLiteral, type Client } from 'pg';
import { qi } from './pg';

/** PostgreSQL's default (scram_iterations, 16+; fixed in 15). */
export const SCRAM_ITERATIONS = 4096;

/**
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (RFC 5802 / 7677), the form
 * `ALTER ROLE ... PASSWORD` stores as given. The password must be printable ASCII: PostgreSQL applies
 * SASLprep, which leaves such passwords unchanged and which this does not reimplement.
 */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = SCRAM_ITERATIONS): string {
  if (!/^[\x20-\x7e]+$/.test(password)) {
    throw ApplicationFailure.nonRetryable(
      'roles.appPassword: the password must be printable ASCII (the value is not shown)',
      'BadAppPassword',
    );
  }
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** 32 URL-safe characters (192 random bits): nothing to escape in a URL or a dotenv line. */
export function generatePassword(): string {
  return randomBytes(24).toString('base64url');
}

/** Sets `role`'s password by its verifier; the role may log in. Read-write explicitly: at the swap the target is frozen. */
export async function setRolePassword(client: Client, role: string, password: string): Promise<void> {
  await client.query('BEGIN READ WRITE');
  try {
    await client.query(`ALTER ROLE ${qi(role)} WITH LOGIN PASSWORD ${escapeLiteral(scramVerifier(password))}`);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** The target's URL (host, port, database, parameters) as `role` with `password`. */
export function urlAs(targetUrl: string, role: string, password: string): string {
  const url = new URL(targetUrl);
  url.username = encodeURIComponent(role);
  url.password = encodeURIComponent(password);
  return url.toString();
}
