/**
 * The workflow bundle every test worker and the replay test load: built once per run by the global
 * setup of `npm test` (test/global-setup.ts) and of `npm run test:fast` (test/fast-global-setup.ts),
 * so a worker starts in well under a second instead of bundling the workflows itself.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { stackEnvPath } from '../../stack';

/** Beside the stack's env file (git-ignored; with STACK_ENV_FILE, a parallel run's bundle stays apart). */
export function workflowBundlePath(): string {
  return path.join(path.dirname(stackEnvPath()), 'workflow-bundle.js');
}

/** Bundles workflows/ and writes it atomically (a run of the other tier never reads half a file). */
export async function bundleWorkflows(): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: path.resolve(__dirname, '../../workflows'),
    logger: new DefaultLogger('WARN'),
  });
  const file = workflowBundlePath();
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, code);
  renameSync(tmp, file);
  return file;
}
