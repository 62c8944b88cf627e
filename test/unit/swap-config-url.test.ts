/**
 * The URL swapConfig writes for RDS carries `sslmode=verify-full` and `sslrootcert` from
 * `target.urlParams`: the real activity, with an env-file sink, read back by node-postgres' parser.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { parse as parseConnectionString } from 'pg-connection-string';
import { describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { ConfigSink, MigrationInput } from '../../contract/input';

const unused = () => {
  throw new Error('not used by swapConfig with an env reference and an env-file sink');
};

describe('swapConfig composes the application URL', () => {
  it('adds sslmode=verify-full and sslrootcert to the target URL and restores the old one', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'swap-url-'));
    const envFile = path.join(dir, 'app.env');
    const ca = path.join(dir, 'rds-global-bundle.pem');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const original = 'DATABASE_URL=postgres://app:old@source.example.test:5432/d1\n';
    writeFileSync(envFile, original);
    const input = MigrationInput.parse({
      source: { url: { env: 'X_SOURCE' } },
      target: {
        url: { env: 'X_TARGET' },
        appUrl: { env: 'X_APP_URL' },
        urlParams: { sslmode: 'verify-full', sslrootcert: ca },
      },
      configSink: { type: 'env-file', path: envFile },
    });
    const acts = createActivities({
      env: { X_APP_URL: 'postgres://app:n%40w-pass@shop-rds.example.test:5432/appdb?application_name=shop' },
      ssm: unused,
      secretsManager: unused,
      dms: unused,
      signalWorkflow: unused,
    });

    const receipt = await acts.swapConfig({
      migrationId: 'm-url',
      sink: input.configSink,
      appUrl: input.target.appUrl!,
      urlParams: input.target.urlParams,
    });
    const written = parseDotenv(readFileSync(envFile, 'utf8')).DATABASE_URL;
    const url = new URL(written);
    expect(url.searchParams.get('sslmode')).toBe('verify-full');
    expect(url.searchParams.get('sslrootcert')).toBe(ca);
    expect(url.searchParams.get('application_name')).toBe('shop'); // the URL's own parameters are kept
    expect(url.host).toBe('shop-rds.example.test:5432');
    expect(JSON.stringify(receipt)).not.toContain('n%40w-pass');

    // What node-postgres makes of it: TLS with certificate and host name verification against that CA.
    const config = parseConnectionString(written);
    expect(config.password).toBe('n@w-pass');
    expect(config.ssl).toMatchObject({ ca: readFileSync(ca, 'utf8') });
    expect((config.ssl as { rejectUnauthorized?: boolean }).rejectUnauthorized).not.toBe(false);

    await acts.restoreConfig({ migrationId: 'm-url', sink: ConfigSink.parse({ type: 'env-file', path: envFile }), receipt });
    expect(readFileSync(envFile, 'utf8')).toBe(original);
  });
});
