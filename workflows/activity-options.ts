/**
 * Every activity option profile of the workflows, in one place: how long a step may take, how a
 * dead worker is noticed (heartbeat timeout) and how often it is retried. The workflows pick a
 * profile by what the step is, never by writing options inline.
 */
import { ActivityCancellationType, proxyActivities, proxyLocalActivities, type ActivityOptions } from '@temporalio/workflow';
import type { MigrationActivities } from '../activities';
import type { HostActivities } from '../activities/host';
import type { RehearsalActivities } from '../activities/rehearsal';
import { ACCESS_FAILURE_TYPES } from '../contract/failures';
import { withSummaries } from './activity-summaries';

type Activities = MigrationActivities & RehearsalActivities & HostActivities;

/** Short database steps: preflight, freeze, sequences, config swap, smoke test. */
const regular: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '30s',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '10s',
    maximumAttempts: 5,
    nonRetryableErrorTypes: ACCESS_FAILURE_TYPES,
  },
};

export const PROFILES = {
  regular,
  /**
   * The freeze-copy's window steps as regular activities, for histories recorded before they became
   * local: they heartbeat every 500 ms from their start, so a 2 s heartbeat timeout finds a dead worker.
   */
  freezeCopyWindow: {
    ...regular,
    heartbeatTimeout: '2s',
    retry: {
      initialInterval: '200ms',
      backoffCoefficient: 2,
      maximumInterval: '5s',
      maximumAttempts: 5,
      nonRetryableErrorTypes: ACCESS_FAILURE_TYPES,
    },
  },
  /**
   * The write-freeze window's short steps as local activities: run by the worker that runs the workflow
   * task, without a server round trip per step; a dead worker is replaced at the workflow task timeout.
   * Retried the same way, bounded so a stuck step fails fast.
   */
  window: {
    startToCloseTimeout: '2 minutes',
    localRetryThreshold: '10s',
    retry: {
      initialInterval: '200ms',
      backoffCoefficient: 2,
      maximumInterval: '5s',
      maximumAttempts: 5,
      nonRetryableErrorTypes: ACCESS_FAILURE_TYPES,
    },
  },
  /** Long steps that heartbeat: schema copies, starting replication (a DMS instance takes 5-15 minutes), DMS cleanup. */
  long: {
    startToCloseTimeout: '24 hours',
    heartbeatTimeout: '30s',
    retry: {
      initialInterval: '2s',
      backoffCoefficient: 2,
      maximumInterval: '30s',
      maximumAttempts: 5,
      nonRetryableErrorTypes: ACCESS_FAILURE_TYPES,
    },
  },
  /** Lag polling heartbeats every 200 ms: a dead worker is noticed (and replaced) within 10 s. */
  lagPolling: {
    startToCloseTimeout: '10 minutes',
    heartbeatTimeout: '10s',
    retry: {
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '10s',
      maximumAttempts: 10,
      nonRetryableErrorTypes: ACCESS_FAILURE_TYPES,
    },
  },
  /** A drain that outlasts a local activity (histories of pgcopydb 0.10's follow, which applied up to its endpos in 10-20 s). */
  slowDrain: {
    startToCloseTimeout: '30 minutes',
    retry: { initialInterval: '1s', maximumAttempts: 3, nonRetryableErrorTypes: ACCESS_FAILURE_TYPES },
  },
  /** A clone-and-follow for the whole replication (histories of pgcopydb 0.10's follow); a cancelled run stops its processes before the undos. */
  cloneFollow: {
    startToCloseTimeout: '7 days',
    heartbeatTimeout: '1 minute',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '5s',
      backoffCoefficient: 2,
      maximumInterval: '1 minute',
      maximumAttempts: 5,
      nonRetryableErrorTypes: ACCESS_FAILURE_TYPES,
    },
  },
  /**
   * The triggers method's copy and apply beside the workflow until the drain's marker. Heartbeats every
   * 500 ms and a 2 s heartbeat timeout: during the drain (writes frozen) a dead worker's apply resumes on
   * another within seconds, from the watermark it committed on the target. A change the target refuses
   * fails non-retryable from the activity itself.
   */
  captureApply: {
    startToCloseTimeout: '30 days',
    heartbeatTimeout: '2s',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '200ms',
      backoffCoefficient: 2,
      maximumInterval: '30s',
      maximumAttempts: 20,
      nonRetryableErrorTypes: ACCESS_FAILURE_TYPES,
    },
  },
  /**
   * One attempt: a retry would take its snapshots later than the freeze point, when the target may hold
   * new writes (the workflow starts a new one while that is still safe). The window waits for its
   * snapshots, so a dead worker is found as fast as the window's other steps.
   */
  freezePointVerification: {
    startToCloseTimeout: '12 hours',
    heartbeatTimeout: '2s',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { maximumAttempts: 1, nonRetryableErrorTypes: ACCESS_FAILURE_TYPES },
  },
  /**
   * pgcopydb's copy of a slot's exported snapshot, before the subscription (writes are not frozen): on
   * cancellation, wait until pgcopydb is stopped before compensating; a retry starts over from a new slot.
   */
  snapshotCopy: {
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    startToCloseTimeout: '7 days',
    heartbeatTimeout: '10s',
    retry: {
      initialInterval: '2s',
      backoffCoefficient: 2,
      maximumInterval: '1 minute',
      maximumAttempts: 5,
      nonRetryableErrorTypes: ACCESS_FAILURE_TYPES,
    },
  },
  /**
   * The freeze-copy, inside the write-freeze window: on cancellation, wait until pgcopydb / pg_dump /
   * pg_restore are stopped before compensating. Its programs run outside the worker's event loop, which
   * beats every 500 ms: a 2 s heartbeat timeout finds a dead worker within seconds.
   */
  copy: {
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    startToCloseTimeout: '24 hours',
    heartbeatTimeout: '2s',
    retry: {
      initialInterval: '2s',
      backoffCoefficient: 2,
      maximumInterval: '30s',
      maximumAttempts: 3,
      nonRetryableErrorTypes: ACCESS_FAILURE_TYPES,
    },
  },
  /**
   * Inside dump-restore's window, a regular activity (it reports progress): three 500 ms beats fit in its
   * 1.5 s heartbeat timeout, so a dead worker costs about as much as one running the window's local steps.
   */
  verification: {
    startToCloseTimeout: '12 hours',
    heartbeatTimeout: '1.5s',
    retry: { initialInterval: '200ms', maximumAttempts: 3, nonRetryableErrorTypes: ACCESS_FAILURE_TYPES },
  },
  /** Undos keep trying: a rollback that gives up leaves the world half-changed. */
  undo: {
    startToCloseTimeout: '5 minutes',
    heartbeatTimeout: '30s',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 20 },
  },
  /** Heroku / ECS calls around the cutover. */
  appControl: {
    startToCloseTimeout: '5 minutes',
    heartbeatTimeout: '30s',
    retry: {
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '20s',
      maximumAttempts: 10,
      nonRetryableErrorTypes: ACCESS_FAILURE_TYPES,
    },
  },
  /** Route 53 changes wait for INSYNC and health gates bake: minutes, heartbeating. */
  traffic: {
    startToCloseTimeout: '30 minutes',
    heartbeatTimeout: '1 minute',
    retry: {
      initialInterval: '2s',
      backoffCoefficient: 2,
      maximumInterval: '30s',
      maximumAttempts: 10,
      nonRetryableErrorTypes: ACCESS_FAILURE_TYPES,
    },
  },
  /** Rehearsal snapshots and restores: on cancellation, wait until pg_dump / pg_restore are stopped before tearing down. */
  snapshot: {
    startToCloseTimeout: '12 hours',
    heartbeatTimeout: '1 minute',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '2s',
      backoffCoefficient: 2,
      maximumInterval: '30s',
      maximumAttempts: 3,
      nonRetryableErrorTypes: ACCESS_FAILURE_TYPES,
    },
  },
  /** Rehearsal teardown keeps trying, like an undo, with room for an RDS instance deletion. */
  teardown: {
    startToCloseTimeout: '45 minutes',
    heartbeatTimeout: '1 minute',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 20 },
  },
  /** Short calls without heartbeats (rehearsal bookkeeping). */
  quick: {
    startToCloseTimeout: '2 minutes',
    retry: {
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '10s',
      maximumAttempts: 5,
      nonRetryableErrorTypes: ACCESS_FAILURE_TYPES,
    },
  },
} satisfies Record<string, ActivityOptions | Parameters<typeof proxyLocalActivities>[0]>;

