/** dump-restore's copy engine: `copy.engine` resolved against the database's size and what the worker has installed. */
import { afterEach, describe, expect, it } from 'vitest';
import { copyEngineOnThisWorker, PGCOPYDB_FROM_BYTES, resolveEngine } from '../../activities/methods/dump-restore/engine';

const path = process.env.PATH;
afterEach(() => {
  process.env.PATH = path;
});

describe('copy engine', () => {
  it('auto: pg_dump for a small database, pgcopydb from the threshold on where installed', () => {
    process.env.PATH = '/usr/bin:/bin'; // Debian's pgcopydb lives in /usr/bin
    expect(resolveEngine('auto', PGCOPYDB_FROM_BYTES - 1)).toBe('pg-dump');
    expect(resolveEngine('auto', PGCOPYDB_FROM_BYTES)).toBe('pgcopydb');
    expect(resolveEngine('pg-dump', 10 * PGCOPYDB_FROM_BYTES)).toBe('pg-dump');
    expect(resolveEngine('pgcopydb', 1)).toBe('pgcopydb');
  });

  it('without pgcopydb on the worker: auto falls back, a forced pgcopydb is refused naming the field', () => {
    process.env.PATH = '/nonexistent';
    expect(resolveEngine('auto', 10 * PGCOPYDB_FROM_BYTES)).toBe('pg-dump');
    expect(() => resolveEngine('pgcopydb', 1)).toThrow(/^copy\.engine: "pgcopydb", but pgcopydb is not installed on this worker/);
    expect(copyEngineOnThisWorker('pgcopydb', 1)).toEqual({ problem: expect.stringMatching(/^copy\.engine: /) });
  });
});
