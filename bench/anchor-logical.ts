/**
 * The cutover anchor: a logical-replication cutover done by hand, the way an operator would type it,
 * with no workflow around it. Schema (pg_dump --schema-only, pg_restore), publication FOR ALL TABLES
 * and a subscription with copy_data; wait for the initial copy and the catch-up; then freeze the source
 * as the product does (database and role default_transaction_read_only, the writer's sessions
 * terminated), wait until the subscription has received and confirmed flushed the source's current LSN, setval every
 * sequence, drop the subscription and repoint the application. The stand-in application writes only
 * inserts, so the tables without a primary key need no REPLICA IDENTITY change here.
 */
import { Client } from 'pg';
import { createTargetDatabase, databaseUrl, dropDatabase, type StackEnv } from '../stack';
import { ADMIN_SESSION_OPTIONS, ident, lit } from '../stack/sql';
import { sleep } from '../stack/proc';
import { dumpAndRestore } from './programs';
import type { AppUnderLoad } from './app-load';

export interface AnchorRun {
  /** Longest gap between two acknowledged application writes. */
  longestGapMs: number;
  /** Freeze to repoint: the anchor's write-freeze window. */
  windowMs: number;
  schemaMs: number;
  initialCopyMs: number;
  catchUpMs: number;
  /** Freeze to the subscription having received the source's LSN at the freeze, and to its having confirmed it flushed. */
  drainReceivedMs: number;
  drainMs: number;
  totalMs: number;
  acked: number;
  lost: number;
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`anchor: ${what} not reached within ${timeoutMs} ms`);
    await sleep(10);
  }
}

/** One by-hand logical cutover of `sourceDb` (owned by the application role `appRole`) while `app` writes. */
export async function runLogicalAnchor(
  env: StackEnv,
  opts: { id: string; sourceDb: string; appRole: string; app: AppUnderLoad },
): Promise<AnchorRun> {
  const name = `${opts.id}_anchor`;
  const targetDb = `${name}_tgt`;
  const sourceAdmin = databaseUrl(env.SOURCE_ADMIN_URL, opts.sourceDb);
  const targetAdmin = databaseUrl(env.TARGET_ADMIN_URL, targetDb);
  const targetUrl = await createTargetDatabase(env, targetDb);
  const { app } = opts;
  const source = new Client({ connectionString: sourceAdmin, options: ADMIN_SESSION_OPTIONS });
  const target = new Client({ connectionString: targetAdmin, options: ADMIN_SESSION_OPTIONS });
  await source.connect();
  await target.connect();
  try {
    const started = Date.now();
    await dumpAndRestore(app.sourceUrl, targetUrl, { jobs: 1, schemaOnly: true });
    const schemaDone = Date.now();
    await source.query(`CREATE PUBLICATION ${ident(name)} FOR ALL TABLES`);
    await target.query(
      `CREATE SUBSCRIPTION ${ident(name)} CONNECTION ${lit(sourceAdmin)} PUBLICATION ${ident(name)} WITH (copy_data = true)`,
    );
    await until('initial copy', 3_600_000, async () => {
      const r = await target.query(
        `SELECT count(*)::int AS n, count(*) FILTER (WHERE srsubstate <> 'r')::int AS pending FROM pg_subscription_rel`,
      );
      return r.rows[0].n > 0 && r.rows[0].pending === 0;
    });
    const copied = Date.now();
    await until('catch-up', 600_000, async () => {
      const r = await source.query(
        `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) <= 1048576 AS ok FROM pg_replication_slots WHERE slot_name = $1`,
        [name],
      );
      return r.rows[0]?.ok === true;
    });
    const caughtUp = Date.now();

    // The freeze, as the product does it: read-only defaults, then the writer's sessions ended.
    const frozenAt = Date.now();
    await source.query(`ALTER DATABASE ${ident(opts.sourceDb)} SET default_transaction_read_only = on`);
    await source.query(`ALTER ROLE ${ident(opts.appRole)} IN DATABASE ${ident(opts.sourceDb)} SET default_transaction_read_only = on`);
    await source.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'demo-app'`,
    );
    const lsn = (await source.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0].lsn;
    // Received is not yet applied (the apply worker reports a message before applying it, and dropping the
    // subscription ends it): the drain waits for the position the subscriber confirmed as flushed.
    let receivedAt: number | undefined;
    await until('the source LSN flushed by the subscriber', 120_000, async () => {
      if (receivedAt === undefined) {
        const r = await target.query(
          `SELECT received_lsn >= $2::pg_lsn AS ok FROM pg_stat_subscription WHERE subname = $1 AND relid IS NULL`,
          [name, lsn],
        );
        if (r.rows[0]?.ok === true) receivedAt = Date.now();
      }
      const f = await source.query(`SELECT confirmed_flush_lsn >= $2::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = $1`, [
        name,
        lsn,
      ]);
      return f.rows[0]?.ok === true;
    });
    const drained = Date.now();
    const sequences = await source.query<{ seq: string; v: string }>(
      `SELECT format('%I.%I', schemaname, sequencename) AS seq, last_value::text AS v FROM pg_sequences WHERE last_value IS NOT NULL`,
    );
    for (const s of sequences.rows) await target.query('SELECT setval($1::regclass, $2::bigint, true)', [s.seq, s.v]);
    await target.query(`DROP SUBSCRIPTION ${ident(name)}`);
    app.repoint(targetUrl);
    const repointedAt = Date.now();
    const writes = await app.finish(targetUrl);
    return {
      longestGapMs: writes.longestGapMs,
      windowMs: repointedAt - frozenAt,
      schemaMs: schemaDone - started,
      initialCopyMs: copied - schemaDone,
      catchUpMs: caughtUp - copied,
      drainReceivedMs: (receivedAt ?? drained) - frozenAt,
      drainMs: drained - frozenAt,
      totalMs: repointedAt - started,
      acked: writes.acked,
      lost: writes.lost,
    };
  } finally {
    await target.end().catch(() => undefined);
    // After a failure the subscription goes with the target database, detached from its slot: the slot is dropped here.
    await dropDatabase(env.TARGET_ADMIN_URL, targetDb);
    await source
      .query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active', [name])
      .catch(() => undefined);
    await source.query(`DROP PUBLICATION IF EXISTS ${ident(name)}`).catch(() => undefined);
    await source.end().catch(() => undefined);
  }
}
