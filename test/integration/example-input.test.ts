/**
 * examples/local-dump-restore.json migrates on the local stack as written: only its databases are
 * redirected (the `database` of its secret references) to this file's own, and its config sink to
 * this file's own application config, so the stack's appdb stays as other files expect it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MigrationInputDraft } from '../../contract/input';
import { openSandbox, type Sandbox } from '../helpers/harness';
import { migrationResult } from '../../signals/outcome';

let sandbox: Sandbox;
let example: MigrationInputDraft;

beforeAll(async () => {
  sandbox = await openSandbox('example');
  example = JSON.parse(readFileSync(path.join(__dirname, '../../examples/local-dump-restore.json'), 'utf8')) as MigrationInputDraft;
  // The worker resolves the example's references from its environment, as `npm run worker` does from .stack/stack.env.
  process.env.SOURCE_DATABASE_URL ??= sandbox.env.SOURCE_DATABASE_URL;
  process.env.TARGET_DATABASE_URL ??= sandbox.env.TARGET_DATABASE_URL;
});

afterAll(async () => {
  await sandbox?.close();
});

describe('examples/local-dump-restore.json', () => {
  it('completes a migration on the stack', async () => {
    const input = {
      ...example,
      migrationId: `example-${sandbox.id.replace(/_/g, '-')}`,
      source: { url: { ...(example.source.url as { env: string }), database: `src_${sandbox.id}` } },
      target: { url: { ...(example.target.url as { env: string }), database: `tgt_${sandbox.id}` } },
      configSink: { type: 'env-file', path: sandbox.configFile, key: 'DATABASE_URL' },
    } satisfies MigrationInputDraft;
    const handle = await sandbox.start(input);
    await handle.executeUpdate('approve', { args: [{ approver: 'alice', gate: 'go-live', reason: 'the example' }] });
    const result = await migrationResult(handle);
    expect(result).toMatchObject({ outcome: 'completed', method: 'dump-restore', verification: 'passed' });
    expect(sandbox.configuredUrl()).toContain(`/tgt_${sandbox.id}`);
  });
});
