/**
 * Replays recorded histories (test/histories/*.json) against today's workflow code: a change that
 * would break running migrations (non-determinism) fails here. Record new ones with
 * `RECORD_HISTORIES=1 npx vitest run test/integration`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { beforeAll, describe, expect, it } from 'vitest';
import { workflowBundlePath } from './helpers/bundle';

const dir = path.join(__dirname, 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('replay of recorded histories', () => {
  // One replay worker for all of them (a worker per history costs a second or two of start-up each);
  // it replays them one at a time, in order, and reports each.
  const outcomes = new Map<string, Error | undefined>();
  beforeAll(async () => {
    const histories = files.map((file) => {
      const history = temporal.api.history.v1.History.fromObject(JSON.parse(readFileSync(path.join(dir, file), 'utf8')));
      // The original workflow id: workflows derive child ids from it.
      const workflowId = history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowId || file.replace(/\.json$/, '');
      return { history, workflowId };
    });
    let i = 0;
    for await (const replayed of Worker.runReplayHistories({ workflowBundle: { codePath: workflowBundlePath() } }, histories)) {
      outcomes.set(files[i++], replayed.error);
    }
  });

  it('has recorded histories to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(3);
  });
  for (const file of files) {
    it(`replays ${file} without non-determinism`, () => {
      expect(outcomes.has(file), `${file} was not replayed`).toBe(true);
      const error = outcomes.get(file);
      if (error) throw error;
    });
  }
});
