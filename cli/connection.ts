/** Temporal client for the CLI and the demo, configured from the environment (and `.stack/stack.env` when present). */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { config } from 'dotenv';

export function loadLocalEnv(): void {
  const stackEnv = path.resolve(__dirname, '../.stack/stack.env');
  if (existsSync(stackEnv)) config({ path: stackEnv, quiet: true });
}

export function namespace(): string {
  return process.env.TEMPORAL_NAMESPACE ?? 'default';
}

export async function temporalClient(): Promise<Client> {
  const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' });
  return new Client({ connection, namespace: namespace() });
}

export function uiLink(workflowId: string, runId?: string): string {
  const base = (process.env.TEMPORAL_UI_URL ?? 'http://127.0.0.1:8233').replace(/\/$/, '');
  return `${base}/namespaces/${encodeURIComponent(namespace())}/workflows/${encodeURIComponent(workflowId)}${runId ? `/${runId}` : ''}/history`;
}
