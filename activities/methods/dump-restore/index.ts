/**
 * The `dump-restore` method's copy: the whole database with writes frozen. `copyAndVerify` (the copy
 * engine with the verification inside it, copy-and-verify.ts) is today's; `copyDumpRestore` is kept for
 * migrations started before it (their histories schedule it, then a separate verification).
 */
import type { CopyEngine, SecretRef } from '../../../contract/input';
import type { TableInventory } from '../../../contract/plan';
import type { ActivityContext } from '../../context';
import type { TargetBaseline } from '../../database/target-reset';
import { copyAndVerify, type FreezeCopyResult } from './copy-and-verify';
import { dumpRestore, type DumpRestoreResult } from './dump-restore';

export interface CopyArgs {
  migrationId: string;
  source: SecretRef;
  target: SecretRef;
  jobs: number;
  tablesTotal: number;
  baseline: TargetBaseline;
}

export interface CopyAndVerifyArgs {
  migrationId: string;
  source: SecretRef;
  target: SecretRef;
  jobs: number;
  engine: CopyEngine;
  splitTablesLargerThan?: string;
  tables: TableInventory[];
  baseline: TargetBaseline;
}

export function createDumpRestoreActivities({ deps, endpoints }: ActivityContext) {
  return {
    async copyAndVerify(args: CopyAndVerifyArgs): Promise<FreezeCopyResult> {
      const [sourceUrl, targetUrl] = await endpoints(args);
      const { source: _source, target: _target, ...rest } = args;
      return copyAndVerify({ ...rest, sourceUrl, targetUrl }, deps);
    },

    async copyDumpRestore(args: CopyArgs): Promise<DumpRestoreResult> {
      const [sourceUrl, targetUrl] = await endpoints(args);
      return dumpRestore({
        migrationId: args.migrationId,
        sourceUrl,
        targetUrl,
        jobs: args.jobs,
        tablesTotal: args.tablesTotal,
        baseline: args.baseline,
      });
    },
  };
}
