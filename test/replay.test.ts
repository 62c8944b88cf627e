/**
 * Replays recorded histories (test/histories/*.json) against today's workflow code: a change that
 * would break running migrations (non-determinism) fails here. Record new ones with
 * `RECORD_HISTORIES=1 npx vitest run test/integration`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { workflowBundlePath } from './global-setup';

const dir = path.join(__dirname, 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('replay of recorded histories', () => {
  it('has recorded histories to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(3);
  });
  for (const file of files) {
    it(`replays ${file} without non-determinism`, async () => {
      const history = temporal.api.history.v1.History.fromObject(JSON.parse(readFileSync(path.join(dir, file), 'utf8')));
      // The original workflow id: workflows derive child ids from it.
      const workflowId = history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowId || file.replace(/\.json$/, '');
      await Worker.runReplayHistory({ workflowBundle: { codePath: workflowBundlePath() } }, history, workflowId);
    });
  }
});
