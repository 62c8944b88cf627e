/**
 * A stand-in application for the local stack: it writes to whatever DATABASE_URL its config says,
 * reconnecting when the value changes (as a restarted app would), and records every acknowledged
 * write. The demo uses it to show the real write gap; the tests use it to prove that no acknowledged
 * write is lost and that no write succeeds during the freeze.
 */
import { Client } from 'pg';

export interface AckedWrite {
  seq: number;
  /** Epoch ms when the INSERT was sent and when its commit was acknowledged. */
  sentAt: number;
  ackedAt: number;
  /** Which database acknowledged it: "host:port/db". */
  database: string;
}

export interface WriterStats {
  acked: AckedWrite[];
  failures: number;
  /** Longest time between two acknowledged writes: the downtime the application saw. */
  longestGapMs: number;
  lastError?: string;
}

function databaseOf(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port}${u.pathname}`;
}

export class AppWriter {
  private stopped = false;
  private loop?: Promise<void>;
  private client?: Client;
  private clientUrl?: string;
  private seq = 0;
  readonly stats: WriterStats = { acked: [], failures: 0, longestGapMs: 0 };

  /**
   * `mixed`: besides the acknowledged insert, each write also updates a customer and deletes an
   * order item in the same transaction, so replication must carry UPDATE and DELETE too.
   */
  constructor(
    private readonly currentUrl: () => string | undefined,
    private readonly intervalMs = 20,
    private readonly mixed = false,
  ) {}

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<WriterStats> {
    this.stopped = true;
    await this.loop;
    await this.client?.end().catch(() => undefined);
    return this.stats;
  }

  private async connection(): Promise<Client | undefined> {
    const url = this.currentUrl();
    if (!url) return undefined;
    if (this.client && this.clientUrl === url) return this.client;
    await this.client?.end().catch(() => undefined);
    const client = new Client({ connectionString: url, application_name: 'demo-app', connectionTimeoutMillis: 2000 });
    client.on('error', () => undefined);
    this.client = undefined;
    await client.connect();
    this.client = client;
    this.clientUrl = url;
    return client;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const seq = ++this.seq;
      const sentAt = Date.now();
      try {
        const client = await this.connection();
        if (client) {
          if (this.mixed) {
            await client.query(
              `WITH ins AS (INSERT INTO public.audit_log (event, payload, at) VALUES ('app-write', jsonb_build_object('seq', $1::int), now())),
                    upd AS (UPDATE shop.customers SET name = 'renamed ' || $1::int WHERE id = 1 + ($1::int * 7919) % 2000),
                    del AS (DELETE FROM shop.order_items WHERE id = 1 + ($1::int * 104729) % 15000)
               SELECT 1`,
              [seq],
            );
          } else {
            await client.query(
              `INSERT INTO public.audit_log (event, payload, at) VALUES ('app-write', jsonb_build_object('seq', $1::int), now())`,
              [seq],
            );
          }
          const ackedAt = Date.now();
          const previous = this.stats.acked[this.stats.acked.length - 1];
          if (previous) this.stats.longestGapMs = Math.max(this.stats.longestGapMs, ackedAt - previous.ackedAt);
          this.stats.acked.push({ seq, sentAt, ackedAt, database: databaseOf(this.clientUrl!) });
        }
      } catch (err) {
        this.stats.failures += 1;
        this.stats.lastError = (err as Error).message;
        // A terminated or read-only session: drop it so the next write reconnects (and re-reads the config).
        await this.client?.end().catch(() => undefined);
        this.client = undefined;
      }
      await new Promise((r) => setTimeout(r, this.intervalMs));
    }
  }
}
