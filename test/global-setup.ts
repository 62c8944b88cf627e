/**
 * Once per `npm test`: bring the local stack up (idempotent: a running stack is reused) and bundle
 * the workflow code once, so each test file's worker starts in well under a second. The workflow
 * tests (test/workflow) run against the stack's Temporal server.
 */
import type { TestProject } from 'vitest/node';
import { loadStackEnv, stackUp } from '../stack';
import { bundleWorkflows } from './helpers/bundle';

export { workflowBundlePath } from './helpers/bundle';

/** Once per run, though each project (integration, fast) of vitest.config.ts calls this setup. */
const run = globalThis as { pgmigStackReady?: Promise<void> };

export default async function setup(project: TestProject): Promise<void> {
  run.pgmigStackReady ??= (async () => {
    await stackUp({ log: (line: string) => console.log(`[stack] ${line}`) });
    await bundleWorkflows();
  })();
  await run.pgmigStackReady;
  const env = loadStackEnv();
  project.provide('temporalAddress', env.TEMPORAL_ADDRESS);
  project.provide('temporalNamespace', env.TEMPORAL_NAMESPACE || 'default');
}
