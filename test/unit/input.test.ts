import { describe, expect, it } from 'vitest';
import { checkMigrationInput, formatProblems } from '../../contract/input';

const valid = {
  source: { url: { env: 'SOURCE_DATABASE_URL' } },
  target: { url: { ssm: '/prod/rds/url' } },
  configSink: { type: 'env-file', path: '/srv/app/.env' },
};

describe('migration input validation', () => {
  it('accepts a minimal input and fills the documented defaults', () => {
    const checked = checkMigrationInput(valid);
    expect(checked.ok).toBe(true);
    if (!checked.ok) return;
    expect(checked.input).toMatchObject({
      method: 'auto',
      parallelJobs: 2,
      freeze: { drainTimeout: '5s' },
      configSink: { key: 'DATABASE_URL' },
      gates: { 'go-live': { timeout: '30m' } },
      target: { urlParams: {} },
      copy: { engine: 'auto' },
    });
  });

  it('refuses an unknown copy engine and a split size without a unit, naming the fields', () => {
    const checked = checkMigrationInput({ ...valid, copy: { engine: 'rsync', splitTablesLargerThan: '512' } });
    expect(checked.ok).toBe(false);
    if (checked.ok) return;
    expect(checked.problems.map((p) => p.field).sort()).toEqual(['copy.engine', 'copy.splitTablesLargerThan']);
    expect(checkMigrationInput({ ...valid, copy: { engine: 'pg-dump', splitTablesLargerThan: '2 GB' } }).ok).toBe(true);
  });

  it('refuses a literal URL without repeating it', () => {
    const checked = checkMigrationInput({ ...valid, source: { url: 'postgres://app:hunter2hunter2@db/prod' } });
    expect(checked.ok).toBe(false);
    if (checked.ok) return;
    const text = formatProblems(checked.problems);
    expect(text).toMatch(/source\.url: must be a secret reference/);
    expect(text).not.toContain('hunter2');
  });

  it('names every bad field', () => {
    const checked = checkMigrationInput({
      source: { url: { env: 'BAD NAME' }, extra: 1 },
      target: {},
      parallelJobs: 100,
      downtimeBudget: 'soon',
      gates: { 'go-live': { timeout: '-5m' } },
    });
    expect(checked.ok).toBe(false);
    if (checked.ok) return;
    const fields = checked.problems.map((p) => p.field);
    expect(fields).toEqual(
      expect.arrayContaining([
        'source.url.env',
        'source',
        'target.url',
        'parallelJobs',
        'downtimeBudget',
        'gates.go-live.timeout',
        'configSink',
      ]),
    );
  });

  it('takes replication.initialCopy pgcopydb for logical (default native), and refuses it for methods with a copy of their own', () => {
    const logical = checkMigrationInput({ ...valid, method: 'logical', replication: { initialCopy: 'pgcopydb' } });
    expect(logical.ok && logical.input.replication.initialCopy).toBe('pgcopydb');
    const plain = checkMigrationInput({ ...valid, method: 'pgcopydb' });
    expect(plain.ok && plain.input.replication.initialCopy).toBe('native');
    const triggers = checkMigrationInput({ ...valid, method: 'triggers', replication: { initialCopy: 'pgcopydb' } });
    expect(triggers.ok).toBe(false);
    if (!triggers.ok) expect(triggers.problems.map((p) => p.field)).toEqual(['replication.initialCopy']);
    const unknown = checkMigrationInput({ ...valid, method: 'logical', replication: { initialCopy: 'pg_dump' } });
    expect(!unknown.ok && unknown.problems.map((p) => p.field)).toEqual(['replication.initialCopy']);
  });

  it('refuses an unknown method, naming the field', () => {
    const checked = checkMigrationInput({ ...valid, method: 'bucardo' });
    expect(checked.ok).toBe(false);
    if (checked.ok) return;
    expect(checked.problems.map((p) => p.field)).toEqual(['method']);
  });
});

