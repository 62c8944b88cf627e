/**
 * One migration per database at a time: the migration leases the source and the target database,
 * naming its workflow, right after preflight and before anything changes; a second migration of
 * either database (same or another migration id) is refused, naming the first. Released when the
 * migration ends; a lease whose workflow is no longer running is stale and taken over.
 *
 * Where the lease lives: the database's comment (`COMMENT ON DATABASE`, pg_shdescription), as
 * `pgmig.lease {json}`. It needs no schema or table, so no copy carries it (pg_dump / pg_restore
 * without --create leave database comments alone, as do logical replication, DMS and pgcopydb 0.10,
 * which copies no database properties at all), the target reset cannot drop it, and the database
 * owner may set it (the freeze already needs ownership). A custom setting
 * (`ALTER DATABASE ... SET pgmig.lease`) would be neater but needs a superuser on PostgreSQL 15
 * ("permission denied to set parameter"), which Heroku and RDS roles are not. The comment the lease
 * replaces is kept in it and put back on release.
 *
 * Check-and-set is atomic: each change runs in one transaction holding a transaction-level advisory
 * lock (advisory locks are per database), so two migrations starting together cannot both see the
 * database free.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { escapeLiteral, type Client } from 'pg';
import type { SecretRef } from '../../contract/input';
import { describeLease, type DatabaseInventory, type DatabaseLease, type SeenLease } from '../../contract/plan';
import type { ActivityContext, ActivityDeps } from '../context';
import { qi, withClient } from './pg';

const MARK = 'pgmig.lease ';
/** pg_advisory_xact_lock keys ('pgmi', 'leas'): serialise lease changes on one database. */
const LOCK_KEYS = [0x70676d69, 0x6c656173] as const;

/** The lease as stored: who holds it, and the database comment it replaced (put back on release). */
interface StoredLease extends DatabaseLease {
  comment: string | null;
}

export interface LeaseArgs {
  migrationId: string;
  source: SecretRef;
  target: SecretRef;
}

export interface SideLease {
  side: 'source' | 'target';
  database: string;
  /** taken: it was free; taken-over: its holder had ended; already-held: this workflow held it (a retry). */
  state: 'taken' | 'taken-over' | 'already-held';
  since: string;
  tookOverFrom?: DatabaseLease;
}

export interface SideRelease {
  side: 'source' | 'target';
  database: string;
  /** released: it was this workflow's; not-held: free or another migration's (left alone). */
  state: 'released' | 'not-held';
  heldBy?: DatabaseLease;
}

export function formatLease(lease: StoredLease): string {
  return MARK + JSON.stringify(lease);
}

/** The lease in a database comment, or the comment as the user's own. */
export function parseLease(comment: string | null): { lease?: StoredLease; comment: string | null } {
  if (comment?.startsWith(MARK)) {
    try {
      const parsed = JSON.parse(comment.slice(MARK.length)) as Partial<StoredLease>;
      if (typeof parsed.workflowId === 'string' && typeof parsed.migrationId === 'string') {
        const lease: StoredLease = {
          workflowId: parsed.workflowId,
          runId: String(parsed.runId ?? ''),
          namespace: String(parsed.namespace ?? ''),
          migrationId: parsed.migrationId,
          since: String(parsed.since ?? ''),
          comment: typeof parsed.comment === 'string' ? parsed.comment : null,
        };
        return { lease, comment: lease.comment };
      }
    } catch {
      // Not ours after all: a user comment that happens to start with the mark.
    }
  }
  return { comment };
}

function holderOnly(lease: StoredLease): DatabaseLease {
  const { comment: _comment, ...holder } = lease;
  return holder;
}

/** This activity's workflow as a lease holder. */
export function currentHolder(migrationId: string): DatabaseLease {
  const info = Context.current().info;
  if (!info.workflowExecution || !info.workflowNamespace) {
    throw ApplicationFailure.nonRetryable('a database lease is held by a workflow: this activity runs outside one', 'NoWorkflow');
  }
  return {
    workflowId: info.workflowExecution.workflowId,
    runId: info.workflowExecution.runId,
    namespace: info.workflowNamespace,
    migrationId,
    since: new Date().toISOString(),
  };
}

async function readLease(client: Client): Promise<{ database: string; lease?: StoredLease; comment: string | null }> {
  const row = (
    await client.query<{ database: string; comment: string | null }>(
      `SELECT d.datname AS database, shobj_description(d.oid, 'pg_database') AS comment FROM pg_database d WHERE d.datname = current_database()`,
    )
  ).rows[0];
  return { database: row.database, ...parseLease(row.comment) };
}

/**
 * Whether the lease's workflow still runs. Stale only when Temporal says so (closed, or unknown in
 * this namespace); a lease from another namespace, or without a way to ask, counts as held.
 */
async function leaseState(deps: ActivityDeps, lease: DatabaseLease, namespace: string): Promise<SeenLease['state']> {
  if (!deps.describeWorkflow || lease.namespace !== namespace) return 'held';
  const status = await deps.describeWorkflow(lease.workflowId, lease.runId || undefined);
  return status === 'RUNNING' ? 'held' : 'stale';
}

