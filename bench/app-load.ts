/** The stand-in application under load for one cutover: its config file, its writer, and what landed on the target. */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'dotenv';
import { Client } from 'pg';
import { AppWriter } from '../stack/app-writer';

export interface AppOutcome {
  /** Longest gap between two acknowledged writes: the downtime the application saw. */
  longestGapMs: number;
  acked: number;
  /** Acknowledged writes missing on the target. */
  lost: number;
}

export class AppUnderLoad {
  readonly configFile: string;
  private readonly writer: AppWriter;

  private constructor(
    readonly sourceUrl: string,
    intervalMs: number,
  ) {
    this.configFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgmig-bench-')), 'app.env');
    this.repoint(sourceUrl);
    const file = this.configFile;
    this.writer = new AppWriter(() => (existsSync(file) ? parse(readFileSync(file, 'utf8')).DATABASE_URL : undefined), intervalMs);
  }

  /** Writing to `sourceUrl` every `intervalMs`, for a second already. */
  static async start(sourceUrl: string, intervalMs: number): Promise<AppUnderLoad> {
    const app = new AppUnderLoad(sourceUrl, intervalMs);
    app.writer.start();
    await new Promise((r) => setTimeout(r, 1000));
    return app;
  }

  /** What a config change does: the writer reconnects to `url` at its next write. */
  repoint(url: string): void {
    writeFileSync(this.configFile, `DATABASE_URL=${url}\n`);
  }

  /** Another second of writes, then stop and count the acknowledged writes missing on the target. */
  async finish(targetUrl: string): Promise<AppOutcome> {
    await new Promise((r) => setTimeout(r, 1000));
    const writes = await this.writer.stop();
    rmSync(path.dirname(this.configFile), { recursive: true, force: true });
    const landed = new Set<number>();
    const target = new Client({ connectionString: targetUrl });
    await target.connect();
    try {
      const rows = await target.query(`SELECT (payload->>'seq')::int AS seq FROM public.audit_log WHERE event = 'app-write'`);
      for (const r of rows.rows) landed.add(r.seq as number);
    } finally {
      await target.end();
    }
    return { longestGapMs: writes.longestGapMs, acked: writes.acked.length, lost: writes.acked.filter((w) => !landed.has(w.seq)).length };
  }
}
