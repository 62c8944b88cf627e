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
    });
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

  it('refuses an unknown method, naming the field', () => {
    const checked = checkMigrationInput({ ...valid, method: 'bucardo' });
    expect(checked.ok).toBe(false);
    if (checked.ok) return;
    expect(checked.problems.map((p) => p.field)).toEqual(['method']);
  });
});