/** Runs `fn` in one transaction holding the lease lock of the connected database. */
async function underLeaseLock<T>(client: Client, fn: () => Promise<T>): Promise<T> {
  // The migration's own sessions write even while the database default is read-only (a frozen source at release).
  await client.query('SET default_transaction_read_only = off');
  await client.query('BEGIN');
  try {
    await client.query(`SET LOCAL lock_timeout = '30s'`);
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [...LOCK_KEYS]);
    const result = await fn();
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

async function setComment(client: Client, database: string, comment: string | null): Promise<void> {
  await client.query(`COMMENT ON DATABASE ${qi(database)} IS ${comment === null ? 'NULL' : escapeLiteral(comment)}`);
}

/** Takes the lease of the connected database for `me`, or refuses (non-retryable) naming its running holder. */
export async function takeLease(client: Client, side: SideLease['side'], me: DatabaseLease, deps: ActivityDeps): Promise<SideLease> {
  return underLeaseLock(client, async () => {
    const { database, lease, comment } = await readLease(client);
    if (lease && lease.workflowId === me.workflowId) {
      // A retry (or a new run of the same workflow id): the lease names the current run, as found otherwise.
      if (lease.runId !== me.runId) await setComment(client, database, formatLease({ ...lease, runId: me.runId }));
      return { side, database, state: 'already-held', since: lease.since };
    }
    if (lease && (await leaseState(deps, lease, me.namespace)) === 'held') {
      throw ApplicationFailure.nonRetryable(
        `${describeLease(side, database, lease)}, which is still running: one migration per database at a time, so this one stops here and changed nothing; wait for it to end, or cancel it`,
        'DatabaseLeased',
        { side, database, heldBy: holderOnly(lease) },
      );
    }
    await setComment(client, database, formatLease({ ...me, comment }));
    return {
      side,
      database,
      state: lease ? 'taken-over' : 'taken',
      since: me.since,
      ...(lease ? { tookOverFrom: holderOnly(lease) } : {}),
    };
  });
}

/** Gives the connected database's lease back if `me` holds it (the comment it replaced returns); anyone else's stays. */
export async function releaseLeaseOf(client: Client, side: SideRelease['side'], me: { workflowId: string }): Promise<SideRelease> {
  return underLeaseLock(client, async () => {
    const { database, lease, comment } = await readLease(client);
    if (!lease || lease.workflowId !== me.workflowId) {
      return { side, database, state: 'not-held', ...(lease ? { heldBy: holderOnly(lease) } : {}) };
    }
    await setComment(client, database, comment);
    return { side, database, state: 'released' };
  });
}

/** For preflight: another migration's lease on the connected database, running (`held`) or not (`stale`). */
export async function withSeenLease(
  client: Client,
  inventory: DatabaseInventory,
  deps: ActivityDeps,
  migrationId: string,
): Promise<DatabaseInventory> {
  const me = currentHolder(migrationId);
  const { lease } = await readLease(client);
  if (!lease || lease.workflowId === me.workflowId) return inventory;
  const seen: SeenLease = { ...holderOnly(lease), state: await leaseState(deps, lease, me.namespace) };
  return { ...inventory, lease: seen };
}

export function createLeaseActivities({ deps, admin, endpoints }: ActivityContext) {
  return {
    /**
     * Leases the source, then the target, for this workflow (idempotent). Refused on either side:
     * the source lease just taken is given back and the refusal, naming the holder, is not retried.
     */
    async acquireLease(args: LeaseArgs): Promise<{ source: SideLease; target: SideLease }> {
      const [sourceUrl, targetUrl] = await endpoints(args);
      const me = currentHolder(args.migrationId);
      const source = await withClient(sourceUrl, admin(args.migrationId, 'source'), (c) => takeLease(c, 'source', me, deps));
      try {
        const target = await withClient(targetUrl, admin(args.migrationId, 'target'), (c) => takeLease(c, 'target', me, deps));
        return { source, target };
      } catch (err) {
        // A retry takes it again; a refusal leaves the source as this migration found it.
        await withClient(sourceUrl, admin(args.migrationId, 'source'), (c) => releaseLeaseOf(c, 'source', me)).catch(() => undefined);
        throw err;
      }
    },

    /** Gives back whichever of the two leases this workflow holds (idempotent; another migration's lease is left alone). */
    async releaseLease(args: LeaseArgs): Promise<{ source: SideRelease; target: SideRelease }> {
      const [sourceUrl, targetUrl] = await endpoints(args);
      const me = currentHolder(args.migrationId);
      const [source, target] = await Promise.allSettled([
        withClient(sourceUrl, admin(args.migrationId, 'source'), (c) => releaseLeaseOf(c, 'source', me)),
        withClient(targetUrl, admin(args.migrationId, 'target'), (c) => releaseLeaseOf(c, 'target', me)),
      ]);
      if (source.status === 'rejected') throw source.reason;
      if (target.status === 'rejected') throw target.reason;
      return { source: source.value, target: target.value };
    },
  };
}
