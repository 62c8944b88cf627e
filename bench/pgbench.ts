/** pgbench as a write load: the built-in TPC-B-like script (`-n`: no vacuum) against the demo dataset's pgbench tables. */
import path from 'node:path';
import { run } from '../stack/proc';

export interface PgbenchOptions {
  /** The stack's PostgreSQL binaries (PG_BIN of the stack env). */
  pgBin: string;
  /** Connection URL of the database whose pgbench tables take the load (pgbench accepts a URI as its dbname). */
  url: string;
  clients: number;
  seconds: number;
}

export interface PgbenchResult {
  /** Transactions per second, without the initial connection time, as pgbench reports it. */
  tps: number;
  transactions: number;
  /** Wall time of the pgbench process. */
  elapsedMs: number;
}

/** pgbench's summary lines, e.g. `number of transactions actually processed: 12345` and `tps = 823.4 (without initial connection time)`. */
export function parsePgbench(stdout: string): { tps: number; transactions: number } {
  const tps = /^tps = ([\d.]+) \(without initial connection time\)/m.exec(stdout);
  const transactions = /^number of transactions actually processed: (\d+)/m.exec(stdout);
  if (!tps || !transactions) throw new Error(`cannot read pgbench's summary from: ${stdout.slice(-500)}`);
  return { tps: Number(tps[1]), transactions: Number(transactions[1]) };
}

export async function runPgbench(opts: PgbenchOptions): Promise<PgbenchResult> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Only the URL says where to connect: a PG* variable of the caller must not redirect it.
  for (const k of Object.keys(env)) if (k.startsWith('PG')) delete env[k];
  const started = Date.now();
  const r = await run(path.join(opts.pgBin, 'pgbench'), ['-n', '-c', String(opts.clients), '-T', String(opts.seconds), opts.url], {
    env,
    timeoutMs: (opts.seconds + 60) * 1000,
  });
  const elapsedMs = Date.now() - started;
  if (r.code !== 0) throw new Error(`pgbench exited with ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return { ...parsePgbench(r.stdout), elapsedMs };
}
