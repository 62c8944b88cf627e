/**
 * Bad input fails at once with a clear error naming the field or the problem, and nothing is changed:
 * the config file, the source's writability and the target's emptiness are as before. Oversized or
 * malformed decisions are refused by the Update validator (or recorded, clipped, as refused Signals)
 * and the migration goes on.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MigrationInputDraft } from '../../contract/input';
import { approveSignal, approveUpdate, rejectSignal, statusQuery } from '../../signals';
import {
  SHAPES_ONLY,
  historyText,
  openSandbox,
  query,
  sourceWritable,
  targetTableCount,
  untilStatus,
  type Sandbox,
} from '../helpers/harness';
import { migrationResult } from '../../signals/outcome';

let sandbox: Sandbox;
let config: string;

beforeAll(async () => {
  sandbox = await openSandbox('badinput', { scale: SHAPES_ONLY });
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

  describe('hardened input: each refused with its field named, before anything changes', () => {
    const password = 'pw-Never-Echoed-42';
    const literal = () => {
      const url = new URL(sandbox.targetUrl);
      url.password = password;
      return url.toString();
    };

    it.each<[string, () => Partial<MigrationInputDraft>, RegExp]>([
      [
        'a URL in an ssm reference',
        () => ({ target: { url: { ssm: literal() } } }),
        /target\.url\.ssm: must name an SSM parameter; a connection URL or credentials are refused/,
      ],
      [
        'credentials in a secretsManager reference',
        () => ({ source: { url: { secretsManager: `app:${password}@db.example.com` } } }),
        /source\.url\.secretsManager: must name a Secrets Manager secret; a connection URL or credentials are refused/,
      ],
      ['a URL as an env name', () => ({ target: { url: { env: literal() } } }), /target\.url\.env: must be an environment variable name/],
      [
        'a password in target.urlParams',
        () => ({ target: { url: { env: sandbox.targetRef }, urlParams: { sslmode: 'disable', password } } }),
        /target\.urlParams\.password: credentials and connection targets do not belong in urlParams/,
      ],
      [
        'a URL in target.urlParams',
        () => ({ target: { url: { env: sandbox.targetRef }, urlParams: { options: literal() } } }),
        /target\.urlParams\.options: looks like a URL, credentials or a secret token/,
      ],
      [
        'a duration without a unit',
        () => ({ gates: { 'go-live': { timeout: '30' } } }),
        /gates\.go-live\.timeout: needs a unit.*\(units: ms, s, m, h, d, w\)/,
      ],
      [
        'a gate timeout over 30 days',
        () => ({ gates: { 'go-live': { timeout: '10000d' } } }),
        /gates\.go-live\.timeout: must be at most 30d/,
      ],
      ['a hold over a year', () => ({ hold: { duration: '400d' } }), /hold\.duration: must be at most 365d/],
      ['a freeze drain over 10 minutes', () => ({ freeze: { drainTimeout: '1h' } }), /freeze\.drainTimeout: must be at most 10m/],
      [
        'a 10 KB approver name in a gate',
        () => ({ gates: { 'go-live': { timeout: '2m', approvers: ['x'.repeat(10_240)] } } }),
        /gates\.go-live\.approvers\.0: must be at most 200 characters \(got 10240\)/,
      ],
    ])('refuses %s', async (_what, overrides, expected) => {
      const handle = await sandbox.start(sandbox.input(overrides()));
      const message = await failureOf(handle);
      expect(message).toMatch(/^invalid migration input: /);
      expect(message).toMatch(expected);
      expect(message).not.toContain(password);
      expect(await historyText(handle)).not.toMatch(/"activityType":\{"name":"preflight"/);
      await expectNothingChanged();
    });

    it('names the variable when an env reference holds no postgres URL (never the value)', async () => {
      const handle = await sandbox.start(sandbox.input({ source: { url: withEnv(`${sandbox.sourceRef}_NOT_A_URL`, `base ${password}`) } }));
      const message = await failureOf(handle);
      expect(message).toContain(`source.url: env:${sandbox.sourceRef}_NOT_A_URL does not hold a postgres:// URL`);
      expect(message).not.toContain(password);
      expect(message).not.toMatch(/host not found/);
      await expectNothingChanged();
    }, 120_000);

    it('finds application roles that do not exist, or that the source role cannot freeze, in preflight', async () => {
      const handle = await sandbox.start(
        sandbox.input({ source: { url: { env: sandbox.sourceRef }, appRoles: ['app', 'no_such_role', 'app_worker'] } }),
      );
      const message = await failureOf(handle);
      expect(message).toMatch(/preflight found 2 blocker\(s\); nothing was changed: /);
      expect(message).toContain('source.appRoles: "no_such_role" does not exist on the source');
      expect(message).toMatch(/source\.appRoles: "app" cannot make role "app_worker" read-only in database "src_\w+" \(permission denied/);
      expect(message).not.toMatch(/"app" does not exist|role "app" read-only/);
      expect(
        await query(
          sandbox.sourceAdminUrl,
          "SELECT 1 FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = 'app_worker'",
        ),
      ).toEqual([]);
      await expectNothingChanged();
    });

    it('finds an env-file config sink in a missing directory in preflight', async () => {
      const missing = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgmig-badsink-')), 'no-such-dir', 'app.env');
      const handle = await sandbox.start(sandbox.input({ configSink: { type: 'env-file', path: missing } }));
      const message = await failureOf(handle);
      expect(message).toMatch(
        /preflight found 1 blocker\(s\); nothing was changed: configSink\.path: directory .*no-such-dir does not exist on this worker/,
      );
      await expectNothingChanged();
    });

    it('finds a Secrets Manager config sink whose secret does not exist in preflight', async () => {
      // The worker's Secrets Manager client comes from the environment: point it at moto.
      const { AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY } = sandbox.env;
      Object.assign(process.env, { AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY });
      const secretId = `pgmig-test/${sandbox.id}/no-such-secret`;
      const handle = await sandbox.start(sandbox.input({ configSink: { type: 'secrets-manager', secretId } }));
      const message = await failureOf(handle);
      expect(message).toContain(`configSink.secretId: Secrets Manager secret ${secretId} does not exist`);
      await expectNothingChanged();
    });
  });
});

describe('bounded messages', () => {
  let gated: Sandbox;

  beforeAll(async () => {
    gated = await openSandbox('messages');
  });

  afterAll(async () => {
    await gated?.close();
  });

  async function refusal(promise: Promise<unknown>): Promise<string> {
    const err = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
    return (err as WorkflowUpdateFailedError).cause?.message ?? '';
  }

  it('refuses a 1.5 MB reason and a 10 KB approver in the validator, records an oversized signal clipped, and goes on', async () => {
    const handle = await gated.start(gated.input({ gates: { 'go-live': { timeout: '5m' } } }));
    await untilStatus(handle, (s) => s.pendingGate?.gate === 'go-live', 'the go-live gate open');

    const hugeReason = 'r'.repeat(1_500_000);
    const longApprover = 'a'.repeat(10 * 1024);
    expect(await refusal(handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', reason: hugeReason }] }))).toBe(
      'reason: must be at most 2000 characters (got 1500000)',
    );
    expect(await refusal(handle.executeUpdate(approveUpdate, { args: [{ approver: longApprover, gate: 'go-live' }] }))).toBe(
      'approver: must be at most 200 characters (got 10240)',
    );
    expect(await refusal(handle.executeUpdate(approveUpdate, { args: [{ approver: 'eve\nalice approved', gate: 'go-live' }] }))).toMatch(
      /^approver: must not contain control characters/,
    );
    // Refused Updates never reach history.
    expect((await historyText(handle)).length).toBeLessThan(200_000);

    // A Signal lands in history before the workflow sees it; what the workflow keeps of it is bounded.
    await handle.signal(rejectSignal, { approver: longApprover, gate: 'go-live', reason: 'r'.repeat(1_000_000) });
    for (let i = 0; i < 25; i++) await handle.signal(approveSignal, { approver: `bot-${i}`, gate: 'no-such-gate' });
    const status = await untilStatus(
      handle,
      (s) => (s.refusedDecisionsDropped ?? 0) + s.refusedDecisions.length >= 26,
      'the signals recorded as refused',
    );
    expect(status.refusedDecisions).toHaveLength(20);
    expect(status.refusedDecisionsDropped).toBe(6);
    expect(status.phase).toBe('awaiting-go-live');
    expect(status.decisions).toEqual([]);
    expect(JSON.stringify(status).length).toBeLessThan(100_000);
    for (const refused of status.refusedDecisions) expect(JSON.stringify(refused).length).toBeLessThan(1_500);
    expect(status.refusedDecisions.at(-1)).toMatchObject({
      payload: { approver: 'bot-24', gate: 'no-such-gate' },
      reason: expect.stringMatching(/^gate: unknown gate "no-such-gate"/),
    });
    const described = await handle.describe();
    expect(JSON.stringify(described.memo ?? {}).length).toBeLessThan(10_000);

    // A proper approval still decides the gate, and the migration completes.
    const decision = await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live', reason: 'looks good' }] });
    expect(decision).toMatchObject({ gate: 'go-live', approved: true, approver: 'alice', reason: 'looks good', via: 'update' });
    const result = await migrationResult(handle);
    expect(result.outcome).toBe('completed');
    expect(result.decisions).toEqual([expect.objectContaining({ approver: 'alice', approved: true })]);
    expect((await handle.query(statusQuery)).outcome).toBe('completed');
  });

  it('records the first oversized signal, clipped, with the field named', async () => {
    await gated.resetForNextMigration();
    const handle = await gated.start(gated.input({ gates: { 'go-live': { timeout: '5m' } } }));
    await handle.signal(approveSignal, { approver: 'a'.repeat(10 * 1024), gate: 'go-live', reason: 'r'.repeat(1_500_000) });
    const status = await untilStatus(handle, (s) => s.refusedDecisions.length === 1, 'the signal recorded as refused');
    const [refused] = status.refusedDecisions;
    expect(refused.reason).toBe(
      'approver: must be at most 200 characters (got 10240); reason: must be at most 2000 characters (got 1500000)',
    );
    expect(refused.payload.approver).toMatch(/^a{200}\.\.\. \(10240 characters\)$/);
    expect(refused.payload.reason).toMatch(/^r{200}\.\.\. \(1500000 characters\)$/);
    expect(status.preApprovals).toEqual([]);
    await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });
    expect((await migrationResult(handle)).outcome).toBe('completed');
  });
});
