/** The replay of the source's roles, ownership and privileges onto the target, and its undo (roles.ts). */
import { ApplicationFailure } from '@temporalio/common';
import type { SecretRef } from '../../contract/input';
import type { ActivityContext } from '../context';
import { keepAlive } from '../heartbeat';
import { catalogComparison } from './verify';
import { withClient } from './pg';
import { replayRoles, undoRoles, type ReplayResult, type RolesUndone } from './roles';

export interface RoleReplayArgs {
  migrationId: string;
  source: SecretRef;
  target: SecretRef;
  /** Source role -> target role (roles.map). */
  map: Record<string, string>;
  /** The application's role on the target, created able to log in (roles.application "own"). */
  applicationRole?: string;
  /**
   * Compare owners and grants (and the rest of the catalog) with the source's afterwards, and fail naming
   * each difference: the freeze-copy, whose copy is complete by then. A CDC method's replay runs before its
   * catch-up; its freeze-point verification compares them.
   */
  verify?: boolean;
}

export function createRoleActivities({ resolve, admin, endpoints }: ActivityContext) {
  return {
    async replayRoles(args: RoleReplayArgs): Promise<ReplayResult> {
      return keepAlive(async () => {
        const [sourceUrl, targetUrl] = await endpoints(args);
        return withClient(sourceUrl, admin(args.migrationId, 'source'), (s) =>
          withClient(targetUrl, admin(args.migrationId, 'target'), async (t) => {
            const replayed = await replayRoles(s, t, {
              map: args.map,
              ...(args.applicationRole ? { applicationRole: args.applicationRole } : {}),
              migrationId: args.migrationId,
            });
            if (!args.verify) return replayed;
            const { differences } = await catalogComparison(s, t, { privileges: true, roleMap: args.map }, true);
            if (differences.length) {
              throw ApplicationFailure.nonRetryable(
                `after the replay of roles, ownership and grants the target's catalog differs from the source's: ${differences.slice(0, 20).join('; ')}${differences.length > 20 ? `; and ${differences.length - 20} more` : ''}`,
                'CatalogDiffers',
                differences,
              );
            }
            return replayed;
          }),
        );
      });
    },

    /** `roles`: the target roles the replay named (the mapped ones). */
    async undoRoles(args: { migrationId: string; target: SecretRef; roles: string[] }): Promise<RolesUndone> {
      return keepAlive(async () => {
        const url = await resolve(args.target, 'target.url');
        return withClient(url, admin(args.migrationId, 'target'), (t) =>
          undoRoles(t, { roles: args.roles, migrationId: args.migrationId }),
        );
      });
    },
  };
}
