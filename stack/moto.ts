/**
 * moto_server: the AWS control-plane APIs the migration calls (config sinks, DMS, Route 53, ECS...),
 * served locally: it keeps records of the resources and moves no data.
 */
import * as fs from 'node:fs';
import { HEALTH_TIMEOUT_MS, type Layout, type StackPorts } from './config';
import { argAfter, httpResponds, livePidFromFile, pidAlive, portOpen, sleep, spawnDetached, tailFile, which } from './proc';
import { describeScriptsDirs, findInScriptsDirs, pipInstallScript } from './python';

/** Python's scripts dirs first (pip's moto[server] puts it there), then PATH, else pip install moto[server]. */
async function findMotoBinary(log: (l: string) => void): Promise<string> {
  const inScripts = await findInScriptsDirs('moto_server');
  if (inScripts) return inScripts;
  const onPath = which('moto_server');
  if (onPath) return onPath;
  const installed = await pipInstallScript(['moto[server]'], 'moto_server', log);
  if (installed) return installed;
  throw new Error(
    `moto_server was not found in Python's scripts dirs (${await describeScriptsDirs()}) nor on PATH, ` +
      "and `python3 -m pip install 'moto[server]'` did not provide it.",
  );
}

/** The moto_server this stack started, if its pid file still names it. */
export function motoRunningPid(l: Layout): number | undefined {
  return livePidFromFile(l.motoPid, ['moto']);
}

/** Start moto_server unless ours runs (on the same port), then wait until it answers HTTP. */
export async function ensureMoto(l: Layout, ports: StackPorts, log: (l: string) => void): Promise<void> {
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
