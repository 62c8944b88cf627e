/** The `dump-restore` method's copy: the whole database with writes frozen (see dump-restore.ts). */
import type { SecretRef } from '../../../contract/input';
import type { ActivityContext } from '../../context';
import type { TargetBaseline } from '../../database/target-reset';
import { dumpRestore, type DumpRestoreResult } from './dump-restore';

export interface CopyArgs {
  migrationId: string;
  source: SecretRef;
  target: SecretRef;
  jobs: number;
  tablesTotal: number;
  baseline: TargetBaseline;
}

export function createDumpRestoreActivities({ endpoints }: ActivityContext) {
  return {
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
