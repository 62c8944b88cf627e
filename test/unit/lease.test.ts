/** The lease as stored in a database comment, and what preflight's plan makes of another migration's lease. */
import { describe, expect, it } from 'vitest';
import { formatLease, parseLease } from '../../activities/database/lease';
import { checkMigrationInput, type MigrationInput } from '../../contract/input';
import { buildPlan } from '../../contract/plan';
import { inventory } from '../helpers/inventory';

const holder = { workflowId: 'wf-a', runId: 'run-1', namespace: 'default', migrationId: 'shop', since: '2025-01-01T00:00:00.000Z' };

function input(): MigrationInput {
  const checked = checkMigrationInput({
    source: { url: { env: 'S' } },
    target: { url: { env: 'T' } },
    configSink: { type: 'env-file', path: '/tmp/x.env' },
    downtimeBudget: '10m',
  });
  if (!checked.ok) throw new Error(JSON.stringify(checked.problems));
  return checked.input;
}

describe('lease in a database comment', () => {
  it('round-trips, keeping the comment it replaced', () => {
    const stored = formatLease({ ...holder, comment: "the shop's main database" });
    expect(parseLease(stored)).toEqual({ lease: { ...holder, comment: "the shop's main database" }, comment: "the shop's main database" });
    expect(parseLease(formatLease({ ...holder, comment: null })).comment).toBeNull();
  });

  it('leaves a user comment alone, even one that starts like a lease', () => {
    expect(parseLease('production, do not touch')).toEqual({ comment: 'production, do not touch' });
    expect(parseLease('pgmig.lease is what we call it')).toEqual({ comment: 'pgmig.lease is what we call it' });
    expect(parseLease(null)).toEqual({ comment: null });
  });
});

describe('plan: one migration per database', () => {
  it('blocks on a lease whose workflow runs, naming it', () => {
    const plan = buildPlan(input(), inventory({ database: 'shop', lease: { ...holder, state: 'held' } }), inventory());
    expect(plan.blockers).toHaveLength(1);
    expect(plan.blockers[0]).toContain('source database "shop" is leased by migration "shop" (workflow wf-a');
  });

  it('warns about a stale lease (its workflow ended) and takes it over', () => {
    const plan = buildPlan(input(), inventory(), inventory({ database: 'rds', lease: { ...holder, state: 'stale' } }));
    expect(plan.blockers).toEqual([]);
    expect(plan.warnings.join('\n')).toContain('target database "rds" is leased by migration "shop" (workflow wf-a');
  });
});
