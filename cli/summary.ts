/**
 * The end of a migration as the CLI prints it: the demo, `start --follow`, `watch` and the `status`
 * of a closed workflow all show the same summary from the workflow's result.
 */
import { ApplicationFailure, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { formatMs } from '../contract/plan';
import type { MigrationResult } from '../signals';
import { uiLink } from './connection';

/**
 * The summary lines of a result. `extra` (the demo's application writes) goes after the steps,
 * where the write-freeze window it is measured against is printed.
 */
export function summaryLines(result: MigrationResult, workflowId: string, extra: string[] = []): string[] {
  const fw = result.freezeWindow;
  const lines = [
    '== summary',
    `   outcome              ${result.outcome}${result.reason ? ` (${result.reason})` : ''}`,
    `   method               ${result.method}`,
    `   rows moved           ${result.rowsCopied} in ${result.tables} tables`,
    `   verification         ${result.verification} (exact counts + checksums per table, sequences ahead of ids)`,
  ];
  if (result.catalogDifferences) {
    lines.push(
      `   catalog              ${result.catalogDifferences.length ? result.catalogDifferences.join('; ') : 'the same objects on both sides'}`,
    );
  }
  lines.push(
    `   write-freeze window  ${fw.durationMs !== undefined ? formatMs(fw.durationMs) : 'n/a'}${fw.gateWaitMs !== undefined ? ` (of which ${formatMs(fw.gateWaitMs)} waiting at the go-live gate)` : ''}`,
  );
  for (const s of result.steps) lines.push(`     ${s.name.padEnd(20)} ${formatMs(s.durationMs ?? 0)}`);
  lines.push(...extra);
  if (result.compensations.length)
    lines.push(`   compensations        ${result.compensations.map((c) => `${c.step}:${c.state}`).join(', ')}`);
  lines.push(`   Temporal UI          ${uiLink(workflowId)}`);
  return lines;
}

/** A closed migration: its result (a failed one carries it in its failure's details), and why it failed. */
export interface Closed {
  result?: MigrationResult;
  failure?: string;
}

export async function closedResult(handle: WorkflowHandle): Promise<Closed> {
  try {
    return { result: (await handle.result()) as MigrationResult };
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) return { failure: (err as Error).message };
    const details = err.cause instanceof ApplicationFailure ? (err.cause.details?.[0] as MigrationResult | undefined) : undefined;
    return { failure: err.cause?.message ?? err.message, ...(details?.outcome ? { result: details } : {}) };
  }
}

/**
 * Prints why a closed migration failed and its summary; returns the exit code: 0 when it went live,
 * 2 when it closed without going live (no-go, rolled back), 1 when it failed.
 */
export function printClosed(closed: Closed, workflowId: string, print: (line: string) => void, extra: string[] = []): number {
  const rolledBack = closed.result?.outcome === 'rolled-back';
  if (closed.failure) print(`\nmigration ${rolledBack ? 'was rolled back' : 'failed'}: ${closed.failure.replace(/^rolled back: /, '')}`);
  if (closed.result) {
    print('');
    for (const line of summaryLines(closed.result, workflowId, extra)) print(line);
  }
  if (rolledBack) return 2;
  if (closed.failure) return 1;
  return closed.result?.outcome === 'completed' ? 0 : 2;
}
