/** The DATABASE_URL swap and its undo, through whichever config sink the input names. */
import type { ConfigSink, SecretRef } from '../../contract/input';
import type { ActivityContext } from '../context';
import { keepAlive } from '../heartbeat';
import { openConfigSink, type RestoreReceipt, type SwapReceipt } from './index';

export function createConfigActivities({ deps, resolve }: ActivityContext) {
  return {
    async swapConfig(args: {
      migrationId: string;
      sink: ConfigSink;
      appUrl: SecretRef;
      urlParams: Record<string, string>;
    }): Promise<SwapReceipt> {
      return keepAlive(async () => {
        const url = new URL(await resolve(args.appUrl, 'target.appUrl'));
        for (const [k, v] of Object.entries(args.urlParams)) url.searchParams.set(k, v);
        return openConfigSink(args.sink, deps).swap(args.migrationId, url.toString());
      });
    },

    /** Decommission: the previous value's record goes (Heroku: the old add-on is detached from the app). */
    async releaseConfig(args: { migrationId: string; sink: ConfigSink }): Promise<string[]> {
      return openConfigSink(args.sink, deps).release(args.migrationId);
    },

    async restoreConfig(args: { migrationId: string; sink: ConfigSink; receipt?: SwapReceipt }): Promise<RestoreReceipt> {
      return keepAlive(() => openConfigSink(args.sink, deps).restore(args.migrationId, args.receipt));
    },
  };
}
