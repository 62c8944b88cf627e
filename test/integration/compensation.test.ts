/**
 * A failure injected right after each forward step: the compensations put the world back exactly as it
 * was (config file byte for byte, source writable with its settings, target empty and writable).
 * One sandbox serves every case in turn, so a compensation that left anything behind also breaks the
 * next case's preflight.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MigrationActivities } from '../../activities';
import { statusQuery } from '../../signals';
import {
  failingAfter,
  openSandbox,
  recordHistory,
  readOnlySettings,
  sourceWritable,
  targetTableCount,
  type Sandbox,
} from '../helpers/harness';

let sandbox: Sandbox;
let before: { config: string; sourceSettings: string[]; targetSettings: string[] };

beforeAll(async () => {
  sandbox = await openSandbox('comp');
  before = {
    config: sandbox.configText(),
    sourceSettings: await readOnlySettings(sandbox.sourceAdminUrl),
    targetSettings: await readOnlySettings(sandbox.targetAdminUrl),
  };
});

afterAll(async () => {
  await sandbox?.close();
});

async function expectWorldRestored(): Promise<void> {
  expect(sandbox.configText()).toBe(before.config);
  expect(await sourceWritable(sandbox)).toBe(true);
  expect(await readOnlySettings(sandbox.sourceAdminUrl)).toEqual(before.sourceSettings);
  expect(await readOnlySettings(sandbox.targetAdminUrl)).toEqual(before.targetSettings);
  expect(await targetTableCount(sandbox)).toBe(0);
}

const steps: [keyof MigrationActivities, string[]][] = [
  ['freezeSource', ['unfreeze-source']],
  ['copyDumpRestore', ['reset-target', 'unfreeze-source']],
  ['reconcileSequences', ['reset-target', 'unfreeze-source']],
  ['verifyCopy', ['reset-target', 'unfreeze-source']],
  ['freezeTarget', ['unfreeze-target', 'reset-target', 'unfreeze-source']],
  ['swapConfig', ['restore-config', 'unfreeze-target', 'reset-target', 'unfreeze-source']],
  ['smokeTest', ['restore-config', 'unfreeze-target', 'reset-target', 'unfreeze-source']],
];

describe('compensation after a failure at each forward step', () => {
  for (const [step, undone] of steps) {
    it(`restores the world when ${step} fails after doing its work`, async () => {
      await sandbox.useActivities(failingAfter(sandbox.realActivities, step));
      const handle = await sandbox.start(sandbox.input());
      const error = await handle.result().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(WorkflowFailedError);
      const message = (error as WorkflowFailedError).cause?.message ?? '';
      expect(message).toContain(`injected failure after ${step}`);
      expect(message).toContain(`compensation: ${undone.length}/${undone.length} undo step(s) completed`);
      const status = await handle.query(statusQuery);
      expect(status.phase).toBe('failed');
      expect(status.compensations.map((c) => [c.step, c.state])).toEqual(undone.map((u) => [u, 'completed']));
      await recordHistory(handle, `dump-restore-failed-after-${step}`);
      await expectWorldRestored();
    });
  }

  it('restores the world when the migration is cancelled during the copy', async () => {
    await sandbox.useActivities(sandbox.realActivities);
    const handle = await sandbox.start(sandbox.input());
    // Cancel as soon as the copy has started.
    for (let i = 0; i < 400; i++) {
      const status = await handle.query(statusQuery).catch(() => undefined);
      if (status?.steps.some((s) => s.name === 'copy')) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    await handle.cancel();
    await expect(handle.result()).rejects.toThrow();
    const status = await handle.query(statusQuery);
    expect(status.outcome).toBe('rolled-back');
    expect(status.compensations.map((c) => c.step)).toEqual(['reset-target', 'unfreeze-source']);
    expect(status.compensations.every((c) => c.state === 'completed')).toBe(true);
    await expectWorldRestored();
  });
});
