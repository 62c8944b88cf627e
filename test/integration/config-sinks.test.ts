/**
 * The config sinks against real services: SSM and Secrets Manager on the stack's moto server through
 * the real AWS SDK clients, Heroku through the Platform API stand-in (test/heroku-stand-in.ts).
 * For each: swap sets the value, the receipt holds no secret, a retried swap is harmless, restore with
 * and without the receipt puts back exactly the previous value, restore twice and restore without a
 * swap change nothing.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import {
  DescribeParametersCommand,
  GetParameterCommand,
  PutParameterCommand,
  SSMClient,
  UnlabelParameterVersionCommand,
} from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openConfigSink, type ConfigSinkClients } from '../../activities/config-sinks';
import { backupConfigVar, rollbackAttachmentName } from '../../activities/config-sinks/heroku';
import { ConfigSink } from '../../contract/input';
import { loadStackEnv } from '../../stack';
import { startHerokuStandIn, type HerokuStandIn } from '../heroku-stand-in';
import { motoConfig } from '../helpers/moto';
import { applicationFailureOf } from '../helpers/expect';

const env = loadStackEnv();
const ssm = new SSMClient(motoConfig(env));
const sm = new SecretsManagerClient(motoConfig(env));
const run = randomBytes(3).toString('hex');
const secretKey = randomBytes(32).toString('base64');
const herokuToken = `HRKU-${randomBytes(18).toString('hex')}`;

function clients(extra: NodeJS.ProcessEnv = {}): ConfigSinkClients {
  return { env: { HEROKU_TEST_TOKEN: herokuToken, PGMIG_SECRET_KEY: secretKey, ...extra }, ssm: () => ssm, secretsManager: () => sm };
}

/** A fresh pair of URLs with random passwords, and the strings that must never leak. */
function urls() {
  const oldPassword = randomBytes(12).toString('hex');
  const newPassword = randomBytes(12).toString('hex');
  const oldUrl = `postgres://u${run}:${oldPassword}@source-pg.example.test:5432/d${run}`;
  const newUrl = `postgresql://app:${newPassword}@shop-rds.example.test:5432/appdb?sslmode=verify-full&sslrootcert=%2Fetc%2Fssl%2Frds-global-bundle.pem`;
  return { oldUrl, newUrl, secrets: [oldPassword, newPassword, oldUrl, newUrl, herokuToken, secretKey] };
}

function expectNoSecret(value: unknown, secrets: string[]): void {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  for (const s of secrets) expect(text).not.toContain(s);
}

const mid = (name: string) => `${name}-${run}`;

describe('env-file sink', () => {
  it('keeps the previous URL in a 0600 backup (no temporary file left) until release, which removes it with its password', async () => {
    const { oldUrl, newUrl, secrets } = urls();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgmig-envsink-'));
    const file = path.join(dir, 'app.env');
    writeFileSync(file, `RAILS_ENV=production\nDATABASE_URL=${oldUrl}\n`);
    const sink = openConfigSink(ConfigSink.parse({ type: 'env-file', path: file }), clients());
    const m = mid('env-a');
    const backup = `${file}.pgmig-${m}.bak`;

    const receipt = await sink.swap(m, newUrl);
    await sink.swap(m, newUrl); // a retry keeps the value found by the first attempt
    expectNoSecret(receipt, secrets);
    expect(await sink.read()).toBe(newUrl);
    expect(statSync(backup).mode & 0o777).toBe(0o600);
    expect(readFileSync(backup, 'utf8')).toContain(oldUrl);
    expect(readdirSync(dir).sort()).toEqual(['app.env', path.basename(backup)]);

    // The rollback path given up (decommission, or completion without a hold): the old URL is nowhere on disk.
    expect(await sink.release(m)).toEqual([`backup ${backup}`]);
    expect(await sink.release(m)).toEqual([]);
    expect(readdirSync(dir)).toEqual(['app.env']);
    for (const f of readdirSync(dir)) expect(readFileSync(path.join(dir, f), 'utf8')).not.toContain(new URL(oldUrl).password);
    expect((await sink.restore(m)).restored).toBe(false);
    expect(await sink.read()).toBe(newUrl);
  });
});

