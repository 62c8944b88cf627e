import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EnvFileSink, setKey } from '../../activities/config-sinks/env-file';

describe('env-file config sink', () => {
  it('replaces one key and keeps every other line', () => {
    const text = '# comment\nA=1\nDATABASE_URL=postgres://old\nB="two words"\n';
    expect(setKey(text, 'DATABASE_URL', 'postgres://u:p@new:5432/db?sslmode=verify-full')).toBe(
      '# comment\nA=1\nDATABASE_URL=postgres://u:p@new:5432/db?sslmode=verify-full\nB="two words"\n',
    );
    expect(setKey('A=1\n', 'DATABASE_URL', 'x y')).toBe("A=1\nDATABASE_URL='x y'\n");
    expect(setKey(text, 'DATABASE_URL', undefined)).toBe('# comment\nA=1\nB="two words"\n');
  });

  it('swaps idempotently and restores the exact previous file', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sink-'));
    const file = path.join(dir, 'app.env');
    const original = 'RAILS_ENV=production\nDATABASE_URL=postgres://app:old@heroku/db\n';
    writeFileSync(file, original);
    const sink = new EnvFileSink(file, 'DATABASE_URL');
    const first = await sink.swap('m1', 'postgres://app:new@rds/db');
    const retry = await sink.swap('m1', 'postgres://app:new@rds/db');
    expect(retry.previousFingerprint).toBe(first.previousFingerprint);
    expect(JSON.stringify(first)).not.toContain('old@heroku');
    expect(await sink.read()).toBe('postgres://app:new@rds/db');
    expect((await sink.restore('m1')).restored).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe(original);
    expect((await sink.restore('m1')).restored).toBe(false);
    expect(readFileSync(file, 'utf8')).toBe(original);
    expect(existsSync(`${file}.pgmig-m1.bak`)).toBe(false);
  });

  it('release drops the backup: the swap stays, restore has nothing left', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sink-'));
    const file = path.join(dir, 'app.env');
    writeFileSync(file, 'DATABASE_URL=postgres://old\n');
    const sink = new EnvFileSink(file, 'DATABASE_URL');
    await sink.swap('m3', 'postgres://new');
    expect(await sink.release('m3')).toEqual([`backup ${file}.pgmig-m3.bak`]);
    expect((await sink.restore('m3')).restored).toBe(false);
    expect(await sink.read()).toBe('postgres://new');
  });

  it('removes the key again when it was absent before', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sink-'));
    const file = path.join(dir, 'app.env');
    writeFileSync(file, 'A=1\n');
    const sink = new EnvFileSink(file, 'DATABASE_URL');
    await sink.swap('m2', 'postgres://x');
    await sink.restore('m2');
    expect(readFileSync(file, 'utf8')).toBe('A=1\n');
  });

  it('check(): a missing directory or a directory that is a file is a problem naming configSink.path; a missing file is fine', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sink-check-'));
    expect(await new EnvFileSink(path.join(dir, 'app.env'), 'DATABASE_URL').check()).toEqual([]);
    writeFileSync(path.join(dir, 'app.env'), 'A=1\n');
    expect(await new EnvFileSink(path.join(dir, 'app.env'), 'DATABASE_URL').check()).toEqual([]);
    const [missing] = await new EnvFileSink(path.join(dir, 'no-such-dir', 'app.env'), 'DATABASE_URL').check();
    expect(missing).toMatch(/^configSink\.path: directory .*no-such-dir does not exist on this worker/);
    const [notDir] = await new EnvFileSink(path.join(dir, 'app.env', 'inner.env'), 'DATABASE_URL').check();
    expect(notDir).toMatch(/^configSink\.path: .*app\.env is not a directory/);
    const [notFile] = await new EnvFileSink(dir, 'DATABASE_URL').check();
    expect(notFile).toMatch(/^configSink\.path: .* is not a regular file/);
    expect(existsSync(path.join(dir, 'no-such-dir'))).toBe(false);
  });
});
