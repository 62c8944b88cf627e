/**
 * The `triggers` method: change capture by statement-level triggers in the source database, which is
 * all a Heroku credential allows (it owns its tables; no REPLICATION, no slot). The capture goes in
 * first (`start`), then one long activity beside the workflow copies every table from one snapshot and
 * applies the captured changes to the target in commit order until the drain's marker has arrived
 * (`cloneAndFollow`). The apply keeps its watermark on the target, in the transaction of each batch, so
 * a retry on any worker resumes exactly after the last batch applied.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import type { Client } from 'pg';
import type { ActivityContext } from '../../context';
import { withClient } from '../../database/pg';
import { HEARTBEAT_EVERY_MS } from '../../heartbeat';
import { appName } from '../../names';
import { copyStepProgress, progressDetails } from '../../progress';
import { LagMeter, ProgressMeter } from '../../../contract/progress';
import { ensureMarker, replicationNames } from '../cdc/marker';
import { copyProgress, type CopyProgress, type ReplicationMethod, type ReplicationState } from '../method';
import { applyUntil, type ApplyProgress } from './apply';
import { installCapture, removeCapture } from './capture';
import { captureLag } from './log';
import { capturedTables } from './names';
import { snapshotCopy } from './snapshot-copy';
import { readApplyState, recordCopyProgress } from './state';

export function triggersMethod({ endpoints, admin, both }: ActivityContext): ReplicationMethod {
  // `both`: the migration's administrative sessions, which the freeze spares, so the drain's last changes still apply.
  const markerApplied = async (target: Client, migrationId: string) =>
    (await target.query(`SELECT 1 FROM ${replicationNames(migrationId).marker} WHERE id = 1`)).rowCount === 1;

  return {
    /** Capture on the source (the cutover marker table included): from its commit on, every change is logged. */
    async start(args) {
      const tables = capturedTables(args.migrationId, args.tables);
      const installed = await both(args, async (s) => {
        await ensureMarker(s, args.migrationId);
        return installCapture(s, {
          migrationId: args.migrationId,
          direction: 'forward',
          tables,
          policy: args.tablesWithoutPrimaryKey ?? 'refuse',
        });
      });
      return {
        replication: [`change capture ${installed.schema} on ${installed.installed.length + installed.alreadyInstalled.length} table(s)`],
        tables: tables.length - 1,
      };
    },

    /**
     * The copy from one snapshot (unless an earlier attempt finished it), then the apply until the
     * drain's marker is on the target. Heartbeats every second with the copy's or the apply's progress.
     */
    async cloneAndFollow(args) {
      const ctx = Context.current();
      const started = Date.now();
      const [sourceUrl, targetUrl] = await endpoints(args);
      const tables = capturedTables(args.migrationId, args.tables ?? []);
      // The details carry the copy's, then the apply's, progress (heartbeats only: the watch reports to the workflow).
      const copyMeter = new ProgressMeter('initial-copy', 'bytes');
      const applyMeter = new LagMeter('apply', 'changes');
      let details: unknown = { stage: 'starting' };
      const timer = setInterval(() => ctx.heartbeat(details), HEARTBEAT_EVERY_MS);
      try {
        const state = await withClient(targetUrl, admin(args.migrationId, 'target'), (t) => readApplyState(t, args.migrationId, 'forward'));
        if (!state?.copiedAt) {
          const copyStarted = Date.now();
          // The progress goes to the apply state too, every 2 s, where the watch (another activity) reads it.
          await withClient(targetUrl, admin(args.migrationId, 'target (progress)'), async (t) => {
            let latest: CopyProgress | undefined;
            let recorded: CopyProgress | undefined;
            const record = async () => {
              if (latest && latest !== recorded) await recordCopyProgress(t, args.migrationId, 'forward', (recorded = latest));
            };
            const recorder = setInterval(() => void record().catch(() => undefined), 2_000);
            try {
              await snapshotCopy({
                migrationId: args.migrationId,
                direction: 'forward',
                sourceUrl,
                targetUrl,
                applicationName: appName(args.migrationId, 'copy'),
                tables,
                jobs: Math.max(1, args.jobs),
                signal: ctx.cancellationSignal,
                onProgress: (p) => {
                  latest = copyProgress(p, Date.now() - copyStarted);
                  details = progressDetails(copyStepProgress(copyMeter, latest), { stage: 'initial copy', copy: latest });
                },
              });
            } finally {
              clearInterval(recorder);
            }
            await record();
          });
        }
        const result = await both(args, (s, t) =>
          applyUntil(s, t, {
            migrationId: args.migrationId,
            direction: 'forward',
            signal: ctx.cancellationSignal,
            stop: () => markerApplied(t, args.migrationId),
            onProgress: (p: ApplyProgress) => {
              const lag = applyMeter.measure(
                p.pendingChanges,
                0,
                `lag ${p.pendingChanges} changes, ${p.lagSeconds.toFixed(1)} s (${p.mode})`,
              );
              details = progressDetails(lag, { stage: 'applying', ...p });
            },
          }),
        );
        if (result.reason === 'aborted') ctx.cancellationSignal.throwIfAborted();
        return { mode: `copy and apply (${result.mode})`, elapsedMs: Date.now() - started, attempts: ctx.info.attempt };
      } finally {
        clearInterval(timer);
      }
    },

    /** The copy's progress and the apply's backlog, read from the target's apply state and the source's log. */
    async watch(args, beat): Promise<ReplicationState> {
      const ctx = Context.current();
      const until = Date.now() + args.reportAfterMs;
      return both(args, async (s, t) => {
        for (;;) {
          const state = await readApplyState(t, args.migrationId, 'forward');
          const copied = !!state?.copiedAt;
          const copy = state?.copyProgress ?? undefined;
          const lag = copied ? await captureLag(s, t, args.migrationId, 'forward') : undefined;
          // Tables as the copy counts them (leaf tables and the marker); one unit until the copy has reported.
          const total = copy?.tablesTotal ?? 1;
          const reported: ReplicationState = {
            tablesTotal: total,
            tablesReady: copied ? total : Math.min(copy?.tablesDone ?? 0, total - 1),
            ...(copy ? { copy: copied ? { ...copy, tablesDone: total, percent: 100, etaSeconds: 0 } : copy } : {}),
            lagBytes: null,
            lagSeconds: lag ? Math.round(lag.lagSeconds * 10) / 10 : null,
            lagChanges: lag ? lag.pendingChanges : null,
            caughtUp: !!lag && lag.pendingChanges <= (args.maxLagChanges ?? 1_000) && lag.lagSeconds <= (args.maxLagSeconds ?? 5),
          };
          (beat ?? ((r: ReplicationState) => ctx.heartbeat(r)))(reported);
          // While copying, back every 10 s so that `status` shows the copy's progress (not every 30 s).
          const copyingReportDue = !copied && Date.now() >= until - args.reportAfterMs + 10_000;
          if (reported.caughtUp || copyingReportDue || Date.now() >= until) return reported;
          // A cancelled migration (its heartbeat brings the cancellation) does not keep a session open while it compensates.
          await sleep(500, undefined, { signal: ctx.cancellationSignal }).catch(() => undefined);
          ctx.cancellationSignal.throwIfAborted();
        }
      });
    },

    /** The apply ended by itself at the marker; the capture goes after go-live (dropOwn), not inside the window. */
    stopInWindow: () => Promise.resolve([]),

    /** The capture on the source and the apply state on the target. Idempotent. */
    async dropOwn(args) {
      return both(args, async (s, t) => [
        ...(await removeCapture(s, args.migrationId, 'forward')).map((d) => `${d} (source)`),
        ...(await removeCapture(t, args.migrationId, 'forward')).map((d) => `${d} (target)`),
      ]);
    },
  };
}
