/** The benchmarks' Temporal side: a client and a migration worker on a task queue of their own, for the length of `fn`. */
import { Client as TemporalClient } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import type { StackEnv } from '../stack';
import { createMigrationWorker } from '../workers/worker';

export interface BenchWorker {
  env: StackEnv;
  client: TemporalClient;
  taskQueue: string;
}

let runtimeInstalled = false;

export async function withBenchWorker<T>(env: StackEnv, fn: (bench: BenchWorker) => Promise<T>): Promise<T> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    runtimeInstalled = true;
  }
  const connection = await NativeConnection.connect({ address: env.TEMPORAL_ADDRESS });
  const client = new TemporalClient({ connection, namespace: env.TEMPORAL_NAMESPACE });
  const taskQueue = `bench-${process.pid}`;
  const worker = await createMigrationWorker({ connection, taskQueue });
  const running = worker.run();
  try {
    return await fn({ env, client, taskQueue });
  } finally {
    worker.shutdown();
    await running;
    await connection.close();
  }
}
