/**
 * The two PostgreSQL 15 clusters (source: Heroku Postgres stand-in, target: Amazon RDS stand-in):
 * initdb, their configuration, start (run as the cluster OS user), readiness, stop.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { clusterLayout, HEALTH_TIMEOUT_MS, type ClusterKind, type ClusterLayout, type Layout } from './config';
import { chownTo, clusterUser, runPg } from './pg-exec';
import { provisionCluster } from './pg-provision';
import { pidMatches, portOpen, sleep, tailFile } from './proc';
import type { Secrets } from './secrets';

export const CLUSTER_ROLE: Record<ClusterKind, string> = {
  source: 'Heroku Postgres stand-in',
  target: 'Amazon RDS stand-in',
};

/** postmaster pid and port from postmaster.pid, if that postmaster is alive. */
export function postmasterInfo(c: ClusterLayout): { pid: number; port: number } | undefined {
  try {
    const lines = fs.readFileSync(path.join(c.data, 'postmaster.pid'), 'utf8').split('\n');
    const pid = Number.parseInt(lines[0] ?? '', 10);
    const port = Number.parseInt(lines[3] ?? '', 10);
    if (pidMatches(pid, ['postgres'])) return { pid, port };
  } catch {
    // not running
  }
  return undefined;
}

function postgresConf(kind: ClusterKind, c: ClusterLayout, port: number): string {
  return `# Written by stack/pg-cluster.ts on every \`npm run stack -- up\` while the cluster is stopped.
# ${CLUSTER_ROLE[kind]}: TCP on 127.0.0.1 only, unix socket in an owner-only directory.
cluster_name = 'pgmig-${kind}'
listen_addresses = '127.0.0.1'
port = ${port}
unix_socket_directories = '${c.sock}'
unix_socket_permissions = 0700
max_connections = 200
password_encryption = 'scram-sha-256'
wal_level = logical
max_replication_slots = 16
max_wal_senders = 16
max_worker_processes = 16
max_logical_replication_workers = 8
max_wal_size = '2GB'
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
`;
}

const PG_HBA = `# Written by stack/pg-cluster.ts.
# Unix socket: trust, but the socket directory is 0700 and owned by the cluster's OS user,
# so only that user (and root) can reach it. TCP: scram-sha-256, so a wrong password fails.
# TYPE  DATABASE     USER  ADDRESS        METHOD
local   all          all                  trust
local   replication  all                  trust
host    all          all   127.0.0.1/32   scram-sha-256
host    all          all   ::1/128        scram-sha-256
host    replication  all   127.0.0.1/32   scram-sha-256
host    replication  all   ::1/128        scram-sha-256
`;

/** initdb if needed, start unless running (on `port`), wait until ready, then provision roles and databases. */
export async function ensureCluster(
  l: Layout,
  kind: ClusterKind,
  port: number,
  secrets: Secrets,
  log: (line: string) => void,
): Promise<void> {
  const user = await clusterUser();
  const c = clusterLayout(l.dir, kind);
  const name = `${kind}-postgres`;

  if (!fs.existsSync(c.home)) fs.mkdirSync(c.home, { mode: 0o755 });
  chownTo(user, c.home);
  if (!fs.existsSync(c.sock)) fs.mkdirSync(c.sock, { mode: 0o700 });
  fs.chmodSync(c.sock, 0o700);
  chownTo(user, c.sock);

  if (!fs.existsSync(path.join(c.data, 'PG_VERSION'))) {
    if (fs.existsSync(c.data) && fs.readdirSync(c.data).length > 0) {
      throw new Error(`${c.data} exists, is not empty and is not a PostgreSQL data directory; remove it.`);
    }
    log(`${name}: initdb ${c.data}`);
    const r = await runPg(
      user,
      'initdb',
      ['-D', c.data, '-U', 'postgres', '--encoding=UTF8', '--locale=C.UTF-8', '--auth-local=trust', '--auth-host=scram-sha-256'],
      c.home,
    );
    if (r.code !== 0) throw new Error(`initdb for the ${kind} cluster failed:\n${r.stdout}\n${r.stderr}`);
    // Our settings live in their own file, rewritten on each start, so postgresql.conf stays initdb's.
    fs.appendFileSync(path.join(c.data, 'postgresql.conf'), "\ninclude = 'stack.conf'\n");
  }

  let info = postmasterInfo(c);
  if (info) {
    if (info.port !== port) {
      throw new Error(
        `The ${kind} cluster is already running on port ${info.port}, not ${port}. Run \`npm run stack -- down\` first to change ports.`,
      );
    }
    log(`${name}: already running (pid ${info.pid})`);
  } else {
    for (const [file, content] of [
      [path.join(c.data, 'stack.conf'), postgresConf(kind, c, port)],
      [path.join(c.data, 'pg_hba.conf'), PG_HBA],
    ] as const) {
      fs.writeFileSync(file, content, { mode: 0o600 });
      chownTo(user, file);
    }
    if (await portOpen(port)) {
      throw new Error(
        `Cannot start the ${kind} cluster: port ${port} is already in use by a process this stack did not start ` +
          `(set ${kind === 'source' ? 'SOURCE_PG_PORT' : 'TARGET_PG_PORT'}).`,
      );
    }
    const r = await runPg(user, 'pg_ctl', ['start', '-D', c.data, '-l', c.log, '-w', '-t', '60', '-s'], c.home);
    if (r.code !== 0) {
      throw new Error(`pg_ctl start (${kind}) failed: ${r.stderr.trim()}\nLog: ${c.log}\n${tailFile(c.log, 15)}`);
    }
    info = postmasterInfo(c);
    log(`${name}: started (pid ${info?.pid ?? '?'})`);
  }

  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  for (;;) {
    const r = await runPg(user, 'pg_isready', ['-q', '-h', '127.0.0.1', '-p', String(port), '-t', '2'], c.home);
    if (r.code === 0) break;
    if (Date.now() > deadline) throw new Error(`${name} is not ready on 127.0.0.1:${port} (pg_isready). Log: ${c.log}`);
    await sleep(250);
  }

  await provisionCluster(kind, c, port, secrets);
}

/** pg_ctl stop -m fast (sessions are ended, nothing is lost: the data dir is kept). */
export async function stopCluster(dir: string, kind: ClusterKind, log: (line: string) => void): Promise<void> {
  const c = clusterLayout(dir, kind);
  const info = postmasterInfo(c);
  if (!info) {
    log(`${kind}-postgres: not running`);
    return;
  }
  log(`${kind}-postgres: pg_ctl stop -m fast (pid ${info.pid})`);
  const user = await clusterUser();
  const r = await runPg(user, 'pg_ctl', ['stop', '-D', c.data, '-m', 'fast', '-w', '-t', '60', '-s'], c.home);
  // A failed stop matters only if the postmaster is still there (it may have exited meanwhile).
  if (r.code !== 0 && postmasterInfo(c)) throw new Error(`pg_ctl stop (${kind}) failed: ${r.stderr.trim()}`);
}
