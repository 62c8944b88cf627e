/** The replay of the source's roles, ownership and privileges onto the target, and its undo (roles.ts). */
import type { SecretRef } from '../../contract/input';
import type { ActivityContext } from '../context';
import { keepAlive } from '../heartbeat';
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
}

export function createRoleActivities({ resolve, admin, endpoints }: ActivityContext) {
  return {
    async replayRoles(args: RoleReplayArgs): Promise<ReplayResult> {
      return keepAlive(async () => {
        const [sourceUrl, targetUrl] = await endpoints(args);
        return withClient(sourceUrl, admin(args.migrationId, 'source'), (s) =>
          withClient(targetUrl, admin(args.migrationId, 'target'), (t) =>
            replayRoles(s, t, {
              map: args.map,
              ...(args.applicationRole ? { applicationRole: args.applicationRole } : {}),
              migrationId: args.migrationId,
            }),
          ),
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
