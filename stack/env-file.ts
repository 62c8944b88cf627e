/**
 * `<repo>/.stack/stack.env`: the stack's endpoints and credentials as one dotenv file, which the
 * worker, the CLI and the tests load. Its path is fixed (not per STACK_DIR) so they find it
 * without being told where the stack runs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { repoRoot, type StackPorts } from './config';
import { writeFileAtomic } from './files';
import { pgBinDir } from './pg-exec';
import type { Secrets } from './secrets';

export const STACK_ENV_KEYS = [
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_UI_URL',
  'SOURCE_DATABASE_URL',
  'SOURCE_WORKER_DATABASE_URL',
  'SOURCE_HEROKU_DATABASE_URL',
  'TARGET_DATABASE_URL',
  'SOURCE_ADMIN_URL',
  'TARGET_ADMIN_URL',
  'AWS_ENDPOINT_URL',
  'AWS_REGION',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'PG_BIN',
  'STACK_DIR',
] as const;

export type StackEnvKey = (typeof STACK_ENV_KEYS)[number];
/** Contents of `.stack/stack.env`. */
export type StackEnv = Record<StackEnvKey, string>;

/**
 * `<repo>/.stack/stack.env`, or env STACK_ENV_FILE: a second stack on other ports (a parallel test
 * run from the same checkout) keeps its endpoints, and the workflow bundle beside them, apart.
 */
export function stackEnvPath(): string {
  return process.env.STACK_ENV_FILE || path.join(repoRoot(), '.stack', 'stack.env');
}

/** The env of a stack on `ports` with `s`'s passwords (moto takes any AWS credentials: fixed dummies). */
export function buildEnv(dir: string, ports: StackPorts, s: Secrets): StackEnv {
  const src = `127.0.0.1:${ports.source}`;
  const tgt = `127.0.0.1:${ports.target}`;
  return {
    TEMPORAL_ADDRESS: `127.0.0.1:${ports.temporal}`,
    TEMPORAL_NAMESPACE: 'default',
    TEMPORAL_UI_URL: `http://127.0.0.1:${ports.temporalUi}`,
    SOURCE_DATABASE_URL: `postgres://app:${s.app}@${src}/appdb`,
    SOURCE_WORKER_DATABASE_URL: `postgres://app_worker:${s.appWorker}@${src}/appdb`,
    SOURCE_HEROKU_DATABASE_URL: `postgres://heroku_app:${s.herokuApp}@${src}/appdb`,
    TARGET_DATABASE_URL: `postgres://rds_master:${s.rdsMaster}@${tgt}/appdb`,
    SOURCE_ADMIN_URL: `postgres://postgres:${s.sourceAdmin}@${src}/postgres`,
    TARGET_ADMIN_URL: `postgres://postgres:${s.targetAdmin}@${tgt}/postgres`,
    AWS_ENDPOINT_URL: `http://127.0.0.1:${ports.moto}`,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    PG_BIN: pgBinDir(),
    STACK_DIR: dir,
  };
}

/** Write the env file 0600 (it holds passwords), keys in STACK_ENV_KEYS order. */
export function writeEnvFile(env: StackEnv): void {
  const file = stackEnvPath();
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const lines = [
    '# Local stack endpoints and credentials, written by `npm run stack -- up` (stack/env-file.ts).',
    '# Local-only, randomly generated passwords; do not commit (.stack/ is gitignored).',
    ...STACK_ENV_KEYS.map((k) => `${k}=${env[k]}`),
    '',
  ];
  writeFileAtomic(file, lines.join('\n'), 0o600);
}

/** Parse `.stack/stack.env` (or `file`). Throws a clear error if the stack was never brought up. */
export function loadStackEnv(file: string = stackEnvPath()): StackEnv {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new Error(`Stack env file ${file} not found. Start the local stack first: npm run stack -- up`);
  }
  const parsed = parseDotenv(text);
  const missing = STACK_ENV_KEYS.filter((k) => !parsed[k]);
  if (missing.length > 0) {
    throw new Error(`Stack env file ${file} lacks ${missing.join(', ')}. Re-create it: npm run stack -- up`);
  }
  const env = {} as StackEnv;
  for (const k of STACK_ENV_KEYS) env[k] = parsed[k]!;
  return env;
}
