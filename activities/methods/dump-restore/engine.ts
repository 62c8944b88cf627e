/** Which engine copies a freeze-copy on this worker: `copy.engine` resolved against what is installed. */
import { ApplicationFailure } from '@temporalio/common';
import type { CopyEngine } from '../../../contract/input';
import { which } from '../../processes';
import { PGCOPYDB } from './pgcopydb-clone';

/** `auto`: pgcopydb where this worker has it. Forced but missing: an error no retry fixes. */
export function resolveEngine(requested: CopyEngine): 'pgcopydb' | 'pg-dump' {
  if (requested === 'pg-dump') return 'pg-dump';
  if (which(PGCOPYDB)) return 'pgcopydb';
  if (requested === 'auto') return 'pg-dump';
  throw ApplicationFailure.nonRetryable(
    `copy.engine: "pgcopydb", but pgcopydb is not installed on this worker (Debian: apt-get install pgcopydb); use "auto" or "pg-dump"`,
    'PgcopydbMissing',
  );
}

/** For preflight: the engine, or the problem as a blocker. */
export function copyEngineOnThisWorker(requested: CopyEngine): { engine: 'pgcopydb' | 'pg-dump' } | { problem: string } {
  try {
    return { engine: resolveEngine(requested) };
  } catch (err) {
    return { problem: (err as Error).message };
  }
}
