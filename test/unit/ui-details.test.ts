/** The Temporal UI's details (workflows/migration/details.ts): the frozen banner, the gate, progress and undos. */
import { describe, expect, it } from 'vitest';
import type { MigrationStatus } from '../../signals';
import { startSummary } from '../../signals/task-queue';
import { renderDetails, writesFrozen, type DetailsContext } from '../../workflows/migration/details';

const T0 = Date.parse('2026-12-02T14:03:12Z');
const ctx: DetailsContext = { workflowId: 'wf-1', source: 'env:SOURCE_URL', target: 'ssm:/prod/target', budgetMs: 30_000 };

function status(overrides: Partial<MigrationStatus> = {}): MigrationStatus {
  return {
    migrationId: 'm1',
    method: 'dump-restore',
    phase: 'copying',
    startedAt: new Date(T0 - 60_000).toISOString(),
    steps: [],
    preApprovals: [],
    decisions: [],
    refusedDecisions: [],
    compensations: [],
    freezeWindow: {},
    sides: { application: 'source', sourceWritable: true, targetWritable: true },
    ...overrides,
  };
}

describe('writesFrozen', () => {
  it('is true from the source freeze until writes are accepted again, and whenever the application side is read-only', () => {
    expect(writesFrozen(status())).toBe(false);
    expect(writesFrozen(status({ freezeWindow: { frozenAt: T0 } }))).toBe(true);
    expect(writesFrozen(status({ freezeWindow: { frozenAt: T0, unfrozenAt: T0 + 900 } }))).toBe(false);
    // After go-live the source stays read-only for the hold: the application writes on the target.
    expect(writesFrozen(status({ sides: { application: 'target', sourceWritable: false, targetWritable: true } }))).toBe(false);
    // A rollback during the hold: the target frozen, the application still on it.
    expect(writesFrozen(status({ sides: { application: 'target', sourceWritable: false, targetWritable: false } }))).toBe(true);
  });
});

describe('renderDetails', () => {
  it('opens with the frozen banner, its time against the budget, then the phase, progress and the gate', () => {
    const text = renderDetails(
      status({
        phase: 'awaiting-go-live',
        freezeWindow: { frozenAt: T0 },
        sides: { application: 'target', sourceWritable: false, targetWritable: false },
        pendingGate: { gate: 'go-live', openedAt: new Date(T0 + 5_000).toISOString(), deadline: new Date(T0 + 905_000).toISOString() },
        progress: {
          step: 'copy',
          percent: 45.2,
          done: 1_288_490_189,
          total: 2_850_000_000,
          unit: 'bytes',
          ratePerSecond: 39_845_888,
          etaSeconds: 41,
          at: '',
        },
      }),
      ctx,
      T0,
      T0 + 42_000,
    );
    const [banner, elapsed, head] = text.split('\n\n');
    expect(banner).toBe('## WRITES FROZEN since 14:03:12 UTC');
    expect(elapsed).toBe(
      '**Over the 30.0 s budget since 14:03:42 UTC.** The application points at the target; source READ-ONLY, target READ-ONLY.',
    );
    expect(head).toBe('**awaiting-go-live** · dump-restore · env:SOURCE_URL → ssm:/prod/target');
    expect(text).toContain('**Progress:** copy 45.2% (1.2 GB of 2.7 GB, 38.0 MB/s, ETA 41.0 s)');
    expect(text).toContain('Opened 14:03:17 UTC; **no decision by 14:18:17 UTC means no-go** (everything is undone). May decide: anyone.');
    expect(text).toContain(
      '```\nnpm run cli -- approve wf-1 --gate go-live --approver <your name>\nnpm run cli -- reject wf-1 --gate go-live --approver <your name> --reason "<why>"\n```',
    );
  });

  it('within budget, without a budget, and with no freeze at all', () => {
    const frozen = status({ freezeWindow: { frozenAt: T0 } });
    expect(renderDetails(frozen, ctx, T0, T0 + 2_000)).toContain('Budget 30.0 s: exceeded at 14:03:42 UTC.');
    expect(renderDetails(frozen, { ...ctx, budgetMs: undefined }, T0, T0 + 2_000)).toContain('No downtime budget set.');
    expect(renderDetails(status(), ctx, undefined, T0)).not.toContain('FROZEN');
  });

  it('shows replication before the freeze, the last undo with failures counted, and the end with the report command', () => {
    const replicating = status({
      method: 'logical',
      phase: 'catching-up',
      replication: { tablesReady: 3, tablesTotal: 11, lagSeconds: 1.24, updatedAt: new Date(T0).toISOString() },
    });
    expect(renderDetails(replicating, ctx, undefined, T0)).toContain('**Replication:** 3/11 tables ready, lag 1.2 s (at 14:03:12 UTC)');
    const rolledBack = status({
      phase: 'rolled-back',
      outcome: 'rolled-back',
      compensations: [
        { step: 'restore-config', state: 'completed', durationMs: 40 },
        { step: 'reset-target', state: 'failed', durationMs: 1_200, error: 'connection refused' },
      ],
    });
    const text = renderDetails(rolledBack, ctx, undefined, T0, 'go-live rejected by alice');
    expect(text).toContain('**rolled-back**: go-live rejected by alice ·');
    expect(text).toContain('**Last undo:** reset-target failed (1.2 s): connection refused; 2 run, **1 FAILED**');
    expect(text).toContain('## ROLLED BACK');
    expect(text).toContain('Report (Markdown + timeline): `npm run cli -- report wf-1`');
  });
});

describe('startSummary', () => {
  it('names the references, never a value, the method and the budget', () => {
    expect(
      startSummary({
        migrationId: 'shop',
        source: { url: { env: 'DATABASE_URL' } },
        target: { url: { ssm: '/prod/db', database: 'shop' } },
        method: 'logical',
        downtimeBudget: '5s',
      } as never),
    ).toBe('shop: env:DATABASE_URL -> ssm:/prod/db (database shop) (logical, downtime budget 5s)');
    // A literal where a reference belongs (refused by validation later) is not echoed.
    expect(startSummary({ source: { url: 'postgres://u:secret@h/db' }, target: {} } as never)).toBe('? -> ? (auto)');
  });
});
