/**
 * Once per `npm run test:fast` (vitest.fast.config.ts): no stack. Bundles the workflow code (for the
 * workflow tests' workers and the replay test) while an in-memory Temporal dev server starts for the
 * workflow tests; its address reaches them through provide/inject.
 */
import type { TestProject } from 'vitest/node';
import { bundleWorkflows } from './helpers/bundle';
import { startWorkflowTestServer } from './helpers/temporal-server';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const [, server] = await Promise.all([bundleWorkflows(), startWorkflowTestServer()]);
  project.provide('temporalAddress', server.address);
  project.provide('temporalNamespace', server.namespace);
  return () => server.teardown();
}
