/**
 * Once per `npm test`: bring the local stack up (idempotent: a running stack is reused) and bundle
 * the workflow code once, so each test file's worker starts in well under a second.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { stackEnvPath, stackUp } from '../stack';

export function workflowBundlePath(): string {
  return path.join(path.dirname(stackEnvPath()), 'workflow-bundle.js');
}

export default async function setup(): Promise<void> {
  await stackUp({ log: (line: string) => console.log(`[stack] ${line}`) });
  const { code } = await bundleWorkflowCode({ workflowsPath: path.resolve(__dirname, '../workflows') });
  writeFileSync(workflowBundlePath(), code);
}
