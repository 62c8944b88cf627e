/**
 * Roles and privileges under dump-restore, on the real stack (issue 12, item 1): the whole-database
 * fixture (grants to app_worker and app_reader, default privileges, large objects owned by the
 * application role) migrated with the application keeping its own role, mapped to names of this
 * sandbox's own. First a no-go (the roles the migration created go with the rollback), then a
 * completed migration: ownership and grants equal the source's under the mapping, the application's
 * role reads and writes every object it could on the source, and its generated password is in the
 * config sink and nowhere in the workflow history.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPrivilegeCatalog } from '../../activities/database/privileges';
import { heldPrivileges } from '../../activities/database/smoke-privileges';
import type { MigrationInputDraft } from '../../contract/input';
import type { MigrationResult, MigrationStatus } from '../../signals';
import { statusQuery } from '../../signals';
import { seedWholeDatabase, WHOLE_DATABASE } from '../fixtures/whole-database';
import { SHAPES_ONLY, historyText, openSandbox, query, withClient, recordHistory, type Sandbox } from '../helpers/harness';
import { describeCatalog, useEveryObject } from '../helpers/privileges';
import { migrationResult } from '../../signals/outcome';

let sandbox: Sandbox;
let map: Record<string, string>;
let rolledBack: { result: MigrationResult; rolesAfter: string[]; targetObjects: number };
let result: MigrationResult;
let status: MigrationStatus;
let historyJson: string;

const input = (gate: MigrationInputDraft['gates']): MigrationInputDraft =>
  sandbox.input({ roles: { map, application: 'own' }, gates: gate, copy: { engine: 'pg-dump' } });

const mappedRoles = () => Object.values(map);

beforeAll(async () => {
  sandbox = await openSandbox('roles', { scale: SHAPES_ONLY });
  await seedWholeDatabase(sandbox.sourceUrl, sandbox.env.SOURCE_ADMIN_URL);
  // Names of this sandbox's own: roles are cluster-wide and other sandboxes share the target cluster.
  map = { app: `app_${sandbox.id}`, app_worker: `worker_${sandbox.id}`, app_reader: `reader_${sandbox.id}` };

  const noGo = await sandbox.start(input({ 'go-live': { timeout: '2m', approvers: ['alice'] } }));
  await noGo.executeUpdate('reject', { args: [{ approver: 'alice', gate: 'go-live', reason: 'rehearsal of the rollback' }] });
  const first = await migrationResult(noGo);
  await recordHistory(noGo, 'dump-restore-roles-no-go');
  const roles = await query<{ rolname: string }>(
    sandbox.env.TARGET_ADMIN_URL,
    'SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])',
    [mappedRoles()],
  );
  const [objects] = await query<{ n: number }>(
    sandbox.targetAdminUrl,
    `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`,
  );
  rolledBack = { result: first, rolesAfter: roles.map((r) => r.rolname), targetObjects: objects.n };

  await sandbox.resetForNextMigration();
  const handle = await sandbox.start(input({ 'go-live': { timeout: '2m', approvers: ['alice'] } }));
  await handle.executeUpdate('approve', { args: [{ approver: 'alice', gate: 'go-live', reason: 'roles replayed' }] });
  result = await migrationResult(handle);
  status = await handle.query(statusQuery);
  historyJson = await historyText(handle);
  await recordHistory(handle, 'dump-restore-roles-own-completed');
}, 600_000);

afterAll(async () => {
  await sandbox?.close();
});

describe('roles and privileges, dump-restore', () => {
  it('a no-go drops the roles the migration created along with everything it restored', () => {
    expect(rolledBack.result.outcome).toBe('rolled-back');
    const undo = rolledBack.result.compensations.find((c) => c.step === 'undo-roles');
    expect(undo?.state).toBe('completed');
    const steps = rolledBack.result.compensations.map((c) => c.step);
    expect(steps.indexOf('undo-roles')).toBeLessThan(steps.indexOf('reset-target'));
    expect(rolledBack.rolesAfter).toEqual([]);
    expect(rolledBack.targetObjects).toBe(0);
  });

  it('completes, with the roles replayed inside the window and the plan listing them', () => {
    expect(result.outcome).toBe('completed');
    const steps = result.steps.map((s) => s.name);
    expect(steps.indexOf('replay-roles')).toBeGreaterThan(steps.indexOf('copy'));
    expect(steps.indexOf('replay-roles')).toBeLessThan(steps.indexOf('smoke-test'));
    const roles = status.plan!.source.roles!;
    const app = roles.find((r) => r.name === 'app')!;
    expect(app).toMatchObject({ application: true });
    expect(app.owns).toMatchObject({ schemas: 3, largeObjects: WHOLE_DATABASE.largeObjects }); // Sales, and the demo data's shop and billing
    expect(app.owns.tables).toBeGreaterThan(10);
    expect(roles.find((r) => r.name === 'app_reader')).toMatchObject({ application: false, granted: { largeObjects: 1, functions: 1 } });
    expect(roles.find((r) => r.name === 'app_worker')!.granted.tables).toBeGreaterThan(3);
    expect(status.plan!.application).toEqual({ mode: 'own', sourceRole: 'app', role: map.app });
  });

  it('gives every object the mapped owner and the source privileges under the mapping', async () => {
    const mapRole = (r: string) => map[r] ?? r;
    const [onSource, onTarget] = await Promise.all([
      withClient(sandbox.sourceAdminUrl, readPrivilegeCatalog),
      withClient(sandbox.targetAdminUrl, readPrivilegeCatalog),
    ]);
    const expected = describeCatalog(onSource, mapRole);
    const actual = describeCatalog(onTarget, (r) => r);
    // The source database's owner (the application) had all of the public schema through pg_database_owner; on the target it is granted.
    const granted = [`schema public: ${map.app} CREATE`, `schema public: ${map.app} USAGE`];
    expect(actual.filter((a) => !granted.includes(a))).toEqual(expected);
    expect(actual).toEqual(expect.arrayContaining(granted));
  });

  it('creates the application role able to log in, the others not', async () => {
    const roles = await query<{ rolname: string; rolcanlogin: boolean }>(
      sandbox.env.TARGET_ADMIN_URL,
      'SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY($1::text[]) ORDER BY 1',
      [mappedRoles()],
    );
    expect(Object.fromEntries(roles.map((r) => [r.rolname, r.rolcanlogin]))).toEqual({
      [map.app]: true,
      [map.app_worker]: false,
      [map.app_reader]: false,
    });
  });

  it('points the application at the target as its own role, which holds every privilege it had on the source', async () => {
    const url = new URL(sandbox.configuredUrl()!);
    expect(decodeURIComponent(url.username)).toBe(map.app);
    expect(url.port).toBe(new URL(sandbox.targetUrl).port);
    const onSource = await withClient(sandbox.sourceAdminUrl, (c) => heldPrivileges(c, 'app'));
    const onTarget = await withClient(url.toString(), (c) => heldPrivileges(c, map.app));
    const key = (p: { kind: string; name: string; privilege: string }) => `${p.kind} ${p.name} ${p.privilege}`;
    expect(onSource.length).toBeGreaterThan(50);
    expect(onTarget.map(key)).toEqual(expect.arrayContaining(onSource.map(key)));
  });

  it("reads and writes tables, sequences and large objects as the application's role", async () => {
    await withClient(sandbox.configuredUrl()!, useEveryObject);
  });

  it('ran the smoke test as that role, comparing privileges and touching each kind of object', () => {
    expect(historyJson).toContain('privileges of the source held on the target');
    expect(historyJson).toMatch(/used \d+ objects \(tables read and written, sequences advanced, large objects read\)/);
  });

  it('keeps the generated password in the config sink only: never in the workflow history', () => {
    const password = decodeURIComponent(new URL(sandbox.configuredUrl()!).password);
    expect(password.length).toBeGreaterThanOrEqual(32);
    expect(historyJson.length).toBeGreaterThan(1000);
    expect(historyJson).not.toContain(password);
    expect(historyJson).not.toContain(encodeURIComponent(password));
  });

  it('the smoke test fails naming each object whose privilege the application lost on the target', async () => {
    const [lo] = await query<{ oid: string }>(sandbox.targetAdminUrl, `SELECT min(content)::text AS oid FROM ${WHOLE_DATABASE.documents}`);
    const revoke = `REVOKE UPDATE ON ${WHOLE_DATABASE.notes} FROM ${map.app}; REVOKE SELECT ON LARGE OBJECT ${lo.oid} FROM ${map.app}`;
    await query(sandbox.targetAdminUrl, revoke);
    try {
      const smoke = sandbox.realActivities.smokeTest({
        migrationId: `${sandbox.id.replace(/_/g, '-')}-smoke`,
        appUrl: { env: sandbox.targetRef },
        tables: [],
        sql: [],
        sink: { type: 'env-file', path: sandbox.configFile, key: 'DATABASE_URL' },
        compareWith: { source: { env: sandbox.sourceRef }, role: 'app' },
      });
      await expect(smoke).rejects.toThrow(/privileges: held on the source, missing on the target: .*table public\.notes: UPDATE/);
      await expect(smoke).rejects.toThrow(new RegExp(`large object ${lo.oid}: SELECT`));
    } finally {
      await query(
        sandbox.targetAdminUrl,
        `GRANT UPDATE ON ${WHOLE_DATABASE.notes} TO ${map.app}; GRANT SELECT ON LARGE OBJECT ${lo.oid} TO ${map.app}`,
      );
    }
  });
});
