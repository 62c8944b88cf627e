/**
 * pgcopydb's change files (`<pgcopydb dir>/cdc`): one JSON file of wal2json messages per WAL
 * segment, and the SQL file its transform made of it. 0.10 cannot resume from what a killed run
 * left there, so we repair the files ourselves; and we read them to know the last transaction the
 * target must have applied before endpos.
 *
 * A dropped replication connection makes the receiver stream again from the slot and append what
 * it had already written (every transaction since applied twice): the repair drops transactions
 * that committed at or before what the files already hold.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { lsnToNumber } from './lsn';
import { cdcDir, type PgcopydbRun } from './names';
import { lastErrors, pgcopydbCommand } from './process';

/** The JSON change files in `cdc`, oldest first (named after their WAL segment). */
async function jsonChangeFiles(cdc: string): Promise<string[]> {
  return (await readdir(cdc)).filter((f) => /^[0-9A-F]{24}\.json$/.test(f)).sort();
}

const xidOf = (line: string): string | undefined => /^\{"action":"\w","xid":(\d+)/.exec(line)?.[1];

/** Whether an SQL change file is whole: empty, or ending with a complete COMMIT line (missing counts as whole). */
async function sqlComplete(file: string): Promise<boolean> {
  if (!existsSync(file)) return true;
  const sql = await readFile(file, 'utf8');
  if (sql.length === 0) return true;
  const lines = sql.split('\n');
  const last = lines[lines.length - 2] ?? '';
  if (!sql.endsWith('\n') || !/^COMMIT;/.test(last)) return false;
  try {
    JSON.parse(last.replace(/^COMMIT; -- /, ''));
    return true;
  } catch {
    return false;
  }
}

/** The highest commit LSN of the complete transactions in a JSON change file. */
async function lastCommitIn(file: string): Promise<number> {
  let max = 0;
  for (const line of (await readFile(file, 'utf8')).split('\n')) {
    const lsn = /^\{"action":"C".*?"lsn":"([0-9A-Fa-f]+\/[0-9A-Fa-f]+)"/.exec(line)?.[1];
    if (lsn) max = Math.max(max, lsnToNumber(lsn));
  }
  return max;
}

/**
 * The lines of a JSON change file worth resuming from: whole transactions only (a SIGKILL leaves a
 * torn line or a transaction without its COMMIT), and none that committed at or before `after` (a
 * re-stream appends transactions again).
 */
function wholeTransactions(content: string, after: number): { kept: string[]; orphans: number } {
  // Every element but the last of split('\n') is a complete line (the last one is '' or torn).
  const kept: string[] = [];
  let orphans = 0;
  let block: string[] | undefined;
  let blockCommit = 0;
  let maxCommit = after;
  for (const line of content.split('\n').slice(0, -1)) {
    const m = /^\{"action":"(\w)".*?"lsn":"([0-9A-Fa-f]+\/[0-9A-Fa-f]+)"/.exec(line);
    const action = m?.[1];
    if (action === 'B') {
      block = [line]; // a previous BEGIN without its COMMIT is dropped: the server sends it again
      blockCommit = lsnToNumber(m![2]);
    } else if (action === 'C' && block) {
      block.push(line);
      if (blockCommit > maxCommit) {
        kept.push(...block);
        maxCommit = blockCommit;
      } // else: already written once (a reconnect streamed it again)
      block = undefined;
    } else if (block) {
      block.push(line);
    } else if (action && /^[IUDTC]$/.test(action)) {
      orphans += 1; // a change or COMMIT whose BEGIN is nowhere: this file cannot be resumed from
    } else {
      kept.push(line); // outside a transaction (pgcopydb's own markers, e.g. the SWITCH "X")
    }
  }
  return { kept, orphans };
}

/**
 * 0.10 writes a message into the file of the WAL segment it comes from: a transaction whose first
 * record is in segment N and whose COMMIT is in N+1 has its BEGIN (and early changes) appended to
 * N's file after the segment switch, and the rest in N+1's. pgcopydb's running transform keeps that
 * transaction in memory; a transform in a new process (after a resume) meets a COMMIT without its
 * BEGIN ("Failed to setup replication origin transaction at origin LSN 0/0"). We move such a
 * transaction's lines from the end of `previous` to just before the rest of it in `current`.
 * Returns whether `current` changed.
 */
async function stitchTransactions(previous: string, current: string): Promise<boolean> {
  const prevLines = (await readFile(previous, 'utf8')).split('\n');
  const tail = prevLines.pop() ?? ''; // '' or a torn line
  const open = new Map<string, number>(); // xid -> index of its BEGIN, for transactions without COMMIT here
  prevLines.forEach((line, i) => {
    const action = /^\{"action":"(\w)"/.exec(line)?.[1];
    const xid = xidOf(line);
    if (action === 'B' && xid) open.set(xid, i);
    else if (action === 'C' && xid) open.delete(xid);
  });
  if (!open.size) return false;
  let curLines = (await readFile(current, 'utf8')).split('\n');
  const moved = new Set<number>();
  for (const [xid, begin] of open) {
    const at = curLines.findIndex((l) => xidOf(l) === xid);
    if (at < 0) continue; // its COMMIT is further on (or never came): leave it
    const lines = prevLines.filter((l, i) => i >= begin && xidOf(l) === xid);
    prevLines.forEach((l, i) => i >= begin && xidOf(l) === xid && moved.add(i));
    curLines = [...curLines.slice(0, at), ...lines, ...curLines.slice(at)];
  }
  if (!moved.size) return false;
  await writeFile(current, curLines.join('\n'));
  await writeFile(previous, [...prevLines.filter((_, i) => !moved.has(i)), tail].join('\n'));
  return true;
}

/**
 * Makes the CDC files of a killed pgcopydb resumable (0.10 does not do it itself). pgcopydb resumes
 * streaming after the last message of the newest JSON file (the `latest` link), appending to it;
 * the server then skips every transaction that committed before that point. So the newest file must
 * end with a whole transaction: a SIGKILL leaves a torn line ("Failed to parse JSON message") or a
 * transaction without its COMMIT, which the resumed stream would then never complete ("logical
 * message xid is X, which is different from the current transaction xid"). We cut the newest file
 * after its last whole transaction (dropping newer files that hold none) and re-point `latest`; an
 * older JSON file whose SQL is missing or torn (killed during the transform) is transformed again.
 */
export async function repairCdcForResume(run: PgcopydbRun): Promise<{ ok: true } | { ok: false; why: string }> {
  const cdc = cdcDir(run);
  if (!existsSync(cdc)) return { ok: false, why: 'the work dir holds no prefetched changes (another host, or removed)' };
  const jsonFiles = await jsonChangeFiles(cdc);
  const sqlOf = (json: string) => path.join(cdc, json.replace(/\.json$/, '.sql'));
  for (;;) {
    const latest = jsonFiles[jsonFiles.length - 1];
    if (!latest) return { ok: false, why: 'no prefetched change file holds a complete transaction' };
    const latestPath = path.join(cdc, latest);
    const previous = jsonFiles[jsonFiles.length - 2];
    if (previous && (await stitchTransactions(path.join(cdc, previous), latestPath))) await rm(sqlOf(latest), { force: true });
    const after = previous ? await lastCommitIn(path.join(cdc, previous)) : 0;
    const content = await readFile(latestPath, 'utf8');
    const { kept, orphans } = wholeTransactions(content, after);
    if (orphans) return { ok: false, why: `${latest} holds changes of a transaction whose BEGIN is lost` };
    if (!kept.some((l) => l.startsWith('{"action":"C"'))) {
      // Nothing whole in it: nothing of it was applied either. Resume from the file before.
      await rm(latestPath, { force: true });
      await rm(sqlOf(latest), { force: true });
      jsonFiles.pop();
      continue;
    }
    const repaired = kept.map((l) => l + '\n').join('');
    if (repaired !== content || !(await sqlComplete(sqlOf(latest)))) {
      if (repaired !== content) await writeFile(latestPath, repaired);
      await rm(sqlOf(latest), { force: true }); // transformed again when the receiver closes the file
    }
    const link = path.join(cdc, 'latest');
    await rm(link, { force: true });
    await symlink(latestPath, link);
    break;
  }
  for (const [i, json] of jsonFiles.slice(0, -1).entries()) {
    const sqlPath = sqlOf(json);
    const previous = jsonFiles[i - 1];
    if (previous && (await stitchTransactions(path.join(cdc, previous), path.join(cdc, json)))) await rm(sqlPath, { force: true });
    if (existsSync(sqlPath) && (await sqlComplete(sqlPath))) continue;
    const out = await pgcopydbCommand(run, ['stream', 'transform', path.join(cdc, json), `${sqlPath}.tmp`]);
    if (out.code !== 0) return { ok: false, why: `pgcopydb stream transform ${json} failed: ${lastErrors(out.tail)}` };
    await rename(`${sqlPath}.tmp`, sqlPath);
  }
  return { ok: true };
}

/**
 * The commit LSN of the last transaction with changes that committed before `endpos`, read from the
 * prefetched JSON files (newest first). pgcopydb's receiver writes every transaction that committed
 * before endpos in full; undefined when none has changes.
 */
export async function lastCommitBefore(run: PgcopydbRun, endpos: string): Promise<string | undefined> {
  const cdc = cdcDir(run);
  if (!existsSync(cdc)) return undefined;
  const end = lsnToNumber(endpos);
  const files = await jsonChangeFiles(cdc);
  const read = async (f: string | undefined) => (f ? (await readFile(path.join(cdc, f), 'utf8')).split('\n') : []);
  for (let i = files.length - 1; i >= 0; i--) {
    // A transaction may begin in the file before (see stitchTransactions): read both, in order, and
    // take the COMMITs of this one.
    const before = await read(files[i - 1]);
    const lines = await read(files[i]);
    const withChanges = new Set<string>();
    let best: number | undefined;
    let bestLsn: string | undefined;
    [...before, ...lines].forEach((line, n) => {
      const action = /^\{"action":"(\w)"/.exec(line)?.[1];
      const xid = xidOf(line);
      if (!action || !xid) return;
      if (action === 'I' || action === 'U' || action === 'D' || action === 'T') withChanges.add(xid);
      else if (action === 'C' && n >= before.length && withChanges.has(xid)) {
        const lsn = /"lsn":"([0-9A-Fa-f]+\/[0-9A-Fa-f]+)"/.exec(line)?.[1];
        if (lsn && lsnToNumber(lsn) < end && (best === undefined || lsnToNumber(lsn) > best)) {
          best = lsnToNumber(lsn);
          bestLsn = lsn;
        }
      }
    });
    if (bestLsn) return bestLsn;
  }
  return undefined;
}
