/**
 * Where one stack instance lives and how it is reached: the scratch dir and its layout, the ports
 * (remembered in state.json so status/down find what `up` started) and the startup timeout every
 * component shares.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readJson, writeFileAtomic } from './files';

/** How long a component may take to answer after it was started (or found running). */
export const HEALTH_TIMEOUT_MS = 60_000;

// ---------------------------------------------------------------------------------------
// Paths

/** Repository root (the directory holding package.json). */
export function repoRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  return path.resolve(__dirname, '..');
}

/** Under /tmp, not the repo: when running as root the `postgres` OS user must traverse every parent. */
function defaultStackDir(): string {
  const hash = crypto.createHash('sha256').update(repoRoot()).digest('hex').slice(0, 10);
  return path.join('/tmp', `pgmig-stack-${hash}`);
}

/** The scratch dir that stackUp/stackDown/stackStatus use. */
export function resolveStackDir(opts: { stackDir?: string } = {}): string {
  return path.resolve(opts.stackDir ?? (process.env.STACK_DIR || defaultStackDir()));
}

/** The files of the scratch dir that belong to the stack as a whole and to Temporal and moto. */
export interface Layout {
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

export type ClusterKind = 'source' | 'target';

/** One PostgreSQL cluster's part of the scratch dir (owned by the cluster OS user). */
export interface ClusterLayout {
  home: string;
  data: string;
  sock: string;
  log: string;
}

export function layout(dir: string): Layout {
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

export function clusterLayout(dir: string, kind: ClusterKind): ClusterLayout {
  const home = path.join(dir, kind);
  return { home, data: path.join(home, 'data'), sock: path.join(home, 'run'), log: path.join(home, 'postgres.log') };
}

/** Create the scratch dir for `up`; 0755 even if it existed, so the cluster OS user can reach its own subdirs. */
export function prepareStackDir(dir: string): Layout {
  const l = layout(dir);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  fs.chmodSync(dir, 0o755);
  return l;
}

// ---------------------------------------------------------------------------------------
// Ports and state.json

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

interface StackState {
  ports: StackPorts;
}

function envPort(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0 || n > 65535) throw new Error(`${name}=${raw} is not a valid port`);
  return n;
}

/** Per port: the explicit override, else its env variable, else the port of the last `up`, else the default. */
export function resolvePorts(l: Layout, override: Partial<StackPorts> = {}): StackPorts {
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

/** Remember the ports of a successful `up` for later status/down calls that set none. */
export function saveState(l: Layout, ports: StackPorts): void {
  writeFileAtomic(l.state, JSON.stringify({ ports } satisfies StackState, null, 2) + '\n', 0o644);
}
