/**
 * The stack lock: several test workers (and a CLI) may call stackUp/stackDown at once, and two
 * of them starting the same cluster or server would collide on its port and data dir.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { pidAlive, readPidFile, sleep } from './proc';

/** Run `fn` holding `lockFile`; a lock whose holder died is taken over. */
export async function withLock<T>(lockFile: string, fn: () => Promise<T>, timeoutMs = 180_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // link(2) publishes the lock file atomically, already holding our pid.
    const tmp = `${lockFile}.${process.pid}.${crypto.randomBytes(4).toString('hex')}`;
    fs.writeFileSync(tmp, `${process.pid}\n`);
    try {
      fs.linkSync(tmp, lockFile);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    // Held: take it over if its holder died, else wait for it.
    const holder = readPidFile(lockFile);
    if (holder === undefined || !pidAlive(holder)) {
      try {
        fs.unlinkSync(lockFile);
      } catch {
        // someone else removed it
      }
      continue;
    }
    if (Date.now() > deadline) throw new Error(`Timed out waiting for the stack lock ${lockFile} held by pid ${holder}`);
    await sleep(250);
  }
  try {
    return await fn();
  } finally {
    try {
      if (readPidFile(lockFile) === process.pid) fs.unlinkSync(lockFile);
    } catch {
      // ignore
    }
  }
}
