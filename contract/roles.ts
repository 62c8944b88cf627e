/**
 * Which role the application uses on the target, and how source roles are named there (roles.map).
 * Pure: the workflow and the plan use it.
 */
import type { MigrationInput } from './input';

/** The target's name of a source role: roles.map's entry, or the same name. */
export function mapRole(map: Record<string, string>, sourceRole: string): string {
  return Object.hasOwn(map, sourceRole) ? map[sourceRole] : sourceRole;
}

/**
 * How the application connects to the target after the swap:
 * - `own`: as `role` (its source role `sourceRole`, mapped), with a password the migration sets;
 * - `master`: as target.url's user (roles.application "master");
 * - `app-url`: as target.appUrl says.
 */
export type ApplicationAccess = { mode: 'own'; sourceRole: string; role: string } | { mode: 'master' } | { mode: 'app-url' };

/** `sourceRole`: the application's role on the source (the first of source.appRoles, by default the source URL's user). */
export function applicationAccess(input: MigrationInput, sourceRole: string): ApplicationAccess {
  if (input.target.appUrl) return { mode: 'app-url' };
  if (input.roles.application === 'master') return { mode: 'master' };
  return { mode: 'own', sourceRole, role: mapRole(input.roles.map, sourceRole) };
}