describe('ssm sink (moto)', () => {
  const sinkFor = (name: string) => openConfigSink(ConfigSink.parse({ type: 'ssm', name }), clients());
  const read = async (name: string) => (await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }))).Parameter!;

  it('labels the old version, overwrites keeping the type, restores exactly without the receipt, twice harmlessly', async () => {
    const { oldUrl, newUrl, secrets } = urls();
    const name = `/pgmig-test/${run}/a/DATABASE_URL`;
    await ssm.send(new PutParameterCommand({ Name: name, Value: oldUrl, Type: 'SecureString' }));
    const sink = sinkFor(name);
    const m = mid('ssm-a');

    expect((await sink.restore(m)).restored).toBe(false); // restore without a swap: nothing to do
    expect((await read(name)).Value).toBe(oldUrl);

    const receipt = await sink.swap(m, newUrl);
    expect(await sink.read()).toBe(newUrl);
    expect((await read(name)).Type).toBe('SecureString');
    expect((await read(`${name}:pgmig-${m}-previous`)).Value).toBe(oldUrl);
    expect(receipt.details).toMatchObject({ label: `pgmig-${m}-previous`, previousVersion: 1, newVersion: 2, createdBySwap: false });
    expect(receipt.previousFingerprint).toMatch(/^[0-9a-f]{12}$/);
    expectNoSecret(receipt, secrets);

    const retry = await sink.swap(m, newUrl);
    expect(retry).toEqual(receipt); // same previous value, no new version
    expect((await read(name)).Version).toBe(2);

    const restored = await sink.restore(m); // as if the swap's receipt never reached history
    expect(restored).toMatchObject({ restored: true, fingerprint: receipt.previousFingerprint });
    expectNoSecret(restored, secrets);
    const after = await read(name);
    expect(after.Value).toBe(oldUrl);
    expect(after.Type).toBe('SecureString');
    const meta = await ssm.send(new DescribeParametersCommand({ ParameterFilters: [{ Key: 'Name', Option: 'Equals', Values: [name] }] }));
    expect(meta.Parameters?.[0].Type).toBe('SecureString');

    expect((await sink.restore(m, receipt)).restored).toBe(false); // twice: the label is gone, nothing changes
    expect((await read(name)).Value).toBe(oldUrl);
    expect((await read(name)).Version).toBe(3);
  });

  it('restores with the receipt, even after the label was removed by hand', async () => {
    const { oldUrl, newUrl, secrets } = urls();
    const name = `/pgmig-test/${run}/b/DATABASE_URL`;
    await ssm.send(new PutParameterCommand({ Name: name, Value: oldUrl, Type: 'SecureString' }));
    const sink = sinkFor(name);
    const m = mid('ssm-b');
    const receipt = await sink.swap(m, newUrl);
    await ssm.send(new UnlabelParameterVersionCommand({ Name: name, ParameterVersion: 1, Labels: [`pgmig-${m}-previous`] }));
    expect((await sink.restore(m)).restored).toBe(false); // no record left without the receipt
    const restored = await sink.restore(m, receipt);
    expect(restored.restored).toBe(true);
    expectNoSecret(restored, secrets);
    expect((await read(name)).Value).toBe(oldUrl);
    expect((await sink.restore(m, receipt)).restored).toBe(false); // our value is no longer current: the receipt is not replayed
  });

  it('creates an absent parameter (tagged) and deletes it again on restore', async () => {
    const { newUrl, secrets } = urls();
    const name = `/pgmig-test/${run}/c/DATABASE_URL`;
    const sink = sinkFor(name);
    const m = mid('ssm-c');
    const receipt = await sink.swap(m, newUrl);
    expect(receipt.previousFingerprint).toBeNull();
    expect(receipt.details).toMatchObject({ createdBySwap: true, previousVersion: null });
    expectNoSecret(receipt, secrets);
    expect((await sink.swap(m, newUrl)).details).toMatchObject({ createdBySwap: true });
    expect((await read(name)).Version).toBe(1);
    expect(await sink.restore(m)).toMatchObject({ restored: true, fingerprint: null });
    expect(await sink.read()).toBeUndefined();
    expect((await sink.restore(m)).restored).toBe(false);
  });
});

