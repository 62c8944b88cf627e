/**
 * The Temporal server restarted while a migration holds after go-live. The test runs a dev server of its
 * own (the suite's other files keep theirs): the workflow, its hold and its gates survive the restart,
 * the reverse replication goes on meanwhile, a rollback decided after the restart loses no write the
 * application made on the target, and the verification that passed before is still reported as passed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { approveUpdate, rollbackUpdate, statusQuery } from '../../signals';
import { AppWriter } from '../../stack/app-writer';
import { layout, type Layout } from '../../stack/config';
import { killProcess } from '../../stack/proc';
import { ensureTemporal, temporalRunningPid } from '../../stack/temporal';
import { expectEveryAckedWriteOnce, openSandbox, sourceWritable, untilPhase, type Sandbox } from '../helpers/harness';
import { migrationResult } from '../../signals/outcome';

let sandbox: Sandbox;
let server: Layout;
let ports: { temporal: number; temporalUi: number; source: number; target: number; moto: number };

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
    probe.on('error', reject);
  });
}

const quiet = () => undefined;

beforeAll(async () => {
  server = layout(mkdtempSync(path.join(os.tmpdir(), 'pgmig-restart-')));
  ports = { temporal: await freePort(), temporalUi: await freePort(), source: 0, target: 0, moto: 0 };
  await ensureTemporal(server, ports, quiet);
  sandbox = await openSandbox('restart', { temporalAddress: `127.0.0.1:${ports.temporal}` });
});

afterAll(async () => {
  await sandbox?.close();
  const pid = server && temporalRunningPid(server);
  if (pid) await killProcess(pid);
  if (server) rmSync(server.dir, { recursive: true, force: true });
});

it('a server restart while holding: the hold, the reverse replication and the rollback survive it', async () => {
  const migrationId = `${sandbox.input().migrationId}-restart`;
  const app = new AppWriter(() => sandbox.configuredUrl(), 10);
  app.start();
  const handle = await sandbox.start(
    sandbox.input({
      migrationId,
      source: { url: { env: sandbox.sourceRef }, replicationUrl: { env: sandbox.sourceReplicationRef } },
      target: { url: { env: sandbox.targetRef }, replicationUrl: { env: sandbox.replicationRef } },
      hold: { duration: '10m', reverseReplication: true },
      replication: { tablesWithoutPrimaryKey: 'replica-identity-full' },
      gates: { 'go-live': { timeout: '2m', approvers: ['alice'] }, decommission: { timeout: '1m' } },
    }),
  );
  await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });
  await untilPhase(handle, 'holding');
  const before = await handle.query(statusQuery);
  expect(before.verification?.state).toBe('passed');

  // Stopped and started again on its own database file, while the application writes on the target.
  const pid = temporalRunningPid(server);
  expect(pid, 'the test server runs').toBeDefined();
  await killProcess(pid!);
  await new Promise((r) => setTimeout(r, 1000));
  await ensureTemporal(server, ports, quiet);
  await untilPhase(handle, 'holding'); // answered by the worker, reconnected
  await new Promise((r) => setTimeout(r, 1000));

  await handle.executeUpdate(rollbackUpdate, { args: [{ approver: 'alice', reason: 'after the restart' }] });
  const result = await migrationResult(handle);
  await new Promise((r) => setTimeout(r, 500)); // the application writes on the source again
  const writes = await app.stop();

  expect(result.outcome).toBe('rolled-back');
  expect(result.verification).toBe('passed');
  const afterRestart = writes.acked.filter((w) => w.database.endsWith(`/tgt_${sandbox.id}`) && w.sentAt > Date.now() - 60_000);
  expect(afterRestart.length).toBeGreaterThan(20);
  await expectEveryAckedWriteOnce(sandbox.sourceUrl, writes);
  expect(await sourceWritable(sandbox)).toBe(true);
}, 180_000);
