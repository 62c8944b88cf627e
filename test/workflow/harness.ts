/**
 * Runs the real workflows on a real Worker (the prebuilt bundle) against the test run's Temporal
 * server, with fake activities (./fakes.ts): one task queue and one worker per test.
 */
import { randomBytes } from 'node:crypto';
import { Client, Connection, WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, inject } from 'vitest';
import type { MigrationInputDraft } from '../../contract/input';
import type { RehearsalInputDraft } from '../../contract/rehearsal';
import { statusQuery, type MigrationResult, type MigrationStatus } from '../../signals';
import type { migrateDatabase } from '../../workflows/migrate-database';
import type { rehearseMigration } from '../../workflows/rehearse-migration';
import { workflowBundlePath } from '../helpers/bundle';
import { fakeActivities, type FakeOptions, type Fakes } from './fakes';
import { startSummary } from '../../signals/task-queue';

try {
  // Activity failures are what these tests inject: the worker's warnings about them are noise.
  Runtime.install({ logger: new DefaultLogger((process.env.WF_TEST_LOG_LEVEL as 'WARN' | undefined) ?? 'ERROR') });
} catch {
  // already installed in this process
}

export interface TestServer {
  client: Client;
  namespace: string;
  nativeConnection: NativeConnection;
  close: () => Promise<void>;
}

/** A file's connection to the test server: opened before its tests, closed after them. */
export function useTestServer(): () => TestServer {
  let server: TestServer | undefined;
  beforeAll(async () => {
    server = await connectToTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });
  return () => {
    if (!server) throw new Error('the test server is not connected yet');
    return server;
  };
}

/** The forward activities of a dump-restore migration, in order (the lease right after preflight). */
export const DUMP_RESTORE_FORWARD = [
  'preflight',
  'acquireLease',
  'freezeSource',
  'claimHost',
  'copyAndVerify',
  'reconcileSequences',
  'freezeTarget',
  'swapConfig',
  'smokeTest',
  'unfreezeTarget',
] as const;

/** Connections to the server the global setup provided (once per test file). */
export async function connectToTestServer(): Promise<TestServer> {
  const address = inject('temporalAddress');
  const namespace = inject('temporalNamespace');
  if (!address) throw new Error('no Temporal address provided: run through vitest.fast.config.ts or vitest.config.ts');
  const [connection, nativeConnection] = await Promise.all([Connection.connect({ address }), NativeConnection.connect({ address })]);
  return {
    client: new Client({ connection, namespace }),
    namespace,
    nativeConnection,
    close: async () => {
      await connection.close();
      await nativeConnection.close();
    },
  };
}

export const uniqueId = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

/** A valid migrateDatabase input whose references nothing resolves (the fakes never resolve them). */
export function migrationInput(overrides: Partial<MigrationInputDraft> = {}): MigrationInputDraft {
  return {
    migrationId: uniqueId('wf'),
    source: { url: { env: 'FAKE_SOURCE_URL' } },
    target: { url: { env: 'FAKE_TARGET_URL' } },
    method: 'dump-restore',
    configSink: { type: 'env-file', path: '/nonexistent/app.env', key: 'DATABASE_URL' },
    gates: { 'go-live': { timeout: '1m' } },
    ...overrides,
  };
}

export interface Run {
  fakes: Fakes;
  taskQueue: string;
  /** Starts migrateDatabase on this test's task queue. */
  start: (input: MigrationInputDraft) => Promise<WorkflowHandle<typeof migrateDatabase>>;
  /** Starts rehearseMigration on this test's task queue. */
  startRehearsal: (input: RehearsalInputDraft) => Promise<WorkflowHandle<typeof rehearseMigration>>;
}

/**
 * One worker with fresh fakes on a task queue of its own, for the duration of `fn`. Workflows it
 * started and left running (a failed assertion) are terminated, so none waits on the server for a
 * worker that is gone (`npm test` runs these against the stack's long-lived server).
 */
export async function withWorker<T>(
  server: TestServer,
  fakeOptions: Omit<FakeOptions, 'client'>,
  fn: (run: Run) => Promise<T>,
): Promise<T> {
  const fakes = fakeActivities({ ...fakeOptions, client: server.client });
  const taskQueue = uniqueId('wf-test');
  const worker = await Worker.create({
    connection: server.nativeConnection,
    namespace: server.namespace,
    taskQueue,
    workflowBundle: { codePath: workflowBundlePath() },
    activities: fakes.activities,
    // Cancellation reaches a heartbeating activity with its next heartbeat: keep that quick.
    maxHeartbeatThrottleInterval: '100ms',
    defaultHeartbeatThrottleInterval: '100ms',
    shutdownGraceTime: '2s',
    // Workflows in this thread's sandbox instead of a worker thread per Worker: 0.1 s to start one instead of 1-2 s.
    // The same isolated, deterministic VM context; only the deadlock detector (5 s per activation) is off.
    debugMode: true,
  });
  const started: WorkflowHandle[] = [];
  const track = <H extends WorkflowHandle>(handle: H): H => {
    started.push(handle);
    return handle;
  };
  const start = async (input: MigrationInputDraft) =>
    track(
      await server.client.workflow.start<typeof migrateDatabase>('migrateDatabase', {
        taskQueue,
        staticSummary: startSummary(input),
        workflowId: uniqueId(`migrate-${input.migrationId ?? 'x'}`),
        args: [input],
      }),
    );
  const startRehearsal = async (input: RehearsalInputDraft) =>
    track(
      await server.client.workflow.start<typeof rehearseMigration>('rehearseMigration', {
        taskQueue,
        workflowId: uniqueId('rehearsal'),
        args: [input],
      }),
    );
  const terminateStarted = () => Promise.all(started.map((h) => h.terminate('test ended').catch(() => undefined)));
  return worker.runUntil(async () => {
    try {
      return await fn({ fakes, taskQueue, start, startRehearsal });
    } finally {
      await terminateStarted();
    }
  });
}

/** The result, or for a failed migration the MigrationResult its failure carries (and the failure). */
export async function settle(
  handle: WorkflowHandle<typeof migrateDatabase>,
): Promise<{ result: MigrationResult; failure?: ApplicationFailure }> {
  try {
    return { result: await handle.result() };
  } catch (err) {
    if (err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure) {
      return { result: err.cause.details?.[0] as MigrationResult, failure: err.cause };
    }
    throw err;
  }
}

/** Polls the status query until `done` holds. */
export async function waitForStatus(
  handle: WorkflowHandle,
  done: (s: MigrationStatus) => boolean,
  what = 'the expected status',
  timeoutMs = 20_000,
): Promise<MigrationStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: MigrationStatus | undefined;
  for (;;) {
    last = await handle.query(statusQuery);
    if (done(last)) return last;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; phase ${last.phase}, steps ${last.steps.map((s) => s.name).join(', ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const waitForPhase = (handle: WorkflowHandle, phase: MigrationStatus['phase']) =>
  waitForStatus(handle, (s) => s.phase === phase, `phase ${phase}`);

/** The refusal message of an Update its validator rejected (fails the test if it was accepted). */
export async function refusalOf(update: Promise<unknown>): Promise<string> {
  try {
    await update;
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) return err.cause?.message ?? err.message;
    throw err;
  }
  throw new Error('the update was accepted');
}

/** A promise and its resolver: pauses a fake until the test has done what it must do meanwhile. */
export function latch(): { promise: Promise<void>; release: () => void } {
  let release!: () => void;
  const promise = new Promise<void>((r) => (release = r));
  return { promise, release };
}
