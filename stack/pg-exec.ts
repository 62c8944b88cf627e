/**
 * Running PostgreSQL's own programs (initdb, pg_ctl, pg_isready): where the server binaries are,
 * and as which OS user, since PostgreSQL refuses to run as root.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isExecutable, run, type RunResult } from './proc';

const PG_VERSION = '15';
const DEFAULT_PG_BIN = `/usr/lib/postgresql/${PG_VERSION}/bin`;

/** The server binaries' directory: env PG_BIN, else Debian's postgresql-15 location. */
export function pgBinDir(): string {
  return process.env.PG_BIN || DEFAULT_PG_BIN;
}

/** Fail before anything is started when a binary the clusters need is missing, saying how to get it. */
export function requirePgBin(): string {
  const bin = pgBinDir();
  for (const tool of ['initdb', 'pg_ctl', 'postgres', 'pg_isready']) {
    if (!isExecutable(path.join(bin, tool))) {
      throw new Error(
        `PostgreSQL ${PG_VERSION} server binaries not found: ${path.join(bin, tool)} is missing. ` +
          `Install them (Debian: apt-get install postgresql-${PG_VERSION}) or set PG_BIN to their directory.`,
      );
    }
  }
  return bin;
}

// ---------------------------------------------------------------------------------------
// OS user for the clusters (postgres refuses to run as root)

export interface ClusterUser {
  asRoot: boolean;
  name: string;
  uid: number;
  gid: number;
}

// Looked up once per process: the answer cannot change, and `id` would otherwise run for every cluster step.
let clusterUserCache: ClusterUser | undefined;

/** Ourselves, or the `postgres` OS user when running as root. */
export async function clusterUser(): Promise<ClusterUser> {
  if (clusterUserCache) return clusterUserCache;
  const uid = process.getuid?.() ?? -1;
  if (uid !== 0) {
    clusterUserCache = { asRoot: false, name: process.env.USER ?? String(uid), uid, gid: process.getgid?.() ?? -1 };
    return clusterUserCache;
  }
  const u = await run('id', ['-u', 'postgres']);
  const g = await run('id', ['-g', 'postgres']);
  if (u.code !== 0 || g.code !== 0) {
    throw new Error(
      'Running as root, but there is no `postgres` OS user to run the PostgreSQL clusters as ' +
        '(PostgreSQL refuses to run as root). Install postgresql-15 (it creates the user) or ' +
        '`useradd --system --home-dir /var/lib/postgresql postgres`.',
    );
  }
  clusterUserCache = { asRoot: true, name: 'postgres', uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
  return clusterUserCache;
}

/**
 * Run a PostgreSQL tool as the cluster OS user (runuser -u postgres when root). The caller's PG*
 * variables are dropped so they cannot point the tool at another server; the C.UTF-8 locale makes
 * initdb's result the same on every machine.
 */
export async function runPg(user: ClusterUser, tool: string, args: string[], cwd: string, timeoutMs = 120_000): Promise<RunResult> {
  const exe = path.join(pgBinDir(), tool);
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8' };
  for (const k of Object.keys(env)) if (k.startsWith('PG')) delete env[k];
  if (user.asRoot) return run('runuser', ['-u', user.name, '--', exe, ...args], { cwd, env, timeoutMs });
  return run(exe, args, { cwd, env, timeoutMs });
}

/** Hand a file or dir we created as root to the cluster OS user (a no-op when not root). */
export function chownTo(user: ClusterUser, file: string): void {
  if (user.asRoot) fs.chownSync(file, user.uid, user.gid);
}

/** Checked before `up` starts anything, since initdb as `postgres` would otherwise fail with a bare EACCES. */
export async function assertTraversable(dir: string): Promise<void> {
  const user = await clusterUser();
  if (!user.asRoot) return;
  const r = await run('runuser', ['-u', user.name, '--', 'test', '-x', dir, '-a', '-r', dir]);
  if (r.code !== 0) {
    throw new Error(
      `The scratch dir ${dir} is not reachable by the '${user.name}' OS user that runs the PostgreSQL clusters. ` +
        'Use a STACK_DIR under /tmp (the default), or make every parent directory traversable (chmod o+x).',
    );
  }
}