export const activities = {
  regular: withSummaries(proxyActivities<Activities>(PROFILES.regular)),
  freezeCopyWindow: withSummaries(proxyActivities<Activities>(PROFILES.freezeCopyWindow)),
  window: withSummaries(proxyLocalActivities<Activities>(PROFILES.window)),
  long: withSummaries(proxyActivities<Activities>(PROFILES.long)),
  lagPolling: withSummaries(proxyActivities<Activities>(PROFILES.lagPolling)),
  slowDrain: withSummaries(proxyActivities<Activities>(PROFILES.slowDrain)),
  cloneFollow: withSummaries(proxyActivities<Activities>(PROFILES.cloneFollow)),
  captureApply: withSummaries(proxyActivities<Activities>(PROFILES.captureApply)),
  freezePointVerification: withSummaries(proxyActivities<Activities>(PROFILES.freezePointVerification)),
  copy: withSummaries(proxyActivities<Activities>(PROFILES.copy)),
  snapshotCopy: withSummaries(proxyActivities<Activities>(PROFILES.snapshotCopy)),
  verification: withSummaries(proxyActivities<Activities>(PROFILES.verification)),
  undo: withSummaries(proxyActivities<Activities>(PROFILES.undo), { undo: true }),
  appControl: withSummaries(proxyActivities<Activities>(PROFILES.appControl)),
  traffic: withSummaries(proxyActivities<Activities>(PROFILES.traffic)),
  snapshot: withSummaries(proxyActivities<Activities>(PROFILES.snapshot)),
  teardown: withSummaries(proxyActivities<Activities>(PROFILES.teardown)),
  quick: withSummaries(proxyActivities<Activities>(PROFILES.quick)),
};

/**
 * How long a step of a group pinned to one worker (workflows/host-group.ts) may wait for that worker to
 * pick it up: the worker polls its own queue, where only such groups run, so a live one starts it at
 * once; past this the worker is taken for gone (the server does not retry a schedule-to-start timeout)
 * and the group restarts on another.
 */
export const HOST_SCHEDULE_TO_START = '5s' as const;

/**
 * A profile's activities on one worker's own queue (no queue: the shared one, as `activities`). Not the
 * local `window` profile: a local activity runs wherever the workflow task runs.
 */
export function onHost(profile: Exclude<keyof typeof activities, 'window'>, taskQueue: string | undefined) {
  if (!taskQueue) return activities[profile];
  return withSummaries(proxyActivities<Activities>({ ...PROFILES[profile], taskQueue, scheduleToStartTimeout: HOST_SCHEDULE_TO_START }));
}
