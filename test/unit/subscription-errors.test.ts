import { describe, expect, it } from 'vitest';
import { ErrorEpisodes, maskValues, subscriptionErrorsInLog, type SubscriptionHealth } from '../../activities/methods/logical/errors';

// PostgreSQL 15's own lines (log_line_prefix '%m [%p] '), as a conflicting row on the target produces them.
const LOG = `2026-12-01 16:11:47.726 UTC [15253] LOG:  logical replication apply worker for subscription "pgmig_a" has started
2026-12-01 16:11:47.763 UTC [15255] LOG:  logical replication table synchronization worker for subscription "pgmig_a", table "customers" has started
2026-12-01 16:11:47.800 UTC [15300] ERROR:  relation "nope" does not exist at character 15
2026-12-01 16:11:47.848 UTC [15255] ERROR:  duplicate key value violates unique constraint "customers_email_key"
2026-12-01 16:11:47.848 UTC [15255] DETAIL:  Key (email)=(alice@example.com) already exists.
2026-12-01 16:11:47.848 UTC [15255] CONTEXT:  COPY customers, line 1
2026-12-01 16:11:47.856 UTC [15049] LOG:  background worker "logical replication worker" (PID 15255) exited with exit code 1
2026-12-01 16:11:48.000 UTC [15255] ERROR:  a reused pid, not a worker of ours any more
2026-12-01 16:11:52.905 UTC [15481] LOG:  logical replication table synchronization worker for subscription "pgmig_other", table "t" has started
2026-12-01 16:11:53.068 UTC [15481] ERROR:  duplicate key value violates unique constraint "t_pkey"
2026-12-01 16:12:03.577 UTC [15253] ERROR:  duplicate key value violates unique constraint "u_pkey"
2026-12-01 16:12:03.577 UTC [15253] DETAIL:  Key (id, "Kind")=(2, (x,y)) already exists.
2026-12-01 16:12:03.577 UTC [15253] CONTEXT:  processing remote data for replication origin "pg_16400" during message type "INSERT" for replication target relation "public.u" in transaction 736, finished at 0/1D7DB70
`;

describe('subscription errors', () => {
  it('finds the errors of this subscription’s workers in the log, with DETAIL (values masked) and CONTEXT', () => {
    expect(subscriptionErrorsInLog(LOG, 'pgmig_a')).toEqual([
      'duplicate key value violates unique constraint "customers_email_key" (Key (email)=(…) already exists.) (COPY customers, line 1)',
      'duplicate key value violates unique constraint "u_pkey" (Key (id, "Kind")=(…) already exists.) (processing remote data for replication origin "pg_16400" during message type "INSERT" for replication target relation "public.u" in transaction 736, finished at 0/1D7DB70)',
    ]);
    expect(subscriptionErrorsInLog(LOG, 'pgmig_other')).toEqual(['duplicate key value violates unique constraint "t_pkey"']);
    expect(subscriptionErrorsInLog(LOG, 'pgmig_none')).toEqual([]);
  });

  it('masks row values in DETAIL and CONTEXT', () => {
    expect(maskValues('Failing row contains (1, secret, 2024-01-01).')).toBe('Failing row contains (…).');
    expect(maskValues('COPY customers, line 3, column email: "bob@example.com"')).toBe('COPY customers, line 3, column email: "…"');
  });

  it('an episode begins with a new error, restarts with progress, ends when errors stop, and expires after the bound', () => {
    const health = (errors: number): SubscriptionHealth => ({
      exists: true,
      enabled: true,
      applyErrorCount: 0,
      syncErrorCount: errors,
      applyWorker: true,
      tableSyncWorkers: 0,
    });
    const e = new ErrorEpisodes(`unit-${Math.random()}`, 60_000);
    expect(e.observe(health(0), 5, 0)).toMatchObject({ active: false, began: false });
    expect(e.observe(health(1), 5, 1_000)).toMatchObject({ active: true, began: true, expired: false, since: 1_000 });
    expect(e.observe(health(2), 6, 6_000)).toMatchObject({ active: true, began: false, since: 6_000 }); // a table became ready
    expect(e.observe(health(3), 6, 40_000)).toMatchObject({ active: true, expired: false });
    expect(e.observe(health(4), 6, 66_000)).toMatchObject({ active: true, expired: true, since: 6_000 });

    const quiet = new ErrorEpisodes(`unit-${Math.random()}`, 60_000);
    quiet.observe(health(0), 1, 0);
    quiet.observe(health(1), 1, 1_000);
    expect(quiet.observe(health(1), 1, 40_000)).toMatchObject({ active: false }); // no new error for 30 s: over
  });

  it('goes on with the clock the workflow passes back (another worker, or a new call)', () => {
    const since = new Date(Date.now() - 59_000).toISOString();
    const e = new ErrorEpisodes(`unit-${Math.random()}`, 60_000, since);
    expect(
      e.observe({ exists: true, enabled: false, applyErrorCount: 0, syncErrorCount: 0, applyWorker: false, tableSyncWorkers: 0 }, 0),
    ).toMatchObject({ active: true, began: false, since: Date.parse(since) });
    const later = e.observe(
      { exists: true, enabled: false, applyErrorCount: 0, syncErrorCount: 0, applyWorker: false, tableSyncWorkers: 0 },
      0,
      Date.now() + 2_000,
    );
    expect(later.expired).toBe(true);
  });
});