describe('secrets-manager sink (moto)', () => {
  const stages = async (id: string) => (await sm.send(new DescribeSecretCommand({ SecretId: id }))).VersionIdsToStages ?? {};
  const currentVersion = async (id: string) => Object.entries(await stages(id)).find(([, s]) => s.includes('AWSCURRENT'))![0];
  // Read as AWS serves it by default: the AWSCURRENT version. Explicitly: moto 5.2.1's GetSecretValue without
  // VersionStage ignores UpdateSecretVersionStage and would still return the pre-swap value (see the sink).
  const current = async (id: string) =>
    (await sm.send(new GetSecretValueCommand({ SecretId: id, VersionStage: 'AWSCURRENT' }))).SecretString!;

  it('stages the old version, writes the new one current, restores the exact old version', async () => {
    const { oldUrl, newUrl, secrets } = urls();
    const id = `pgmig-test/${run}/plain`;
    const created = await sm.send(new CreateSecretCommand({ Name: id, SecretString: oldUrl }));
    const sink = openConfigSink(ConfigSink.parse({ type: 'secrets-manager', secretId: id }), clients());
    const m = mid('sm-a');

    expect((await sink.restore(m)).restored).toBe(false);

    const receipt = await sink.swap(m, newUrl);
    expect(await current(id)).toBe(newUrl);
    expect(await sink.read()).toBe(newUrl);
    expect((await stages(id))[created.VersionId!]).toContain(`pgmig-${m}-previous`);
    expect(receipt.details).toMatchObject({ previousVersionId: created.VersionId });
    expectNoSecret(receipt, secrets);

    const retry = await sink.swap(m, newUrl);
    expect(retry).toEqual(receipt);
    expect(Object.keys(await stages(id))).toHaveLength(2);

    const restored = await sink.restore(m);
    expect(restored).toMatchObject({ restored: true, fingerprint: receipt.previousFingerprint });
    expectNoSecret(restored, secrets);
    expect(await currentVersion(id)).toBe(created.VersionId); // the very version, not a copy
    expect(await current(id)).toBe(oldUrl);
    expect(JSON.stringify(await stages(id))).not.toContain('pgmig-');

    expect((await sink.restore(m, receipt)).restored).toBe(false);
    expect(await currentVersion(id)).toBe(created.VersionId);
  });

  it('jsonKey: replaces only that key; restore keeps a rotation of the other keys', async () => {
    const { oldUrl, newUrl, secrets } = urls();
    const id = `pgmig-test/${run}/json`;
    const original = { username: 'app', password: 'p-original-1', engine: 'postgres', port: 5432, DATABASE_URL: oldUrl };
    const created = await sm.send(new CreateSecretCommand({ Name: id, SecretString: JSON.stringify(original) }));
    const sink = openConfigSink(ConfigSink.parse({ type: 'secrets-manager', secretId: id, jsonKey: 'DATABASE_URL' }), clients());
    const m = mid('sm-b');

    const receipt = await sink.swap(m, newUrl);
    expect(JSON.parse(await current(id))).toEqual({ ...original, DATABASE_URL: newUrl });
    expect(await sink.read()).toBe(newUrl);
    expect(receipt.key).toBe('DATABASE_URL');
    expectNoSecret(receipt, secrets);

    // Restore with the receipt, nothing else changed: the original version is current again.
    expect((await sink.restore(m, receipt)).restored).toBe(true);
    expect(await currentVersion(id)).toBe(created.VersionId);
    expect(JSON.parse(await current(id))).toEqual(original);

    // Again, and this time the password rotates while swapped (the way rotation lambdas do it:
    // AWSPENDING first, then AWSCURRENT moved).
    await sink.swap(m, newUrl);
    const rotated = { ...original, DATABASE_URL: newUrl, password: 'p-rotated-2' };
    const pending = await sm.send(
      new PutSecretValueCommand({ SecretId: id, SecretString: JSON.stringify(rotated), VersionStages: ['AWSPENDING'] }),
    );
    await sm.send(
      new UpdateSecretVersionStageCommand({
        SecretId: id,
        VersionStage: 'AWSCURRENT',
        MoveToVersionId: pending.VersionId,
        RemoveFromVersionId: await currentVersion(id),
      }),
    );
    const restored = await sink.restore(m);
    expect(restored.restored).toBe(true);
    expect(JSON.parse(await current(id))).toEqual({ ...original, password: 'p-rotated-2' });
    expect((await sink.restore(m)).restored).toBe(false);
    expect(JSON.parse(await current(id))).toEqual({ ...original, password: 'p-rotated-2' });
  });

  it('refuses a jsonKey on a secret that is not JSON without quoting it', async () => {
    const { oldUrl, newUrl, secrets } = urls();
    const id = `pgmig-test/${run}/notjson`;
    await sm.send(new CreateSecretCommand({ Name: id, SecretString: oldUrl }));
    const sink = openConfigSink(ConfigSink.parse({ type: 'secrets-manager', secretId: id, jsonKey: 'DATABASE_URL' }), clients());
    const err = await applicationFailureOf(sink.swap(mid('sm-c'), newUrl));
    expect(err.type).toBe('ConfigSinkNotJson');
    expect(err.nonRetryable).toBe(true);
    expectNoSecret(err.message, secrets);
  });
});

