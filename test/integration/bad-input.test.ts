/**
 * Bad input fails at once with a clear error naming the field or the problem, and nothing is changed:
 * the config file, the source's writability and the target's emptiness are as before.
 */
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSandbox, query, sourceWritable, targetTableCount, type Sandbox } from '../helpers/harness';

let sandbox: Sandbox;
let config: string;

beforeAll(async () => {
  sandbox = await openSandbox('badinput');
  config = sandbox.configText();
});

afterAll(async () => {
  await sandbox?.close();
});

async function failureOf(handle: WorkflowHandle): Promise<string> {
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  return (err as WorkflowFailedError).cause?.message ?? '';
}

async function expectNothingChanged(): Promise<void> {
  expect(sandbox.configText()).toBe(config);
  expect(await sourceWritable(sandbox)).toBe(true);
  expect(await targetTableCount(sandbox)).toBe(0);
}

function withEnv(name: string, url: string): { env: string } {
  process.env[name] = url;
  return { env: name };
}

describe('bad input', () => {
  it('refuses a literal connection string where a secret reference belongs, naming the field', async () => {
    const input = sandbox.input();
    const handle = await sandbox.start({ ...input, source: { url: 'postgres://app:not-a-real-password@127.0.0.1/db' as never } });
    const message = await failureOf(handle);
    expect(message).toMatch(/source\.url: must be a secret reference/);
    expect(message).not.toContain('not-a-real-password');
    await expectNothingChanged();
  });

  it('names each missing or malformed field', async () => {
    const { configSink: _omitted, ...input } = sandbox.input();
    const handle = await sandbox.start({
      ...input,
      parallelJobs: 0,
      source: { url: { env: 'lower-case-is-fine but not spaces' } },
    } as never);
    const message = await failureOf(handle);
    expect(message).toMatch(/configSink/);
    expect(message).toMatch(/parallelJobs/);
    expect(message).toMatch(/source\.url/);
    await expectNothingChanged();
  });

  it('reports an unreachable host clearly', async () => {
    const url = new URL(sandbox.sourceUrl);
    url.port = '1';
    const handle = await sandbox.start(sandbox.input({ source: { url: withEnv(`${sandbox.sourceRef}_UNREACHABLE`, url.toString()) } }));
    const message = await failureOf(handle);
    expect(message).toMatch(/source \(app@127\.0\.0\.1:1\/src_\w+\): cannot reach the server \(ECONNREFUSED\)/);
    expect(message).not.toContain(decodeURIComponent(url.password));
    await expectNothingChanged();
  }, 60_000);

  it('reports a wrong password without echoing it', async () => {
    const url = new URL(sandbox.sourceUrl);
    url.password = 'WrongPassword123456';
    const handle = await sandbox.start(sandbox.input({ source: { url: withEnv(`${sandbox.sourceRef}_WRONGPW`, url.toString()) } }));
    const message = await failureOf(handle);
    expect(message).toMatch(/password authentication failed/);
    expect(message).not.toContain('WrongPassword123456');
    await expectNothingChanged();
  });

  it('reports a secret reference that resolves to nothing', async () => {
    const handle = await sandbox.start(sandbox.input({ target: { url: { env: 'NO_SUCH_VARIABLE_ANYWHERE' } } }));
    expect(await failureOf(handle)).toMatch(/target\.url: secret reference env:NO_SUCH_VARIABLE_ANYWHERE resolved to nothing/);
    await expectNothingChanged();
  });

  it('refuses a non-empty target before touching anything', async () => {
    await query(sandbox.targetUrl, 'CREATE TABLE leftover (id int)');
    try {
      const handle = await sandbox.start(sandbox.input());
      const message = await failureOf(handle);
      expect(message).toMatch(
        /preflight found 1 blocker\(s\); nothing was changed: target database "tgt_\w+" is not empty \(1 user objects\)/,
      );
      expect(sandbox.configText()).toBe(config);
      expect(await sourceWritable(sandbox)).toBe(true);
      expect((await query(sandbox.targetUrl, 'SELECT count(*)::int AS n FROM leftover'))[0]).toEqual({ n: 0 });
    } finally {
      await query(sandbox.targetUrl, 'DROP TABLE leftover');
    }
  });
});
