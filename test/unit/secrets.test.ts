import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { createSecretResolver, isPostgresUrl } from '../../activities/secrets';

const holding = (value: string) => ({
  env: { HEROKU_DATABASE_URL: value, GOOD_URL: 'postgres://app:pw@db:5432/prod' },
  ssm: () => ({ send: () => Promise.resolve({ Parameter: { Value: value } }) }) as unknown as SSMClient,
  secretsManager: () => ({ send: () => Promise.resolve({ SecretString: value }) }) as unknown as SecretsManagerClient,
});

async function failure(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

describe('secret resolution', () => {
  it('recognises postgres URLs', () => {
    expect(isPostgresUrl('postgres://app:pw@db:5432/prod')).toBe(true);
    expect(isPostgresUrl('postgresql://db/prod?sslmode=require')).toBe(true);
    for (const v of ['base', 'db.example.com:5432', 'mysql://db/x', 'host=db password=x', 'postgres://[bad'])
      expect(isPostgresUrl(v)).toBe(false);
  });

  it.each([
    [{ env: 'HEROKU_DATABASE_URL' }, 'env:HEROKU_DATABASE_URL'],
    [{ ssm: '/shop/prod/DATABASE_URL' }, 'ssm:/shop/prod/DATABASE_URL'],
    [{ secretsManager: 'prod/db' }, 'secretsManager:prod/db'],
  ])('names the field and the reference, never the value, when %j holds no postgres URL', async (ref, described) => {
    const resolve = createSecretResolver(holding('s3cr3t-not-a-url'));
    const err = await failure(resolve(ref, 'source.url'));
    expect(err.message).toBe(`source.url: ${described} does not hold a postgres:// URL (the value is not shown)`);
    expect(err.type).toBe('SecretNotUrl');
    expect(err.message).not.toContain('s3cr3t');
  });

  it('resolves URLs, and tokens without the URL check', async () => {
    const resolve = createSecretResolver(holding('heroku-token-123'));
    expect(await resolve({ env: 'GOOD_URL' }, 'target.url')).toBe('postgres://app:pw@db:5432/prod');
    expect(await resolve({ env: 'GOOD_URL', database: 'other' }, 'target.url')).toBe('postgres://app:pw@db:5432/other');
    expect(await resolve({ env: 'HEROKU_DATABASE_URL' }, 'app.heroku.token', 'token')).toBe('heroku-token-123');
  });
});
