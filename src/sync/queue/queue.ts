/**
 * The sync queue (bullmq on Redis): adding jobs and reading their state for the API.
 * Attempts and backoff are explicit (bullmq's default is one attempt): a retryable failure
 * (a server down, a lost lock) is retried with exponential backoff and jitter from the
 * committed cursor; a permanent one (unregistered instance, invalid job) fails at once.
 */
import { Queue } from 'bullmq';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobInfo, JobProgress, JobState } from '../control.ts';
import type { SyncJobData } from '../engine.ts';
import { manualJobId, scheduledJobId } from './jobs.ts';
import { typeRank } from './scheduler.ts';

/** Queue settings shared by producers and workers. */
export interface QueueSettings {
  /** An ioredis client with `maxRetriesPerRequest: null` (bullmq's requirement). */
  readonly connection: Redis;
  /** Redis key prefix; use a unique one per test run. @defaultValue 'fhir-sync' */
  readonly prefix?: string;
  /** @defaultValue 'sync' */
  readonly name?: string;
  /**
   * Attempts per job.
   * @defaultValue 12
   */
  readonly attempts?: number;
  /**
   * First retry delay (doubles each time, ±50% jitter, capped by the worker's
   * `maxBackoffMs`, default 60 s: a job waiting for a server that came back should not sleep
   * for an hour).
   * @defaultValue 2000
   */
  readonly backoffMs?: number;
}

/** Name of the capped exponential backoff the workers implement. */
export const CAPPED_BACKOFF = 'sync-capped';

/** The producer side. */
export interface SyncQueue {
  readonly name: string;
  readonly prefix: string;
  readonly queue: Queue;
  /** Adds a manual job (unique id, kept for a week). */
  addManual(job: SyncJobData, now?: number): Promise<string>;
  /**
   * Adds a wake-up pass (a push notification): coalesced, one waiting per (instance, type); a
   * notification that arrives while that pass runs adds one follow-up, since the running pass
   * may have read its feed before the change.
   */
  addWake(job: Extract<SyncJobData, { kind: 'pass' }>): Promise<string>;
  /** Adds a scheduled job (deterministic id: a no-op while the previous one is pending). */
  addScheduled(job: Extract<SyncJobData, { kind: 'pass' | 'reverse' | 'sweep' | 'reconcile' }>): Promise<string>;
  getJob(id: string): Promise<JobInfo | undefined>;
  /** Whether Redis answers. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export const DEFAULT_PREFIX = 'fhir-sync';
export const DEFAULT_QUEUE = 'sync';

/**
 * Opens the queue.
 * @param settings - connection, prefix, name, attempts, backoff.
 * @returns the producer handle.
 */
export function initSyncQueue(settings: QueueSettings): SyncQueue {
  const prefix = settings.prefix ?? DEFAULT_PREFIX;
  const name = settings.name ?? DEFAULT_QUEUE;
  const queue = new Queue(name, {
    connection: settings.connection,
    prefix,
    defaultJobOptions: {
      attempts: settings.attempts ?? 12,
      backoff: { type: CAPPED_BACKOFF, delay: settings.backoffMs ?? 2000 },
    },
  });
  return {
    name,
    prefix,
    queue,
    addManual: async (job, now = Date.now()) => {
      const added = await queue.add(job.kind, job, {
        jobId: manualJobId(job, now),
        priority: priorityOf(job),
        removeOnComplete: { age: 7 * 86_400, count: 5000 },
        removeOnFail: { age: 30 * 86_400, count: 5000 },
      });
      return added.id!;
    },
    addWake: async (job) => {
      const base = `wake.${job.instanceId}.${job.resourceType}`;
      const running = await queue.getJob(base);
      const state = running === undefined ? undefined : await running.getState();
      const id = state === 'active' ? `${base}.next` : base;
      const added = await queue.add(job.kind, job, {
        jobId: id,
        priority: priorityOf(job),
        removeOnComplete: true,
        removeOnFail: true,
      });
      return added.id!;
    },
    addScheduled: async (job) => {
      const added = await queue.add(job.kind, job, {
        jobId: scheduledJobId(job),
        priority: priorityOf(job),
        removeOnComplete: true,
        removeOnFail: true,
      });
      return added.id!;
    },
    getJob: async (id) => {
      const job = await queue.getJob(id);
      return job === undefined ? undefined : jobInfo(job, await job.getState());
    },
    ping: async () => {
      try {
        return (await settings.connection.ping()) === 'PONG';
      } catch {
        return false;
      }
    },
    close: () => queue.close(),
  };
}

/**
 * A job as the API shows it.
 * @param job - the bullmq job.
 * @param state - its state.
 * @returns references, state, progress and failure code only.
 */
export function jobInfo(job: Job, state: string): JobInfo {
  const data = job.data as Partial<SyncJobData> & { resourceType?: string };
  const failedCode =
    job.failedReason === undefined || job.failedReason === ''
      ? undefined
      : (/^([A-Z]+_ERR_[A-Z_]+)/.exec(job.failedReason)?.[1] ?? 'SYNC_ERR_INTERNAL');
  return {
    id: job.id ?? '',
    kind: data.kind ?? 'pass',
    instanceId: data.instanceId ?? '',
    ...(data.resourceType === undefined ? {} : { resourceType: data.resourceType }),
    state: toState(state),
    progress: toProgress(job.progress),
    ...(job.timestamp ? { createdAt: new Date(job.timestamp).toISOString() } : {}),
    ...(job.finishedOn ? { finishedAt: new Date(job.finishedOn).toISOString() } : {}),
    ...(state === 'failed' && failedCode !== undefined ? { failedCode } : {}),
  };
}

function toState(state: string): JobState {
  switch (state) {
    case 'waiting':
    case 'active':
    case 'completed':
    case 'failed':
    case 'delayed':
      return state;
    case 'prioritized':
    case 'waiting-children':
      return 'waiting';
    default:
      return 'unknown';
  }
}

function toProgress(p: unknown): JobProgress {
  const o = (typeof p === 'object' && p !== null ? p : {}) as Partial<JobProgress>;
  const n = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  return { pages: n(o.pages), resources: n(o.resources), deletes: n(o.deletes), quarantined: n(o.quarantined) };
}

/**
 * Waiting jobs run in dependency order, not arrival order: a pass of a type others reference
 * (Patient, Encounter) before theirs, so an operator who triggers several types at once does
 * not have DiagnosticReport pull in every Observation as a dependency first. Reverse passes
 * (admin data down) come before all of them, retries after. bullmq: 1 is the highest priority.
 * @param job - the payload.
 * @returns its priority.
 */
export function priorityOf(job: SyncJobData): number {
  switch (job.kind) {
    case 'reverse':
      return 1;
    case 'pass':
      return 2 + typeRank(job.resourceType);
    case 'sweep':
      return 2;
    case 'quarantine-retry':
      return 100;
    case 'reconcile':
      // Repair work: after the regular passes, before retries of refused resources.
      return 50;
  }
}
