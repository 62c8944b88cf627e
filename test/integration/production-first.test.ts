/**
 * Production first, whatever fails: a dead target does not keep the source frozen while its cleanup
 * is retried, and a failure after the target went live never moves the application back to a source
 * that lacks its writes.
 */
import net from 'node:net';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveUpdate, type MigrationResult } from '../../signals';
import { AppWriter } from '../../stack/app-writer';
import { expectEveryAckedWriteOnce, failingAfter, openSandbox, sourceWritable, untilStatus, type Sandbox } from '../helpers/harness';

let sandbox: Sandbox;

beforeAll(async () => {
  sandbox = await openSandbox('prodfirst', { scale: 2 });
});

afterAll(async () => {
  await sandbox?.close();
});

/** A TCP proxy in front of the target cluster that the test can cut (as a dead host) and restore. */
class TargetProxy {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly upstreamPort: number) {}

  async open(): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.upstreamPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** Connections refused and existing ones cut, as when the target's host dies. */
  async cut(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server?.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

describe('production first', () => {
  it('a target that dies during the copy: the source is writable again within seconds, not when the target returns', async () => {
    const proxy = new TargetProxy(Number(new URL(sandbox.targetUrl).port));
    await proxy.open();
    const proxied = new URL(sandbox.targetUrl);
    proxied.port = String(proxy.port);
    const ref = `${sandbox.targetRef}_PROXIED`;
    process.env[ref] = proxied.toString();
    let handle: WorkflowHandle | undefined;
    try {
      handle = await sandbox.start(sandbox.input({ target: { url: { env: ref } } }));
      await untilStatus(handle, (s) => s.steps.some((step) => step.name === 'copy' && step.state === 'running'), 'the copy running');
      await proxy.cut();
      const cutAt = Date.now();
      let writableAfterMs: number | undefined;
      for (let i = 0; i < 600 && writableAfterMs === undefined; i++) {
        // The unfreeze ends sessions opened during the freeze: a probe cut that way just tries again.
        if (await sourceWritable(sandbox).catch(() => false)) writableAfterMs = Date.now() - cutAt;
        else await new Promise((r) => setTimeout(r, 100));
      }
      // The target is still down and its cleanup still retried: the source did not wait for it.
      expect(writableAfterMs, 'source writable again after the target died').toBeDefined();
      expect(writableAfterMs!).toBeLessThan(30_000);
      // The workflow records the undo a moment after the source is writable.
      const status = await untilStatus(
        handle,
        (s) => s.compensations.some((c) => c.step === 'unfreeze-source' && c.state === 'completed'),
        'unfreeze-source recorded',
      );
      expect(status.compensations.some((c) => c.step === 'reset-target')).toBe(false);
      expect(status.sides).toEqual({ application: 'source', sourceWritable: true, targetWritable: true });
      expect(sandbox.configuredUrl()).toBe(sandbox.sourceUrl);

      // The target returns: its cleanup completes, and the failure reports every undo.
      await proxy.open();
      const err = await handle.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const failure = (err as WorkflowFailedError).cause as ApplicationFailure;
      const result = failure.details?.[0] as MigrationResult;
      expect(result.compensations.map((c) => c.step)).toEqual(['unfreeze-source', 'reset-target']);
      expect(result.compensations.every((c) => c.state === 'completed')).toBe(true);
      expect(failure.message).toContain('the application is on the source; source writable');
    } finally {
      await proxy.cut().catch(() => undefined);
      // A failed assertion must not leave this migration retrying (and leasing the databases) for the next test.
      await handle?.terminate().catch(() => undefined);
      delete process.env[ref];
    }
  }, 180_000);

  it('a failure right after the target was unfrozen: going live is finished, no acknowledged write is lost, the result says where the application is', async () => {
    await sandbox.resetForNextMigration();
    await sandbox.useActivities(failingAfter(sandbox.realActivities, 'unfreezeTarget'));
    try {
      const app = new AppWriter(() => sandbox.configuredUrl(), 10, true);
      app.start();
      await new Promise((r) => setTimeout(r, 300));
      const handle = await sandbox.start(sandbox.input({ migrationId: `${sandbox.input().migrationId}-live` }));
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'go-live' }] });
      const err = await handle.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      await new Promise((r) => setTimeout(r, 500));
      const writes = await app.stop();
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const failure = (err as WorkflowFailedError).cause as ApplicationFailure;
      expect(failure.message).toContain('injected failure after unfreezeTarget');
      expect(failure.message).toContain('the application is on the target; source read-only, target writable');
      const result = failure.details?.[0] as MigrationResult;
      expect(result.compensations.map((c) => `${c.step}:${c.state}`)).toEqual(['finish-go-live:completed']);
      // The application kept writing on the target after go-live, and none of it was thrown away.
      expect(sandbox.configuredUrl()).toBe(sandbox.targetUrl);
      expect(writes.acked.filter((w) => w.database.endsWith(new URL(sandbox.targetUrl).pathname)).length).toBeGreaterThan(0);
      await expectEveryAckedWriteOnce(sandbox.targetUrl, writes);
    } finally {
      await sandbox.useActivities(sandbox.realActivities);
    }
  }, 180_000);
});
