import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sweepScratch } from '../../activities/scratch';

describe('a worker sweeps its own scratch directory at start', () => {
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(path.join(os.tmpdir(), 'pgmig-sweep-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  const layout = (root: string) => {
    for (const d of ['m1/dump', 'm1/pgcopydb/clone', 'm2/schema', 'm2/schema.tmp-x1', 'rehearsals/r1/dump', 'empty']) {
      mkdirSync(path.join(root, d), { recursive: true });
    }
    writeFileSync(path.join(root, 'm1/dump.complete'), 'run x');
    writeFileSync(path.join(root, 'm2/notes.txt'), 'not ours');
    writeFileSync(path.join(root, 'rehearsals/r1/staging.env'), 'DATABASE_URL=');
    writeFileSync(path.join(root, 'file.txt'), 'a file');
  };

  it('removes what the activities leave there, and nothing else', async () => {
    const root = tmp();
    layout(root);
    const removed = await sweepScratch({ WORKER_SCRATCH_DIR: root, PGMIG_WORK_DIR: tmp() });
    expect(removed.sort()).toEqual(['m1/dump', 'm1/dump.complete', 'm1/pgcopydb', 'm2/schema', 'm2/schema.tmp-x1', 'rehearsals/r1/dump']);
    expect(existsSync(path.join(root, 'm1'))).toBe(false); // emptied, so gone
    expect(readdirSync(path.join(root, 'm2'))).toEqual(['notes.txt']);
    expect(readdirSync(path.join(root, 'rehearsals/r1'))).toEqual(['staging.env']);
    expect(existsSync(path.join(root, 'empty'))).toBe(false); // an empty directory: removed
    expect(existsSync(path.join(root, 'file.txt'))).toBe(true);
  });

  it('touches nothing without a directory of its own (unset, or the shared one)', async () => {
    const root = tmp();
    layout(root);
    expect(await sweepScratch({ PGMIG_WORK_DIR: root })).toEqual([]);
    expect(await sweepScratch({ WORKER_SCRATCH_DIR: root, PGMIG_WORK_DIR: root })).toEqual([]);
    expect(existsSync(path.join(root, 'm1/dump'))).toBe(true);
  });
});
