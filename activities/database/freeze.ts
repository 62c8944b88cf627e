/**
 * The write freeze. "Maintenance mode must be real": the database and the application roles get
 * default_transaction_read_only, sessions that predate the freeze are drained (in-flight
 * transactions may finish within a bound) and then terminated, and a probe write on a fresh
 * session must be rejected before the freeze counts as in force.
 */
import { Context, heartbeat } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from 'pg';
import { describeUnendable, type RoleReadOnlySetting, type UnendableSessions } from '../../contract/plan';
import { USER_SCHEMA } from './inventory';
import { connect, databaseName, describeUrl, qi, withClient } from './pg';

export interface FreezeOptions {
  label: string;
  applicationName: string;
  /** Roles whose own per-database default is set too (their role setting would otherwise beat the database's). */
  roles: string[];
  /** application_name prefix of the migration's own sessions, which are left alone. */
  ownSessionsPrefix: string;
  drainTimeoutMs: number;
}

export interface FreezeResult {
  /** Epoch ms on the worker when the last pre-freeze session was gone and the probe was rejected. */
  frozenAt: number;
  drainedSessions: number;
  terminatedSessions: number;
  drainMs: number;
  probe: string;
}

const DRAIN_POLL_MS = 10;

/** Our own sessions must be able to write even while the database default says read-only. */
async function writableSession(client: Client): Promise<void> {
  await client.query('SET default_transaction_read_only = off');
}

/** Sessions opened before `since`, except the migration's own (e.g. the verification snapshots). */
async function preFreezeSessions(client: Client, since: string, ownPrefix: string) {
  const res = await client.query(
    `SELECT pid, state, usename FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
        AND backend_start < $1::timestamptz AND application_name NOT LIKE $2 || '%'`,
    [since, ownPrefix],
  );
  return res.rows as { pid: number; state: string | null; usename: string }[];
}

/**
 * Sessions in this database that could go on writing after the freeze because the connected role can
 * neither see when they began nor end them: another role's sessions (pg_stat_activity hides their
 * start, state and type, and pg_terminate_backend needs that role's privileges or pg_signal_backend),
 * of a role that may write some table here. A session opened before the freeze keeps its writable
 * default, so such a session would write to a source whose data is already being copied. Superusers'
 * sessions are left out: they are administrators', not the application's.
 */
export async function sessionsBeyondTheFreeze(client: Client): Promise<UnendableSessions[]> {
  const res = await client.query<UnendableSessions>(
    `SELECT a.usename AS role, count(*)::int AS sessions
       FROM pg_stat_activity a JOIN pg_roles r ON r.oid = a.usesysid
      WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND NOT r.rolsuper
        AND NOT pg_has_role(current_user, a.usesysid, 'USAGE')
        AND NOT pg_has_role(current_user, 'pg_signal_backend', 'USAGE')
        AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
        AND EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE c.relkind IN ('r', 'p') AND ${USER_SCHEMA}
                       AND has_table_privilege(a.usesysid, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE'))
      GROUP BY 1 ORDER BY 1`,
  );
  return res.rows;
}

async function terminate(client: Client, pids: number[]): Promise<number> {
  if (!pids.length) return 0;
  const res = await client.query(`SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM unnest($1::int[]) AS pid`, [
    pids,
  ]);
  return res.rows[0].n as number;
}

/** Runs a write on a fresh session; returns the rejection, throws if the write went through. */
async function probeWriteRejected(url: string, opts: FreezeOptions): Promise<string> {
  const probe = await connect(url, { label: opts.label, applicationName: `${opts.applicationName}-probe` });
  try {
    await probe.query('BEGIN');
    await probe.query('CREATE TEMP TABLE pgmig_freeze_probe (x int)');
    await probe.query('ROLLBACK');
  } catch (err) {
    const e = err as { code?: string; message?: string };
    await probe.query('ROLLBACK').catch(() => undefined);
    if (e.code === '25006') return `rejected: ${e.message}`;
    throw err;
  } finally {
    await probe.end().catch(() => undefined);
  }
  throw ApplicationFailure.nonRetryable(
    `${opts.label} (${describeUrl(url)}): a probe write succeeded after the freeze; writes are NOT frozen`,
    'FreezeNotEffective',
  );
}