describe('heroku sink (Platform API stand-in)', () => {
  let heroku: HerokuStandIn;
  beforeAll(async () => {
    heroku = await startHerokuStandIn({ tokens: [herokuToken] });
  });
  afterAll(() => heroku.close());

  const sinkFor = (app: string, c = clients()) =>
    openConfigSink(ConfigSink.parse({ type: 'heroku', app, token: { env: 'HEROKU_TEST_TOKEN' }, apiUrl: heroku.url }), c);

  it('attachment: detaches DATABASE so a rotation cannot revert it; the old database stays reachable; restore re-attaches', async () => {
    const { oldUrl, newUrl, secrets } = urls();
    const app = heroku.seedApp('shop-prod', { configVars: { RAILS_ENV: 'production' }, formation: { web: 2, worker: 1 } });
    const addon = heroku.seedPostgres('shop-prod', { url: oldUrl });
    const sink = sinkFor('shop-prod');
    const m = mid('heroku-a');
    const rollback = rollbackAttachmentName(m);

    expect((await sink.restore(m)).restored).toBe(false);
    expect(heroku.attachmentsOf('shop-prod').map((a) => a.name)).toEqual(['DATABASE']);

    const receipt = await sink.swap(m, newUrl);
    expect(app.configVars.DATABASE_URL).toBe(newUrl);
    expect(heroku.attachmentsOf('shop-prod').map((a) => a.name)).toEqual([rollback]);
    expect(app.configVars[`${rollback}_URL`]).toBe(oldUrl);
    expect(receipt.details).toMatchObject({ mode: 'attachment', addonId: addon.id, rollbackAttachment: rollback });
    expectNoSecret(receipt, secrets);

    const retry = await sink.swap(m, newUrl);
    expect(retry).toEqual(receipt);
    expect(heroku.attachmentsOf('shop-prod')).toHaveLength(1);

    // The add-on's credential rotation rewrites its attachments' vars only: DATABASE_URL stays ours,
    // and the old database is reachable under the rollback attachment with its new credential.
    const rotatedUrl = heroku.rotateCredentials(addon.id);
    expect(app.configVars.DATABASE_URL).toBe(newUrl);
    expect(app.configVars[`${rollback}_URL`]).toBe(rotatedUrl);

    const restored = await sink.restore(m); // without the receipt
    expectNoSecret(restored, [...secrets, rotatedUrl]);
    expect(restored).toMatchObject({ restored: true, details: { mode: 'attachment', reattached: 'DATABASE', addonId: addon.id } });
    expect(heroku.attachmentsOf('shop-prod').map((a) => a.name)).toEqual(['DATABASE']);
    expect(app.configVars.DATABASE_URL).toBe(rotatedUrl); // the add-on's current credential
    expect(app.configVars[`${rollback}_URL`]).toBeUndefined();
    expect(app.configVars.RAILS_ENV).toBe('production');

    const releases = app.releases;
    expect((await sink.restore(m, receipt)).restored).toBe(false);
    expect(app.releases).toBe(releases);
  });

  it('release (decommission): the old add-on is revoked (destroyed: it was its last attachment), restore has nothing left to do', async () => {
    const { oldUrl, newUrl } = urls();
    const app = heroku.seedApp('shop-release', {});
    heroku.seedPostgres('shop-release', { url: oldUrl });
    const sink = sinkFor('shop-release');
    const m = mid('heroku-r');
    await sink.swap(m, newUrl);
    expect(await sink.release(m)).toEqual([
      expect.stringMatching(new RegExp(`^add-on .* destroyed \\(its last attachment was ${rollbackAttachmentName(m)}\\)$`)),
    ]);
    expect(heroku.attachmentsOf('shop-release')).toEqual([]);
    expect([...heroku.state.addons.values()].filter((a) => a.billingApp === 'shop-release')).toEqual([]);
    expect(app.configVars.DATABASE_URL).toBe(newUrl);
    expect(await sink.release(m)).toEqual([]);
    expect((await sink.restore(m)).restored).toBe(false);
  });

  it('attachment: restore with the receipt gives back exactly the old URL; a swap interrupted half-way is finished by its retry or undone by restore', async () => {
    const { oldUrl, newUrl } = urls();
    const app = heroku.seedApp('shop-staging');
    heroku.seedPostgres('shop-staging', { url: oldUrl });
    const sink = sinkFor('shop-staging');
    const m = mid('heroku-b');

    const receipt = await sink.swap(m, newUrl);
    expect((await sink.restore(m, receipt)).restored).toBe(true);
    expect(app.configVars.DATABASE_URL).toBe(oldUrl);
    expect(heroku.attachmentsOf('shop-staging').map((a) => a.name)).toEqual(['DATABASE']);

    // The worker dies between attaching the rollback and detaching DATABASE (simulated: a 503).
    heroku.failNext({ method: 'DELETE', path: /^\/addon-attachments\// }, 503);
    const err = await applicationFailureOf(sink.swap(m, newUrl));
    expect(err.nonRetryable).toBe(false);
    expect(heroku.attachmentsOf('shop-staging')).toHaveLength(2);
    expect(app.configVars.DATABASE_URL).toBe(oldUrl);
    // ... and the workflow compensates instead of retrying: restore leaves the app as it was.
    expect((await sink.restore(m)).restored).toBe(true);
    expect(heroku.attachmentsOf('shop-staging').map((a) => a.name)).toEqual(['DATABASE']);
    expect(app.configVars.DATABASE_URL).toBe(oldUrl);

    // Same interruption, then the retry finishes the swap.
    heroku.failNext({ method: 'PATCH', path: /config-vars$/ }, 500);
    await applicationFailureOf(sink.swap(m, newUrl));
    expect(app.configVars.DATABASE_URL).toBeUndefined(); // detached, not yet set
    await sink.swap(m, newUrl);
    expect(app.configVars.DATABASE_URL).toBe(newUrl);
    await sink.restore(m);
    expect(app.configVars.DATABASE_URL).toBe(oldUrl);
  });

  it('plain config var: refuses without PGMIG_SECRET_KEY before changing anything; keeps the old value sealed in the app', async () => {
    const { oldUrl, newUrl, secrets } = urls();
    const app = heroku.seedApp('plain-app', { configVars: { DATABASE_URL: oldUrl, OTHER: 'x' } });
    const m = mid('heroku-c');
    const backupVar = backupConfigVar(m, 'DATABASE_URL');

    const noKey = await applicationFailureOf(sinkFor('plain-app', clients({ PGMIG_SECRET_KEY: undefined })).swap(m, newUrl));
    expect(noKey.type).toBe('SecretKeyMissing');
    expect(noKey.nonRetryable).toBe(true);
    expect(noKey.message).toContain('PGMIG_SECRET_KEY');
    expectNoSecret(noKey.message, secrets);
    expect(app.configVars).toEqual({ DATABASE_URL: oldUrl, OTHER: 'x' });
    expect(app.releases).toBe(0);

    const sink = sinkFor('plain-app');
    const receipt = await sink.swap(m, newUrl);
    expect(app.releases).toBe(1); // new value and sealed backup in one change
    expect(app.configVars.DATABASE_URL).toBe(newUrl);
    const sealed = app.configVars[backupVar];
    expect(sealed).toMatch(/^pgmig:v1:/);
    expectNoSecret(sealed, secrets);
    expect(receipt.details).toMatchObject({ mode: 'config-var', backupConfigVar: backupVar });
    expectNoSecret(receipt, [...secrets, sealed]);

    expect(await sink.swap(m, newUrl)).toEqual(receipt);
    expect(app.configVars[backupVar]).toBe(sealed);

    const otherKey = await applicationFailureOf(
      sinkFor('plain-app', clients({ PGMIG_SECRET_KEY: randomBytes(32).toString('base64') })).restore(m),
    );
    expect(otherKey.type).toBe('SealedValueUndecryptable');
    expect(app.configVars.DATABASE_URL).toBe(newUrl);

    expect(await sink.restore(m)).toMatchObject({ restored: true, fingerprint: receipt.previousFingerprint });
    expect(app.configVars).toEqual({ DATABASE_URL: oldUrl, OTHER: 'x' });
    expect((await sink.restore(m, receipt)).restored).toBe(false);
    expect(app.configVars).toEqual({ DATABASE_URL: oldUrl, OTHER: 'x' });
  });

  it('plain config var that was absent: restore removes it again', async () => {
    const { newUrl } = urls();
    const app = heroku.seedApp('fresh-app', { configVars: { OTHER: 'x' } });
    const sink = sinkFor('fresh-app');
    const m = mid('heroku-d');
    expect((await sink.swap(m, newUrl)).previousFingerprint).toBeNull();
    expect(app.configVars.DATABASE_URL).toBe(newUrl);
    await sink.restore(m);
    expect(app.configVars).toEqual({ OTHER: 'x' });
  });

  it('a wrong token is a non-retryable 401 that names neither token nor URL', async () => {
    const { oldUrl, newUrl, secrets } = urls();
    heroku.seedApp('locked-app', { configVars: { DATABASE_URL: oldUrl } });
    const wrong = `HRKU-${randomBytes(18).toString('hex')}`;
    const err = await applicationFailureOf(sinkFor('locked-app', clients({ HEROKU_TEST_TOKEN: wrong })).swap(mid('heroku-e'), newUrl));
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toContain('401 unauthorized');
    expectNoSecret(`${err.message} ${JSON.stringify(err)}`, [...secrets, wrong]);
    expect(heroku.app('locked-app').configVars.DATABASE_URL).toBe(oldUrl);
  });
});

describe('check(): preflight, without side effects, each problem naming its field', () => {
  let heroku: HerokuStandIn;
  beforeAll(async () => {
    heroku = await startHerokuStandIn({ tokens: [herokuToken] });
  });
  afterAll(() => heroku.close());
  const herokuSink = (app: string, c = clients()) =>
    openConfigSink(ConfigSink.parse({ type: 'heroku', app, token: { env: 'HEROKU_TEST_TOKEN' }, apiUrl: heroku.url }), c);

  it('ssm: a present or absent parameter is usable (an absent one is created at the swap), nothing is written', async () => {
    const name = `/pgmig-test/${run}/check/DATABASE_URL`;
    const sink = openConfigSink(ConfigSink.parse({ type: 'ssm', name }), clients());
    expect(await sink.check()).toEqual([]);
    await ssm.send(new PutParameterCommand({ Name: name, Value: 'postgres://x@y/z', Type: 'SecureString' }));
    expect(await sink.check()).toEqual([]);
    const described = await ssm.send(
      new DescribeParametersCommand({ ParameterFilters: [{ Key: 'Name', Option: 'Equals', Values: [name] }] }),
    );
    expect(described.Parameters?.[0]?.Version).toBe(1);
  });

  it('secrets-manager: a missing secret, or jsonKey on a value that is not JSON, is a problem', async () => {
    const { oldUrl, secrets } = urls();
    const missing = `pgmig-test/${run}/check-missing`;
    expect(await openConfigSink(ConfigSink.parse({ type: 'secrets-manager', secretId: missing }), clients()).check()).toEqual([
      `configSink.secretId: Secrets Manager secret ${missing} does not exist (the sink changes an existing secret: create it first)`,
    ]);
    const id = `pgmig-test/${run}/check-plain`;
    await sm.send(new CreateSecretCommand({ Name: id, SecretString: oldUrl }));
    expect(await openConfigSink(ConfigSink.parse({ type: 'secrets-manager', secretId: id }), clients()).check()).toEqual([]);
    const problems = await openConfigSink(
      ConfigSink.parse({ type: 'secrets-manager', secretId: id, jsonKey: 'DATABASE_URL' }),
      clients(),
    ).check();
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^configSink\.jsonKey: .*is not a JSON object/);
    expectNoSecret(problems, secrets);
    const stages = await sm.send(new DescribeSecretCommand({ SecretId: id }));
    expect(Object.keys(stages.VersionIdsToStages ?? {})).toHaveLength(1);
  });

  it('heroku: a plain config var needs PGMIG_SECRET_KEY; an unknown app or a wrong token is a problem; nothing is changed', async () => {
    const { oldUrl } = urls();
    const app = heroku.seedApp('check-plain', { configVars: { DATABASE_URL: oldUrl } });
    expect(await herokuSink('check-plain').check()).toEqual([]);
    const [noKey] = await herokuSink('check-plain', clients({ PGMIG_SECRET_KEY: undefined })).check();
    expect(noKey).toMatch(/^configSink\.attachmentName: .*PGMIG_SECRET_KEY is not set on this worker/);
    heroku.seedApp('check-addon', { configVars: {} });
    heroku.seedPostgres('check-addon', { url: oldUrl });
    expect(await herokuSink('check-addon', clients({ PGMIG_SECRET_KEY: undefined })).check()).toEqual([]);
    const [unknown] = await herokuSink('no-such-app').check();
    expect(unknown).toMatch(/^configSink\.app: Heroku API GET \/apps\/no-such-app\/addon-attachments: 404/);
    const [wrong] = await herokuSink('check-plain', clients({ HEROKU_TEST_TOKEN: 'HRKU-wrong' })).check();
    expect(wrong).toMatch(/^configSink\.app: .*401/);
    expect(app.configVars).toEqual({ DATABASE_URL: oldUrl });
    expect(app.releases).toBe(0);
  });
});
