/**
 * The source's roles on the target, on fake activities: with roles in the plan, dump-restore replays
 * them after the copy (inside the window) and a CDC method before catch-up (outside it); the undo runs
 * before the target reset (it gives the objects back so the reset drops them); roles.map names the
 * application's role on the target; roles.application "master" keeps the application on target.url.
 */
import { describe, expect, it } from 'vitest';
import { buildPlan, type RoleInventory } from '../../contract/plan';
import { inventory } from '../helpers/inventory';
import { DEFAULT_TABLES, type ActivityName, type FakeActivities } from './fakes';
import { migrationInput, settle, useTestServer, withWorker } from './harness';

const server = useTestServer();

const counts = (tables: number) => ({ schemas: 0, tables, sequences: 0, functions: 0, types: 0, largeObjects: 0 });
const ROLES: RoleInventory[] = [
  { name: 'app', application: true, owns: counts(3), granted: counts(0), columnGrants: 0, defaultPrivileges: 1 },
  { name: 'app_worker', application: false, owns: counts(0), granted: counts(3), columnGrants: 0, defaultPrivileges: 1 },
];

/** Preflight's plan with the source's roles listed (the default fakes' inventory has none, as plans made before). */
const withRoles: FakeActivities = {
  preflight: async ({ input }) =>
    buildPlan(
      input,
      inventory({ currentUser: 'app', tables: DEFAULT_TABLES, userObjects: 3, schemas: ['public', 'shop'], roles: ROLES }),
      inventory({ currentUser: 'rds_master', userObjects: 0 }),
    ),
};

describe.concurrent('roles and privileges on fake activities', () => {
  it('dump-restore: replayed after the copy and sequences, before the target is frozen; mapped names used', async () => {
    await withWorker(server(), { overrides: withRoles }, async ({ fakes, start }) => {
      const input = migrationInput({ roles: { map: { app: 'shop_app' } }, gates: { 'go-live': { timeout: '1m' } } });
      const handle = await start(input);
      await handle.executeUpdate('approve', { args: [{ approver: 'alice', gate: 'go-live' }] });
      const { result, failure } = await settle(handle);
      expect(failure).toBeUndefined();
      expect(result.outcome).toBe('completed');
      const names = fakes.names();
      expect(names.indexOf('replayRoles')).toBe(names.indexOf('reconcileSequences') + 1);
      expect(names.indexOf('freezeTarget')).toBe(names.indexOf('replayRoles') + 1);
      const arg = (name: ActivityName) => fakes.calls.find((c) => c.name === name)!.args as Record<string, unknown>;
      expect(arg('replayRoles')).toMatchObject({ map: { app: 'shop_app' }, applicationRole: 'shop_app' });
      expect(arg('freezeTarget')).toMatchObject({ roles: ['rds_master', 'shop_app'] });
      expect(arg('swapConfig')).toMatchObject({ appRole: { role: 'shop_app' } });
      expect(arg('smokeTest')).toMatchObject({ compareWith: { role: 'app' } });
      expect(result.steps.map((s) => s.name)).toContain('replay-roles');
    });
  });

  it('a no-go undoes the roles before the target reset, with every mapped role', async () => {
    await withWorker(server(), { overrides: withRoles }, async ({ fakes, start }) => {
      const handle = await start(migrationInput({ roles: { map: { app_worker: 'worker2' } }, gates: { 'go-live': { timeout: '1s' } } }));
      const { result } = await settle(handle);
      expect(result.outcome).toBe('rolled-back');
      const steps = result.compensations.map((c) => c.step);
      expect(steps.indexOf('undo-roles')).toBeLessThan(steps.indexOf('reset-target'));
      const undo = fakes.calls.find((c) => c.name === 'undoRoles')!.args as { roles: string[] };
      expect(undo.roles.sort()).toEqual(['app', 'worker2']);
    });
  });

  it('logical: replayed after the initial copy and indexes, before catch-up and the cutover gate', async () => {
    await withWorker(server(), { overrides: withRoles }, async ({ fakes, start }) => {
      const handle = await start(
        migrationInput({
          method: 'logical',
          replication: { tablesWithoutPrimaryKey: 'replica-identity-full' },
          gates: { cutover: { timeout: '1s' }, 'go-live': { timeout: '1m' } },
        }),
      );
      await settle(handle);
      const names = fakes.names({ except: ['waitForReplication'] });
      expect(names.indexOf('replayRoles')).toBe(names.indexOf('copySchemaAfterData') + 1);
      expect(names).not.toContain('freezeSource'); // the cutover gate timed out: nothing frozen
    });
  });

  it('roles.application "master": the application keeps target.url, only the master is frozen on the target', async () => {
    await withWorker(server(), { overrides: withRoles }, async ({ fakes, start }) => {
      const input = migrationInput({ roles: { application: 'master' }, gates: { 'go-live': { timeout: '1m' } } });
      const handle = await start(input);
      await handle.executeUpdate('approve', { args: [{ approver: 'alice', gate: 'go-live' }] });
      await settle(handle);
      const arg = (name: ActivityName) => fakes.calls.find((c) => c.name === name)!.args as Record<string, unknown>;
      expect(arg('freezeTarget')).toMatchObject({ roles: ['rds_master'] });
      expect(arg('swapConfig').appRole).toBeUndefined();
      expect(arg('smokeTest').sink).toBeUndefined();
      expect(arg('replayRoles')).toMatchObject({ map: {} });
      expect(arg('replayRoles').applicationRole).toBeUndefined();
    });
  });
});