export async function freezeDatabase(url: string, opts: FreezeOptions): Promise<FreezeResult> {
  const db = databaseName(url);
  const client = await connect(url, { label: opts.label, applicationName: opts.applicationName });
  try {
    await writableSession(client);
    const startedAt = Date.now();
    const since = (await client.query('SELECT clock_timestamp()::text AS t')).rows[0].t as string;
    await client.query(`ALTER DATABASE ${qi(db)} SET default_transaction_read_only = on`);
    for (const role of opts.roles) {
      await client.query(`ALTER ROLE ${qi(role)} IN DATABASE ${qi(db)} SET default_transaction_read_only = on`);
    }
    // Preflight refused such sessions; one that connected since would make this freeze a pretence.
    const unendable = await sessionsBeyondTheFreeze(client);
    if (unendable.length) {
      const who = (await client.query('SELECT current_user AS u')).rows[0].u as string;
      throw ApplicationFailure.nonRetryable(`${opts.label}: ${describeUnendable(who, unendable)}`, 'FreezeNotEffective');
    }
    // Sessions opened before the ALTER keep their old (writable) default: drain, then terminate them.
    let terminated = 0;
    let drained = 0;
    const deadline = startedAt + opts.drainTimeoutMs;
    for (;;) {
      const sessions = await preFreezeSessions(client, since, opts.ownSessionsPrefix);
      if (!sessions.length) break;
      const idle = sessions.filter((s) => s.state === 'idle' || Date.now() >= deadline);
      const n = await terminate(
        client,
        idle.map((s) => s.pid),
      );
      if (Date.now() < deadline) drained += n;
      else terminated += n;
      if (idle.length === sessions.length) continue;
      // Inside the CDC window this runs as a local activity, which has no heartbeat.
      if (!Context.current().info.isLocal) heartbeat({ stage: 'draining', sessionsInTransaction: sessions.length - idle.length });
      await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
    }
    const probe = await probeWriteRejected(url, opts);
    return { frozenAt: Date.now(), drainedSessions: drained, terminatedSessions: terminated, drainMs: Date.now() - startedAt, probe };
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface UnfreezeResult {
  /** Epoch ms on the worker when writes were possible again. */
  unfrozenAt: number;
  reconnectedSessions: number;
}

/**
 * Puts the read-only settings back exactly as preflight found them, then ends the sessions that were
 * opened during the freeze (they carry the read-only default) so connection pools reconnect writable.
 */
export async function unfreezeDatabase(
  url: string,
  opts: { label: string; applicationName: string; roles: string[]; prior: RoleReadOnlySetting[]; ownSessionsPrefix: string },
): Promise<UnfreezeResult> {
  const db = databaseName(url);
  return withClient(url, { label: opts.label, applicationName: opts.applicationName }, async (client) => {
    await writableSession(client);
    const since = (await client.query('SELECT clock_timestamp()::text AS t')).rows[0].t as string;
    const restore = (target: string, prior: RoleReadOnlySetting | undefined) =>
      prior
        ? client.query(
            `ALTER ${target} SET default_transaction_read_only = ${prior.value === 'on' || prior.value === 'true' ? 'on' : 'off'}`,
          )
        : client.query(`ALTER ${target} RESET default_transaction_read_only`);
    await restore(
      `DATABASE ${qi(db)}`,
      opts.prior.find((p) => p.role === null && p.database === db),
    );
    for (const role of opts.roles) {
      await restore(
        `ROLE ${qi(role)} IN DATABASE ${qi(db)}`,
        opts.prior.find((p) => p.role === role && p.database === db),
      );
    }
    const unfrozenAt = Date.now();
    const stale = (await preFreezeSessions(client, since, opts.ownSessionsPrefix)).map((s) => s.pid);
    return { unfrozenAt, reconnectedSessions: await terminate(client, stale) };
  });
}

/** Whether new sessions of the URL's role get a read-only default (used by tests and by verification of a rollback). */
export async function isReadOnlyByDefault(url: string, label: string): Promise<boolean> {
  return withClient(url, { label, applicationName: 'pgmig-check' }, async (client) => {
    const res = await client.query(`SELECT current_setting('default_transaction_read_only') AS v`);
    return res.rows[0].v === 'on';
  });
}
