/**
 * Verification that overlaps the freeze-copy. The source is frozen, so its per-table fingerprints are
 * final from the start: they are computed while the copy runs. Each target table is fingerprinted as
 * soon as the copy engine reports its data in (while its indexes may still be building: reads do not
 * wait for CREATE INDEX). The window then ends when the last table is both copied and verified, not
 * after a second full pass over both databases.
 */
import type { Client } from 'pg';
import type { TableInventory } from '../../contract/plan';
import { CATALOG_DEFAULTS, type CatalogOptions } from './catalog';
import { rowHashes, tableFingerprint, tableKey as key, type Fingerprint, type RowHash } from './fingerprint';
import {
  catalogComparison,
  compareTable,
  tablesWithRows,
  verificationReport,
  type TableVerification,
  type VerificationReport,
} from './verify';

export class VerificationDuringCopy {
  private readonly tables: TableInventory[];
  private readonly sourceFingerprints = new Map<string, Promise<Fingerprint>>();
  private readonly copied = new Set<string>();
  private readonly results: TableVerification[] = [];
  private readonly running: Promise<void>[] = [];
  private allCopied = false;
  private wake: () => void = () => undefined;
  private failure: Error | undefined;
  /** How each table's rows are hashed, decided once for both sides (see rowHashes). */
  private hashes: Promise<Map<string, RowHash>> = Promise.resolve(new Map());

  /**
   * `sourcePool` and `targetPool`: one table in flight per connection on each side. Tables are taken
   * largest first on the source; on the target in the order their data arrives.
   */
  constructor(
    private readonly sourcePool: Client[],
    private readonly targetPool: Client[],
    tables: TableInventory[],
    private readonly onTable: (done: number, total: number) => void = () => undefined,
    private readonly catalog: CatalogOptions = CATALOG_DEFAULTS,
  ) {
    this.tables = [...tablesWithRows(tables)].sort((a, b) => b.bytes - a.bytes);
  }

  get total(): number {
    return this.tables.length;
  }

  get done(): number {
    return this.results.length;
  }

  /** Starts the source side at once and the target side as tables arrive. */
  start(): this {
    this.hashes = rowHashes(this.sourcePool[0], this.targetPool[0], this.tables);
    this.hashes.catch(() => undefined); // awaited by every worker; a failure is reported there
    const sourceQueue = [...this.tables];
    const settle = new Map<string, { resolve: (f: Fingerprint) => void; reject: (e: unknown) => void }>();
    for (const t of this.tables) {
      const promise = new Promise<Fingerprint>((resolve, reject) => settle.set(key(t.schema, t.name), { resolve, reject }));
      promise.catch(() => undefined); // awaited by the target side; a failure is reported there
      this.sourceFingerprints.set(key(t.schema, t.name), promise);
    }
    for (const source of this.sourcePool) {
      this.running.push(
        this.guard(async () => {
          const hashes = await this.hashes;
          for (let t = sourceQueue.shift(); t && !this.failure; t = sourceQueue.shift()) {
            const pending = settle.get(key(t.schema, t.name))!;
            await tableFingerprint(source, t.schema, t.name, hashes.get(key(t.schema, t.name))).then(pending.resolve, (err: unknown) => {
              pending.reject(err);
              throw err;
            });
          }
        }),
      );
    }
    const targetQueue = [...this.tables];
    for (const target of this.targetPool) {
      this.running.push(
        this.guard(async () => {
          const hashes = await this.hashes;
          while (!this.failure) {
            const i = targetQueue.findIndex((t) => this.allCopied || this.copied.has(key(t.schema, t.name)));
            if (i < 0) {
              if (!targetQueue.length) return;
              await new Promise<void>((resolve) => {
                const previous = this.wake;
                this.wake = () => {
                  previous();
                  resolve();
                };
              });
              continue;
            }
            const [t] = targetQueue.splice(i, 1);
            const d = await tableFingerprint(target, t.schema, t.name, hashes.get(key(t.schema, t.name)));
            const s = await this.sourceFingerprints.get(key(t.schema, t.name))!;
            this.results.push(compareTable(t, s, d));
            this.onTable(this.results.length, this.tables.length);
          }
        }),
      );
    }
    return this;
  }

  /** The copy engine has this table's data in. Unknown tables (not in the plan) are ignored. */
  tableCopied(schema: string, name: string): void {
    this.copied.add(key(schema, name));
    this.signal();
  }

  /**
   * The whole copy is done: every remaining table is ready, and the result is what was found. The
   * catalog (tables and columns among it) is compared once the copy has built everything, and any
   * difference fails the verification: nothing is replicated after this copy to make up for it.
   */
  async finish(): Promise<VerificationReport> {
    this.allCopied = true;
    this.signal();
    await Promise.all(this.running);
    if (this.failure) throw this.failure;
    const catalog = await catalogComparison(this.sourcePool[0], this.targetPool[0], this.catalog, true);
    return verificationReport(this.results, [], [], catalog);
  }

  /** Stops waiting for tables (the copy failed): the workers end; their sessions are the caller's to close. */
  abandon(): void {
    this.failure ??= new Error('the copy did not complete');
    this.allCopied = true;
    this.signal();
  }

  private signal(): void {
    const wake = this.wake;
    this.wake = () => undefined;
    wake();
  }

  /** A failed fingerprint ends the verification (its error is rethrown by finish); the others stop picking work. */
  private async guard(work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (err) {
      this.failure ??= err instanceof Error ? err : new Error(String(err));
      this.allCopied = true;
      this.signal();
    }
  }
}
