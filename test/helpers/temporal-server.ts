/**
 * The Temporal server the workflow tests (test/workflow) run against. `npm run test:fast` starts an
 * in-memory dev server once per run (test/fast-global-setup.ts): the `temporal` CLI the stack uses,
 * on a free port, with the migration search attributes registered. `npm test` gives them the
 * stack's own server instead (test/global-setup.ts). Either way the address reaches the test files
 * through vitest's provide/inject (test/helpers/provided-context.ts).
 *
 * Not the time-skipping test server: `TestWorkflowEnvironment.createTimeSkipping()` downloads it at
 * run time, which machines without internet access cannot do, and the same tests run in `npm test`
 * against the stack's real server, which skips no time. The tests keep timers short through the
 * input instead (gate timeouts and hold durations of a second or so).
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { SEARCH_ATTRIBUTES } from '../../stack';
import { findTemporalBinary } from '../../stack/temporal';

const SDK_TYPES = { Bool: SearchAttributeType.BOOL, Keyword: SearchAttributeType.KEYWORD, KeywordList: SearchAttributeType.KEYWORD_LIST };
const searchAttributeKeys = Object.entries(SEARCH_ATTRIBUTES).map(([name, type]) => defineSearchAttributeKey(name, SDK_TYPES[type]));

export interface WorkflowTestServer {
  address: string;
  namespace: string;
  teardown: () => Promise<void>;
}

/** An in-memory dev server on a free port; teardown stops it. Takes a second or two. */
export async function startWorkflowTestServer(): Promise<WorkflowTestServer> {
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: await findTemporalBinary((line) => console.log(`[temporal] ${line}`)) },
      ip: '127.0.0.1',
      searchAttributes: searchAttributeKeys,
      log: { format: 'pretty', level: 'error' },
    },
  });
  return { address: env.address, namespace: env.namespace ?? 'default', teardown: () => env.teardown() };
}
