/**
 * Rehearsal schedules (`client.schedule`): `npm run cli -- schedule create|list|describe|pause|unpause|trigger|delete`.
 * Each schedule starts `rehearseMigration` on the migrations task queue with the rehearsal input of
 * a JSON file (validated first, so no literal secret reaches the schedule), overlap policy SKIP: a
 * rehearsal still running when the next is due is not doubled. The functions are the CLI's and the tests'.
 */
import type { CalendarSpec, Client, ScheduleDescription, ScheduleSpec } from '@temporalio/client';
import { ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import type { Command } from 'commander';
import ms from 'ms';
import { DurationString, durationMs } from '../contract/input';
import { formatProblemLines } from '../contract/problems';
import { checkRehearsalInput, type RehearsalInputDraft } from '../contract/rehearsal';
import { RehearsalOutcomeKey } from '../signals/rehearsal';
import { migrationStartOptions, taskQueue as defaultTaskQueue } from '../signals/task-queue';
import { readJsonFile } from './input-file';
import { temporalClient, uiLink } from './connection';

export interface CreateScheduleOptions {
  /** The rehearsal input (as in the JSON file). */
  input: unknown;
  scheduleId?: string;
  /** Every this long ("24h", "2s"). */
  interval?: string;
  /** A cron expression ("0 3 * * *"): the server turns it into a calendar spec. */
  cron?: string;
  /** A calendar spec, e.g. {"hour": 3, "minute": 0} or {"hour": 3, "dayOfWeek": "MONDAY"}. */
  calendar?: CalendarSpec;
  timezone?: string;
  paused?: boolean;
  note?: string;
  taskQueue?: string;
  /** How late a missed run (server down) may still start; default 1 hour. */
  catchupWindow?: string;
}

export class ScheduleInputError extends Error {}

export function rehearsalScheduleId(input: RehearsalInputDraft): string {
  return `rehearsal-${input.migration.migrationId ?? 'migration'}`;
}

/** Validates the input and the spec, then creates the schedule. */
export async function createRehearsalSchedule(client: Client, opts: CreateScheduleOptions): Promise<{ scheduleId: string }> {
  const checked = checkRehearsalInput(opts.input);
  if (!checked.ok) throw new ScheduleInputError(formatProblemLines(checked.problems, 'rehearsal'));
  const specs = [opts.interval, opts.cron, opts.calendar].filter((s) => s !== undefined);
  if (specs.length !== 1) throw new ScheduleInputError('give exactly one of --interval, --cron or --calendar');
  if (opts.interval !== undefined && !DurationString.safeParse(opts.interval).success) {
    throw new ScheduleInputError(`--interval: must be a positive duration such as "24h" or "30m" (got "${opts.interval}")`);
  }
  const spec: ScheduleSpec = {
    ...(opts.interval ? { intervals: [{ every: durationMs(opts.interval) }] } : {}),
    ...(opts.cron ? { cronExpressions: [opts.cron] } : {}),
    ...(opts.calendar ? { calendars: [opts.calendar] } : {}),
    ...(opts.timezone ? { timezone: opts.timezone } : {}),
  };
  const draft = opts.input as RehearsalInputDraft;
  const scheduleId = opts.scheduleId ?? rehearsalScheduleId(draft);
  const migrationId = checked.input.migration.migrationId ?? 'migration';
  await client.schedule.create({
    scheduleId,
    spec,
    action: {
      type: 'startWorkflow',
      workflowType: 'rehearseMigration',
      // Temporal appends the scheduled time to this id for each run.
      workflowId: `rehearsal-${migrationId}`,
      ...migrationStartOptions(opts.taskQueue ?? defaultTaskQueue()),
      args: [opts.input],
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: durationMs(opts.catchupWindow ?? '1h'), pauseOnFailure: false },
    state: { paused: !!opts.paused, note: opts.note ?? `rehearsals of ${migrationId}` },
    memo: { migrationId, purpose: 'rehearsal' },
  });
  return { scheduleId };
}

export interface ScheduleRow {
  scheduleId: string;
  paused: boolean;
  note?: string;
  spec: string;
  nextRuns: Date[];
  recent: { workflowId: string; scheduledAt: Date; takenAt: Date }[];
}

function describeSpec(spec: ScheduleDescription['spec'] | undefined): string {
  if (!spec) return '?';
  const parts: string[] = [];
  for (const i of spec.intervals ?? []) parts.push(`every ${typeof i.every === 'number' ? ms(i.every) : String(i.every)}`);
  // Ranges as the server returns them, shortened: "3", "1-5", "*/15"; fields that cover everything left out.
  const everything: Record<string, [unknown, unknown]> = {
    dayOfWeek: ['SUNDAY', 'SATURDAY'],
    dayOfMonth: [1, 31],
    month: ['JANUARY', 'DECEMBER'],
    second: [0, 59],
  };
  const field = (name: string, value: unknown): string | undefined => {
    const ranges = (Array.isArray(value) ? value : [value]) as { start: unknown; end?: unknown; step?: number }[];
    if (!ranges.length || value === undefined) return undefined;
    const all = everything[name];
    if (
      ranges.length === 1 &&
      all &&
      ranges[0].start === all[0] &&
      (ranges[0].end ?? ranges[0].start) === all[1] &&
      (ranges[0].step ?? 1) === 1
    )
      return undefined;
    if (name === 'second' && ranges.length === 1 && ranges[0].start === 0 && (ranges[0].end ?? 0) === 0) return undefined;
    const text = ranges
      .map((r) => {
        const end = r.end ?? r.start;
        const step = r.step && r.step > 1 ? `/${r.step}` : '';
        return `${end === r.start ? String(r.start) : `${String(r.start)}-${String(end)}`}${step}`;
      })
      .join(',');
    return `${name}=${text}`;
  };
  for (const c of spec.calendars ?? []) {
    const fields = (['month', 'dayOfMonth', 'dayOfWeek', 'hour', 'minute', 'second'] as const)
      .map((n) => field(n, (c as unknown as Record<string, unknown>)[n]))
      .filter(Boolean);
    parts.push(`calendar ${fields.join(' ')}${c.comment ? ` (${c.comment})` : ''}`);
  }
  return `${parts.join(', ') || '?'}${spec.timezone ? ` (${spec.timezone})` : ''}`;
}

/** Schedules whose action starts rehearseMigration. */
export async function listRehearsalSchedules(client: Client): Promise<ScheduleRow[]> {
  const rows: ScheduleRow[] = [];
  for await (const s of client.schedule.list()) {
    if (s.action?.workflowType !== 'rehearseMigration') continue;
    rows.push({
      scheduleId: s.scheduleId,
      paused: s.state.paused,
      ...(s.state.note ? { note: s.state.note } : {}),
      spec: describeSpec(s.spec),
      nextRuns: s.info.nextActionTimes,
      recent: s.info.recentActions.map((a) => ({
        workflowId: a.action.workflow.workflowId,
        scheduledAt: a.scheduledAt,
        takenAt: a.takenAt,
      })),
    });
  }
  return rows.sort((a, b) => a.scheduleId.localeCompare(b.scheduleId));
}

export async function describeRehearsalSchedule(client: Client, scheduleId: string): Promise<ScheduleDescription> {
  return client.schedule.getHandle(scheduleId).describe();
}

export async function pauseRehearsalSchedule(client: Client, scheduleId: string, note?: string): Promise<void> {
  await client.schedule.getHandle(scheduleId).pause(note ?? 'paused from the pgmig CLI');
}

export async function unpauseRehearsalSchedule(client: Client, scheduleId: string, note?: string): Promise<void> {
  await client.schedule.getHandle(scheduleId).unpause(note ?? 'unpaused from the pgmig CLI');
}

/** Runs the action now (even when paused: that is what a trigger is for), overlap SKIP still applies. */
export async function triggerRehearsalSchedule(client: Client, scheduleId: string): Promise<void> {
  await client.schedule.getHandle(scheduleId).trigger(ScheduleOverlapPolicy.SKIP);
}

export async function deleteRehearsalSchedule(client: Client, scheduleId: string): Promise<void> {
  await client.schedule.getHandle(scheduleId).delete();
}

/** The workflow runs a schedule started, newest first, with their RehearsalOutcome. */
export async function rehearsalRunsOf(
  client: Client,
  scheduleId: string,
): Promise<{ workflowId: string; runId: string; status: string; outcome?: string; startTime: Date }[]> {
  const out: { workflowId: string; runId: string; status: string; outcome?: string; startTime: Date }[] = [];
  for await (const wf of client.workflow.list({
    query: `WorkflowType = 'rehearseMigration' AND TemporalScheduledById = '${scheduleId.replace(/'/g, "\\'")}'`,
  })) {
    const outcome = wf.typedSearchAttributes.get(RehearsalOutcomeKey);
    out.push({
      workflowId: wf.workflowId,
      runId: wf.runId,
      status: wf.status.name,
      ...(outcome ? { outcome } : {}),
      startTime: wf.startTime,
    });
  }
  return out.sort((a, b) => b.startTime.getTime() - a.startTime.getTime());
}

const fmt = (d?: Date) => (d ? d.toISOString().replace('T', ' ').slice(0, 19) : '-');

export function registerScheduleCommands(program: Command, connect: () => Promise<Client> = temporalClient): void {
  const schedule = program.command('schedule').description('rehearsal schedules: create, list, describe, pause, unpause, trigger, delete');
  const fail = (err: unknown) => {
    if (err instanceof ScheduleNotFoundError) console.error(`no such schedule: ${err.scheduleId ?? ''}`);
    else console.error((err as Error).message);
    process.exitCode = err instanceof ScheduleInputError ? 2 : 1;
  };

  schedule
    .command('create')
    .description('schedule rehearseMigration with the rehearsal input of a JSON file (overlap policy: skip)')
    .requiredOption('--input <file>', 'rehearsal input JSON (see examples/rehearsal-demo.json)')
    .option('--id <scheduleId>', 'schedule id (default rehearsal-<migrationId>)')
    .option('--interval <duration>', 'run every this long, e.g. 24h')
    .option('--cron <expression>', "cron expression, e.g. '0 3 * * *' (03:00 every day)")
    .option('--calendar <json>', 'calendar spec as JSON, e.g. \'{"hour":3,"minute":0}\'')
    .option('--timezone <tz>', 'time zone of --cron / --calendar (default UTC)')
    .option('--paused', 'create it paused (trigger still runs it)')
    .option('--note <text>', 'note shown with the schedule')
    .action(
      async (opts: {
        input: string;
        id?: string;
        interval?: string;
        cron?: string;
        calendar?: string;
        timezone?: string;
        paused?: boolean;
        note?: string;
      }) => {
        try {
          const input = readJsonFile(opts.input);
          let calendar: CalendarSpec | undefined;
          if (opts.calendar !== undefined) {
            try {
              calendar = JSON.parse(opts.calendar) as CalendarSpec;
            } catch {
              throw new ScheduleInputError('--calendar: must be a JSON object such as {"hour":3,"minute":0}');
            }
          }
          const client = await connect();
          const { scheduleId } = await createRehearsalSchedule(client, {
            input,
            ...(opts.id ? { scheduleId: opts.id } : {}),
            ...(opts.interval ? { interval: opts.interval } : {}),
            ...(opts.cron ? { cron: opts.cron } : {}),
            ...(calendar ? { calendar } : {}),
            ...(opts.timezone ? { timezone: opts.timezone } : {}),
            ...(opts.paused ? { paused: true } : {}),
            ...(opts.note ? { note: opts.note } : {}),
          });
          const d = await describeRehearsalSchedule(client, scheduleId);
          console.log(`created schedule ${scheduleId}${d.state.paused ? ' (paused)' : ''}; next run ${fmt(d.info.nextActionTimes[0])} UTC`);
        } catch (err) {
          fail(err);
        }
      },
    );

  schedule
    .command('list')
    .description('rehearsal schedules with their next and latest runs')
    .action(async () => {
      try {
        const client = await connect();
        const rows = await listRehearsalSchedules(client);
        if (!rows.length) console.log('no rehearsal schedules');
        for (const r of rows) {
          const last = r.recent[r.recent.length - 1];
          console.log(
            `${r.scheduleId.padEnd(36)} ${(r.paused ? 'PAUSED' : 'active').padEnd(7)} ${r.spec.padEnd(28)} next ${fmt(r.nextRuns[0])}  last ${last ? `${fmt(last.takenAt)} ${last.workflowId}` : '-'}`,
          );
        }
      } catch (err) {
        fail(err);
      }
    });

  schedule
    .command('describe <scheduleId>')
    .description('state, spec, next runs and the rehearsals it started (with their RehearsalOutcome)')
    .action(async (scheduleId: string) => {
      try {
        const client = await connect();
        const d = await describeRehearsalSchedule(client, scheduleId);
        console.log(`${scheduleId}: ${d.state.paused ? 'PAUSED' : 'active'}${d.state.note ? ` (${d.state.note})` : ''}`);
        console.log(
          `spec: ${describeSpec(d.spec)}; overlap ${d.policies.overlap}; actions taken ${d.info.numActionsTaken}, skipped for overlap ${d.info.numActionsSkippedOverlap}`,
        );
        console.log(`next: ${d.info.nextActionTimes.slice(0, 3).map(fmt).join(', ') || '-'}`);
        for (const run of await rehearsalRunsOf(client, scheduleId)) {
          console.log(
            `  ${fmt(run.startTime)} ${run.workflowId.padEnd(48)} ${run.status.padEnd(10)} ${run.outcome ?? ''}  ${uiLink(run.workflowId, run.runId)}`,
          );
        }
      } catch (err) {
        fail(err);
      }
    });

  for (const [name, run, what] of [
    ['pause', (c: Client, id: string, note?: string) => pauseRehearsalSchedule(c, id, note), 'paused'],
    ['unpause', (c: Client, id: string, note?: string) => unpauseRehearsalSchedule(c, id, note), 'unpaused'],
  ] as const) {
    schedule
      .command(`${name} <scheduleId>`)
      .description(name === 'pause' ? 'pause a rehearsal schedule (`trigger` still runs it)' : 'resume a paused rehearsal schedule')
      .option('--note <text>', 'why')
      .action(async (scheduleId: string, opts: { note?: string }) => {
        try {
          await run(await connect(), scheduleId, opts.note);
          console.log(`${scheduleId} ${what}`);
        } catch (err) {
          fail(err);
        }
      });
  }

  schedule
    .command('trigger <scheduleId>')
    .description('start a rehearsal now (also when the schedule is paused)')
    .action(async (scheduleId: string) => {
      try {
        await triggerRehearsalSchedule(await connect(), scheduleId);
        console.log(`${scheduleId} triggered; \`schedule describe ${scheduleId}\` lists its runs`);
      } catch (err) {
        fail(err);
      }
    });

  schedule
    .command('delete <scheduleId>')
    .description('delete the schedule (rehearsals it started are not affected)')
    .action(async (scheduleId: string) => {
      try {
        await deleteRehearsalSchedule(await connect(), scheduleId);
        console.log(`${scheduleId} deleted`);
      } catch (err) {
        fail(err);
      }
    });
}
