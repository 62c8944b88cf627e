/**
 * One line per activity in the Temporal UI's timeline, so it reads like the runbook ("copy and verify
 * (pgcopydb, 2 jobs), writes frozen", "undo: reset target") instead of code names. Taken from the
 * activity's name, its profile and a few harmless fields of its arguments (engine, job counts), never
 * from references or URLs. User metadata is not part of the commands a replay compares.
 */
import type { ActivityInterfaceFor } from '@temporalio/workflow';

type Args = Record<string, unknown> | undefined;

const jobs = (a: Args) => (typeof a?.parallelJobs === 'number' ? `, ${a.parallelJobs} jobs` : '');
const engine = (a: Args) => (typeof a?.engine === 'string' ? a.engine : 'pgcopydb or pg_dump');

/** Activities whose code name says too little. */
const SUMMARIES: Record<string, (args: Args) => string> = {
  preflight: () => 'preflight: inventory of both databases, the plan and its blockers',
  acquireLease: () => 'lease both databases (one migration per database)',
  releaseLease: () => 'release the database leases',
  claimHost: () => 'which worker runs the next steps (their files stay on its host)',
  copyAndVerify: (a) => `copy and verify (${engine(a)}${jobs(a)}), writes frozen`,
  copyDumpRestore: (a) => `copy: pg_dump | pg_restore${jobs(a)}, writes frozen`,
  copySnapshot: (a) => `initial copy of the slot's snapshot (pgcopydb${jobs(a)})`,
  copyAndApply: () => 'triggers: initial copy, then apply of the captured changes',
  waitForReplication: () => 'catch-up: wait until replication lag is under the threshold',
  verifyAtFreezePoint: () => 'verification: row counts and checksums on the freeze-point snapshots',
  freezeSource: () => 'FREEZE the source: writes refused from here',
  freezeTarget: () => 'freeze the target until go-live',
  unfreezeTarget: () => 'unfreeze the target: writes accepted there',
  unfreezeSource: () => 'unfreeze the source: writes accepted there',
  swapConfig: () => 'point the application at the target (config sink)',
  restoreConfig: () => 'point the application back at the source (config sink)',
  smokeTest: () => "smoke test on the target, as the application's role",
  reconcileSequences: () => 'sequences: set the target past the source',
};

function words(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
}

/** The summary of one call: the table's line or the name in words; undos are marked as such. */
export function activitySummary(name: string, args: unknown[], undo: boolean): string {
  const line = SUMMARIES[name]?.(args[0] as Args) ?? words(name);
  return undo ? `undo: ${line}` : line;
}

type WithOptions = { executeWithOptions: (options: { summary: string }, args: unknown[]) => Promise<unknown> };

/** The same activities, each call carrying its summary. */
export function withSummaries<A>(proxy: ActivityInterfaceFor<A>, opts: { undo?: boolean } = {}): ActivityInterfaceFor<A> {
  return new Proxy(proxy, {
    get(target, name) {
      const fn = (target as unknown as Record<string | symbol, WithOptions | undefined>)[name];
      if (typeof name !== 'string' || !fn?.executeWithOptions) return fn;
      return (...args: unknown[]) => fn.executeWithOptions({ summary: activitySummary(name, args, !!opts.undo) }, args);
    },
  });
}
