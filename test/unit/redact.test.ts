import { describe, expect, it } from 'vitest';
import { describeUrl } from '../../activities/database/pg';
import { redact, rememberSecret } from '../../activities/secrets';

describe('redaction of secrets', () => {
  it('removes remembered URLs and their passwords from any text', () => {
    rememberSecret('postgres://app:S3cr%2Ft-pass@db.internal:5432/prod');
    const text = 'failed: postgres://app:S3cr%2Ft-pass@db.internal:5432/prod and S3cr/t-pass alone';
    const out = redact(text);
    expect(out).not.toContain('S3cr');
    expect(out).toContain('***');
  });

  it('masks any password-bearing postgres URL, remembered or not', () => {
    expect(redact('see postgresql://u:unknownpw@h/db')).toBe('see postgresql://u:***@h/db');
  });

  it('names a database without its password', () => {
    expect(describeUrl('postgres://app:pw@127.0.0.1:55432/appdb')).toBe('app@127.0.0.1:55432/appdb');
  });
});
