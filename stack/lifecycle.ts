/**
 * up / down / status of the whole stack: each component's module knows how to start and find its
 * component; this one decides the order, holds the lock, and records the result (state.json, the
 * env file).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { clusterLayout, layout, prepareStackDir, resolvePorts, resolveStackDir, saveState, type StackPorts } from './config';
import { buildEnv, stackEnvPath, writeEnvFile, type StackEnv } from './env-file';
import { withLock } from './lock';
import { ensureMoto, motoRunningPid } from './moto';
import { CLUSTER_ROLE, ensureCluster, postmasterInfo, stopCluster } from './pg-cluster';
import { assertTraversable, requirePgBin } from './pg-exec';
import { httpResponds, killProcess, portOpen } from './proc';
import { loadOrCreateSecrets } from './secrets';
import { ensureTemporal, temporalRunningPid } from './temporal';

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

/**
 * Start whatever part of the stack is not running (leaving running parts alone), (re)write
 * `.stack/stack.env` and return its contents. Idempotent and safe to call concurrently.
 */
export async function stackUp(opts: StackUpOptions = {}): Promise<StackEnv> {
  const log = opts.log ?? (() => undefined);
  const dir = resolveStackDir(opts);
  const l = prepareStackDir(dir);
  return withLock(l.lock, async () => {
    // Missing server binaries and an unreachable scratch dir are reported before anything is started.
    requirePgBin();
    await assertTraversable(dir);
    const ports = resolvePorts(l, opts.ports);
    const secrets = loadOrCreateSecrets(l.secrets);
    await ensureCluster(l, 'source', ports.source, secrets, log);
    await ensureCluster(l, 'target', ports.target, secrets, log);
    await ensureMoto(l, ports, log);
    await ensureTemporal(l, ports, log);
    // Only once every component answered, so a failed `up` does not change the ports later calls default to.
    saveState(l, ports);
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
  await withLock(l.lock, async () => {
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
    for (const kind of ['source', 'target'] as const) await stopCluster(dir, kind, log);
  });
  if (opts.purge) {
    // STACK_DIR may point anywhere: delete it only when it holds what `up` creates.
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

  // A recorded pid alone is not enough: the process may be alive but not (yet) serving.
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
