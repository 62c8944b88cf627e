/**
 * Roles and privileges under `logical`, with the application writing throughout: the replay runs
 * before catch-up (outside the window), the subscription keeps applying into tables the mapped roles
 * now own, and after go-live the application writes as its own role, with the password the swap set.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPrivilegeCatalog } from '../../activities/database/privileges';
import type { MigrationResult } from '../../signals';
import type { WriterStats } from '../../stack/app-writer';
import {
  expectEveryAckedWriteOnce,
  historyText,
  migrateUnderLoad,
  openSandbox,
  recordHistory,
  withClient,
  type Sandbox,
} from '../helpers/harness';
import { describeCatalog } from '../helpers/privileges';

let sandbox: Sandbox;
let map: Record<string, string>;
let result: MigrationResult;
let writes: WriterStats;
let history: string;

beforeAll(async () => {
  sandbox = await openSandbox('roleslog');
  // Names of this sandbox's own: roles are cluster-wide and other sandboxes share the target cluster.
  map = { app: `app_${sandbox.id}`, app_worker: `worker_${sandbox.id}` };
  const run = await migrateUnderLoad(sandbox, sandbox.logicalInput({ roles: { map, application: 'own' } }), ['cutover', 'go-live']);
  ({ result, writes } = run);
  history = await historyText(run.handle);
  await recordHistory(run.handle, 'logical-roles-own-completed');
}, 600_000);

afterAll(async () => {
  await sandbox?.close();
});

const catalog = (url: string) => withClient(url, readPrivilegeCatalog);

describe('roles and privileges, logical', () => {
  it('completes with the roles replayed before catch-up, outside the window', () => {
    expect(result.outcome).toBe('completed');
    const steps = result.steps.map((s) => s.name);
    expect(steps.indexOf('replay-roles')).toBeGreaterThan(steps.indexOf('initial-copy'));
    expect(steps.indexOf('replay-roles')).toBeLessThan(steps.indexOf('freeze-source'));
  });

  it('gives every object the mapped owner and the source privileges under the mapping', async () => {
    const [onSource, onTarget] = await Promise.all([catalog(sandbox.sourceAdminUrl), catalog(sandbox.targetAdminUrl)]);
    const granted = [`schema public: ${map.app} CREATE`, `schema public: ${map.app} USAGE`];
    const actual = describeCatalog(onTarget, (r) => r);
    expect(actual.filter((a) => !granted.includes(a))).toEqual(describeCatalog(onSource, (r) => map[r] ?? r));
  });

  it('the application writes as its own role after go-live, and loses no acknowledged write', async () => {
    const url = new URL(sandbox.configuredUrl()!);
    expect(decodeURIComponent(url.username)).toBe(map.app);
    const onTarget = writes.acked.filter((w) => w.database.endsWith(`/tgt_${sandbox.id}`));
    expect(onTarget.length).toBeGreaterThan(0);
    await expectEveryAckedWriteOnce(sandbox.targetAdminUrl, writes);
  });

  it('keeps the generated password out of the workflow history', () => {
    const password = decodeURIComponent(new URL(sandbox.configuredUrl()!).password);
    expect(password.length).toBeGreaterThanOrEqual(32);
    expect(history).not.toContain(password);
  });
});
