/** Pure parts of the config sinks and app control: sealing, names, input schema, Heroku error mapping. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { displayUrl, oneOffDynos } from '../../activities/app-control';
import { backupConfigVar, rollbackAttachmentName } from '../../activities/config-sinks/heroku';
import { previousLabel } from '../../activities/config-sinks/names';
import { loadSecretKey, seal, unseal } from '../../activities/config-sinks/sealed';
import { herokuFailure, HerokuClient } from '../../activities/heroku/platform-api';
import { checkMigrationInput, ConfigSink, formatProblems } from '../../contract/input';

describe('sealed previous values (AES-256-GCM)', () => {
  const key = randomBytes(32);

  it('round-trips, and refuses another key or another migration', () => {
    const value = JSON.stringify({ present: true, value: 'postgres://u:pw-123456@h/db' });
    const sealed = seal(value, key, 'ctx-a');
    expect(sealed).toMatch(/^pgmig:v1:[^:]+:[^:]+:[^:]+$/);
    expect(sealed).not.toContain('pw-123456');
    expect(seal(value, key, 'ctx-a')).not.toBe(sealed); // random IV
    expect(unseal(sealed, key, 'ctx-a')).toBe(value);
    expect(() => unseal(sealed, randomBytes(32), 'ctx-a')).toThrow(/cannot be decrypted/);
    expect(() => unseal(sealed, key, 'ctx-b')).toThrow(/cannot be decrypted/);
    expect(() => unseal('garbage', key, 'ctx-a')).toThrow(/pgmig:v1/);
  });

  it('requires PGMIG_SECRET_KEY to be 32 bytes of base64, saying how to make one', () => {
    expect(() => loadSecretKey({}, 'heroku x')).toThrow(/PGMIG_SECRET_KEY is not set.*openssl rand -base64 32/);
    expect(() => loadSecretKey({ PGMIG_SECRET_KEY: randomBytes(16).toString('base64') }, 'heroku x')).toThrow(/decodes to 16/);
    expect(loadSecretKey({ PGMIG_SECRET_KEY: key.toString('base64') }, 'x').equals(key)).toBe(true);
  });
});

describe('names derived from the migration id', () => {
  it('labels, rollback attachment and backup config var', () => {
    expect(previousLabel('shop-prod')).toBe('pgmig-shop-prod-previous');
    expect(rollbackAttachmentName('shop-prod')).toBe('PGMIG_ROLLBACK_SHOP_PROD');
    const long = rollbackAttachmentName('a-very-long-migration-id-for-the-shop-2026');
    expect(long).toMatch(/^PGMIG_ROLLBACK_A_VERY_LONG_M_[0-9A-F]{6}$/);
    expect(long).not.toBe(rollbackAttachmentName('a-very-long-migration-id-for-the-shop-2027'));
    expect(backupConfigVar('shop-prod', 'DATABASE_URL')).toBe('PGMIG_SHOP_PROD_PREVIOUS_DATABASE_URL');
  });
});

describe('config sink input', () => {
  const base = { source: { url: { env: 'S' } }, target: { url: { env: 'T' } } };

  it('accepts the four sinks and fills the defaults', () => {
    expect(ConfigSink.parse({ type: 'ssm', name: '/shop/prod/DATABASE_URL' })).toEqual({ type: 'ssm', name: '/shop/prod/DATABASE_URL' });
    expect(ConfigSink.parse({ type: 'secrets-manager', secretId: 'shop/prod', jsonKey: 'DATABASE_URL' })).toMatchObject({
      jsonKey: 'DATABASE_URL',
    });
    expect(ConfigSink.parse({ type: 'heroku', app: 'shop-prod', token: { env: 'HEROKU_API_KEY' } })).toEqual({
      type: 'heroku',
      app: 'shop-prod',
      token: { env: 'HEROKU_API_KEY' },
      apiUrl: 'https://api.heroku.com',
      attachmentName: 'DATABASE',
    });
    expect(ConfigSink.parse({ type: 'env-file', path: '/srv/.env' })).toMatchObject({ key: 'DATABASE_URL' });
  });

  it('names each bad field, and refuses a literal token without repeating it', () => {
    const checked = checkMigrationInput({
      ...base,
      configSink: { type: 'heroku', app: 'Shop_Prod', token: 'HRKU-literal-token-123', attachmentName: 'database', extra: 1 },
    });
    expect(checked.ok).toBe(false);
    if (checked.ok) return;
    const text = formatProblems(checked.problems);
    expect(text).toContain('configSink.app: must be a Heroku app name or id');
    expect(text).toContain('configSink.token: must be a secret reference');
    expect(text).toContain('configSink.attachmentName');
    expect(text).not.toContain('HRKU-literal-token-123');
    const ssm = checkMigrationInput({ ...base, configSink: { type: 'ssm', name: 'bad name!', key: 'X' } });
    expect(ssm.ok).toBe(false);
    expect(checkMigrationInput({ ...base, configSink: { type: 'vault', path: 'x' } }).ok).toBe(false);
  });
});

describe('Heroku API failures', () => {
  it('401/403/404/422 are non-retryable with Heroku id and message; 429 and 5xx retryable', () => {
    for (const status of [400, 401, 403, 404, 422]) {
      const f = herokuFailure(status, 'GET', '/apps/a', { id: 'some_id', message: 'Some message.' });
      expect(f.nonRetryable).toBe(true);
      expect(f.message).toBe(`Heroku API GET /apps/a: ${status} some_id: Some message.`);
    }
    for (const status of [429, 500, 502, 503]) expect(herokuFailure(status, 'PATCH', '/apps/a', {}).nonRetryable).toBe(false);
    expect(herokuFailure(429, 'GET', '/x', {}).type).toBe('HerokuRateLimited');
    expect(herokuFailure(502, 'GET', '/x', '<html>Bad gateway</html>').message).toBe('Heroku API GET /x: 502: <html>Bad gateway</html>');
  });

  it('never carries the token, even when an answer echoes it', () => {
    const token = `HRKU-${randomBytes(18).toString('hex')}`;
    new HerokuClient({ token, apiUrl: 'http://127.0.0.1:1' }); // remembers the token for redaction
    const f = herokuFailure(401, 'GET', '/account', { id: 'unauthorized', message: `Invalid credentials provided: ${token}` });
    expect(f.message).not.toContain(token);
    expect(() => new HerokuClient({ token: '' })).toThrow(/token is empty/);
  });
});

describe('app control helpers', () => {
  const dyno = (name: string, type: string) => ({ id: name, name, type, state: 'up', created_at: '2026-01-01T00:00:00Z' });

  it('one-off dynos are the ones outside the formation', () => {
    const dynos = [
      dyno('web.1', 'web'),
      dyno('worker.1', 'worker'),
      dyno('run.4821', 'run'),
      dyno('scheduler.1234', 'scheduler'),
      dyno('release.77', 'release'),
    ];
    expect(oneOffDynos(dynos, ['web', 'worker']).map((d) => d.name)).toEqual(['run.4821', 'scheduler.1234', 'release.77']);
  });

  it('health check URLs are shown without credentials or query', () => {
    expect(displayUrl('https://user:pw@app.example.com:8443/health?token=abc')).toBe('https://app.example.com:8443/health');
    expect(displayUrl('not a url')).toBe('(invalid URL)');
  });
});
