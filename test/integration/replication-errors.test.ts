/**
 * Replication errors surfaced (logical): a row on the target with the key of a source row, put there
 * after the schema copy and before the initial copy, makes the table's synchronization fail over and
 * over. The errors show in `status.replication.errors` while the bound runs; then the initial copy
 * fails, not retried, with the error text from the target's log (row values masked), and the
 * compensation leaves nothing behind.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicationNames } from '../../activities/methods/cdc/marker';
import type { ReplicationErrors } from '../../activities/methods/method';

import { statusQuery, type MigrationStatus } from '../../signals';
import { databaseName } from '../../activities/database/pg';
import { openSandbox, query, sourceWritable, targetTableCount, type Sandbox } from '../helpers/harness';

/** replication.errorTimeout of the input below. */
const ERROR_TIMEOUT_MS = 15_000;

let sandbox: Sandbox;
let config: string;

beforeAll(async () => {
  sandbox = await openSandbox('replerr');
  config = sandbox.configText();
});

afterAll(async () => {
  await sandbox?.close();
});

describe('logical replication errors', () => {
  it('a conflicting row on the target: errors in status, then the initial copy fails with the error text within its bound, and compensates', async () => {
    const [row] = await query<{ r: unknown }>(sandbox.sourceUrl, 'SELECT to_jsonb(c) AS r FROM shop.customers c ORDER BY id LIMIT 1');
    // After the schema copy (the table and its keys exist), before the subscription starts copying it.
    const real = sandbox.realActivities;
    await sandbox.useActivities({
      ...real,
      copySchema: async (...args: Parameters<typeof real.copySchema>) => {
        const done = await real.copySchema(...args);
        await query(sandbox.targetAdminUrl, 'INSERT INTO shop.customers SELECT * FROM jsonb_populate_record(NULL::shop.customers, $1)', [
          row.r,
        ]);
        return done;
      },
    });
    const started = Date.now();
    const handle = await sandbox.start(
      sandbox.logicalInput({
        gates: { cutover: { timeout: '10m' } },
        // The input's bound, shorter than the default, reaches the watch through the workflow.
        replication: { tablesWithoutPrimaryKey: 'replica-identity-full', errorTimeout: '15s' },
      }),
    );

    // While the bound runs, status says what is wrong.
    const seen: { errors: ReplicationErrors; at: number }[] = [];
    const watching = (async () => {
      for (;;) {
        const status: MigrationStatus | undefined = await handle.query(statusQuery).catch(() => undefined);
        if (status?.replication?.errors) seen.push({ errors: status.replication.errors, at: Date.now() });
        if (status && ['failed', 'rolled-back'].includes(status.phase)) return;
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    const error = await handle.result().then(
      () => undefined,
      (err: unknown) => err,
    );
    const failedAt = Date.now();
    await watching;

    expect(error).toBeInstanceOf(WorkflowFailedError);
    const message = (error as WorkflowFailedError).cause?.message ?? '';
    expect(message).toMatch(/logical replication has been failing for \d+ s without progress/);
    // The copy meets the primary key or the unique email first; either way the key's value stays out of history.
    expect(message).toMatch(
      /duplicate key value violates unique constraint "customers_(pkey|email_key)" \(Key \((id|email)\)=\(…\) already exists\.\)/,
    );
    expect(message).toContain('COPY customers');
    expect(message).toContain('target table shop.customers already holds rows before its initial copy');
    expect(message).not.toContain(String((row.r as { email: string }).email));

    // Reported in status before the step failed, with counters and workers.
    expect(seen.length).toBeGreaterThan(0);
    const last = seen[seen.length - 1].errors;
    expect(last.syncErrorCount).toBeGreaterThan(0);
    expect(last.workers?.apply).toBe(true);
    expect(last.failAfterMs).toBe(ERROR_TIMEOUT_MS);
    expect(last.messages.join('\n')).toContain('duplicate key value violates unique constraint');
    // Within its bound: failed once errors had lasted failAfterMs without progress (plus a poll or two).
    const since = Date.parse(last.since!);
    expect(failedAt - since).toBeGreaterThanOrEqual(ERROR_TIMEOUT_MS - 1_000);
    expect(failedAt - since).toBeLessThan(ERROR_TIMEOUT_MS + 30_000);
    expect(failedAt - started).toBeLessThan(ERROR_TIMEOUT_MS + 90_000);

    const status = await handle.query(statusQuery);
    expect(status.steps.find((s) => s.name === 'initial-copy')?.state).toBe('failed');
    // One attempt of the watch: the failure is not retried.
    expect(status.compensations.filter((c) => c.state !== 'completed')).toEqual([]);

    // Nothing left: subscription, every slot of the source database (the table sync's too), publication, marker, tables, config.
    const names = replicationNames(sandbox.input().migrationId!);
    expect(await query(sandbox.targetAdminUrl, 'SELECT subname FROM pg_subscription WHERE subname = $1', [names.subscription])).toEqual([]);
    expect(
      await query(sandbox.sourceAdminUrl, 'SELECT slot_name FROM pg_replication_slots WHERE database = $1', [
        databaseName(sandbox.sourceUrl),
      ]),
    ).toEqual([]);
    expect(await query(sandbox.sourceAdminUrl, 'SELECT pubname FROM pg_publication WHERE pubname = $1', [names.publication])).toEqual([]);
    expect(await query(sandbox.sourceAdminUrl, `SELECT 1 FROM pg_namespace WHERE nspname = '_pgmig'`)).toEqual([]);
    expect(await targetTableCount(sandbox)).toBe(0);
    expect(sandbox.configText()).toBe(config);
    expect(await sourceWritable(sandbox)).toBe(true);
  }, 240_000);
});