describe('hardened input: references only, durations with units and bounds, no credentials', () => {
  const problemsOf = (raw: unknown) => {
    const checked = checkMigrationInput(raw);
    expect(checked.ok).toBe(false);
    return checked.ok ? [] : checked.problems;
  };
  const secret = 'hunter2hunter2';

  it.each([
    ['ssm', { ssm: `postgres://app:${secret}@db.example.com/prod` }, 'target.url.ssm'],
    ['ssm', { ssm: `app:${secret}@db.example.com:5432/prod` }, 'target.url.ssm'],
    ['secretsManager', { secretsManager: `postgresql://app:${secret}@db/prod` }, 'target.url.secretsManager'],
    ['secretsManager', { secretsManager: `app:${secret}@db` }, 'target.url.secretsManager'],
    ['env', { env: `postgres://app:${secret}@db/prod` }, 'target.url.env'],
  ])('refuses a URL or credentials in a %s reference, naming the field and not the value', (_kind, ref, field) => {
    const problems = problemsOf({ ...valid, target: { url: ref } });
    expect(problems.map((p) => p.field)).toEqual([field]);
    expect(formatProblems(problems)).not.toContain(secret);
  });

  it('accepts parameter and secret names and ARNs', () => {
    for (const ref of [
      { ssm: '/shop/prod/DATABASE_URL' },
      { ssm: 'arn:aws:ssm:eu-west-1:123456789012:parameter/shop/prod/DATABASE_URL' },
      { ssm: '/shop/prod/DATABASE_URL:3' },
      { secretsManager: 'prod/shop/db' },
      { secretsManager: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf' },
      { secretsManager: 'ops@shop/db' },
    ]) {
      expect(checkMigrationInput({ ...valid, target: { url: ref } }).ok).toBe(true);
    }
  });

  it('refuses credentials, connection targets and secret-looking values in target.urlParams', () => {
    const problems = problemsOf({
      ...valid,
      target: {
        url: { env: 'TARGET_DATABASE_URL' },
        urlParams: {
          sslmode: 'verify-full',
          sslrootcert: '/etc/ssl/certs/AmazonRootCA1.pem',
          password: secret,
          user: 'admin',
          host: 'elsewhere.example.com',
          options: `postgres://app:${secret}@db/prod`,
          application_name: 'Xk29fLq8Zr7Pw3Nv5Bt1Yh6Jm',
        },
      },
    });
    expect(problems.map((p) => p.field).sort()).toEqual(
      [
        'target.urlParams.application_name',
        'target.urlParams.host',
        'target.urlParams.options',
        'target.urlParams.password',
        'target.urlParams.user',
      ].sort(),
    );
    expect(formatProblems(problems)).not.toContain(secret);
    expect(
      checkMigrationInput({
        ...valid,
        target: { url: { env: 'T' }, urlParams: { sslmode: 'require', application_name: 'billing-worker-2024' } },
      }).ok,
    ).toBe(true);
  });

  it('refuses credentials in health and probe URLs', () => {
    const problems = problemsOf({ ...valid, app: { healthUrls: [`https://ops:${secret}@shop.example.com/health`] } });
    expect(problems.map((p) => p.field)).toEqual(['app.healthUrls.0']);
    expect(formatProblems(problems)).not.toContain(secret);
  });

  it('refuses a duration without a unit, saying which units', () => {
    const problems = problemsOf({ ...valid, gates: { 'go-live': { timeout: '30' } }, freeze: { drainTimeout: '5' } });
    expect(problems.map((p) => p.field).sort()).toEqual(['freeze.drainTimeout', 'gates.go-live.timeout']);
    expect(problems[0].message).toMatch(/needs a unit.*ms, s, m, h, d, w/);
  });

  it.each([
    [{ gates: { cutover: { timeout: '31d' } } }, 'gates.cutover.timeout', '30d'],
    [{ gates: { decommission: { timeout: '5w' } } }, 'gates.decommission.timeout', '30d'],
    [{ hold: { duration: '366d' } }, 'hold.duration', '365d'],
    [{ freeze: { drainTimeout: '11m' } }, 'freeze.drainTimeout', '10m'],
    [{ replication: { drainTimeout: '2h' } }, 'replication.drainTimeout', '1h'],
    [{ downtimeBudget: '2d' }, 'downtimeBudget', '24h'],
    [{ gates: { 'go-live': { timeout: '999999999999999d' } } }, 'gates.go-live.timeout', '30d'],
  ])('refuses a duration over its bound: %j', (extra, field, bound) => {
    const problems = problemsOf({ ...valid, ...extra });
    expect(problems).toEqual([{ field, message: `must be at most ${bound}` }]);
  });

  it('accepts durations at their bounds and in long unit forms', () => {
    const checked = checkMigrationInput({
      ...valid,
      gates: { 'go-live': { timeout: '30d' }, cutover: { timeout: '2 hours' } },
      hold: { duration: '365d' },
      freeze: { drainTimeout: '10m' },
      replication: { drainTimeout: '1h' },
      downtimeBudget: '1.5h',
    });
    expect(checked.ok).toBe(true);
  });

  it('bounds gate approver names', () => {
    const problems = problemsOf({ ...valid, gates: { 'go-live': { approvers: ['alice', 'x'.repeat(201), 'bob\nmallory', ' '] } } });
    expect(problems.map((p) => p.field)).toEqual(['gates.go-live.approvers.1', 'gates.go-live.approvers.2', 'gates.go-live.approvers.3']);
  });

  it('replays inputs recorded before the hardening under the old rules (legacy)', () => {
    const old = {
      ...valid,
      gates: { 'go-live': { timeout: '30' } },
      target: { url: { ssm: 'postgres://a:b@c/d' }, urlParams: { password: 'x' } },
    };
    expect(checkMigrationInput(old).ok).toBe(false);
    const legacy = checkMigrationInput(old, { legacy: true });
    expect(legacy.ok).toBe(true);
    // The legacy rules apply to that one check only.
    expect(checkMigrationInput(old).ok).toBe(false);
    expect(checkMigrationInput({ ...valid, parallelJobs: 0 }, { legacy: true }).ok).toBe(false);
  });
});
