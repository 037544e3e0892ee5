/**
 * The sync worker: takes jobs from the queue and runs them through the engine, one instance
 * at a time (Redis lock per instance), any number of instances in parallel (`concurrency`
 * per process, any number of processes on one Redis).
 *
 * - Instance busy: the job is moved back to delayed (a few seconds, jittered) without using
 *   an attempt (bullmq `DelayedError`).
 * - Retryable failure (server down, timeout, lost lock): thrown as is; bullmq retries with
 *   exponential backoff from the committed cursor.
 * - Permanent failure (unregistered/disabled instance, invalid payload, a bug): an
 *   `UnrecoverableError` ends the job at once.
 * Failure reasons stored in Redis are `CODE: message` from the catalogue (no values); any
 * other error is reduced to SYNC_ERR_INTERNAL and its class name.
 * - Shutdown (`close()`) and a lost instance lock abort the running pass; the job fails
 *   retryably (SYNC_ERR_ABORTED) and runs again later from the committed cursor.
 * - SIGKILL: the job's bullmq lock and the instance lock expire; the stalled-job check puts
 *   the job back in the queue and another worker (or the restarted one) runs the pass again
 *   from the cursor on the global server.
 */
import { DelayedError, UnrecoverableError, Worker } from 'bullmq';
import type { Job, WorkerOptions } from 'bullmq';
import type { Logger } from 'pino';
import {
  AppError,
  isRetryable,
  SYNC_ERR_ABORTED,
  SYNC_ERR_INTERNAL,
  SYNC_ERR_LOCKED,
  SYNC_ERR_SWEEP_INCOMPLETE,
} from '../../shared/errors/index.ts';
import type { InstanceLockFn, JobResult, SyncEngine } from '../engine.ts';
import { parseJobData } from './jobs.ts';
import type { InstanceLocks } from './lock.ts';
import { backoffDelay } from '../../shared/backoff.ts';
import { DEFAULT_PREFIX, DEFAULT_QUEUE } from './queue.ts';
import type { QueueSettings } from './queue.ts';
import type { StatusStore } from './status.ts';

/** Worker settings. */
export interface WorkerSettings extends Pick<QueueSettings, 'connection' | 'prefix' | 'name'> {
  readonly engine: SyncEngine;
  readonly locks: InstanceLocks;
  readonly status?: StatusStore;
  readonly logger: Logger;
  /** Jobs run at once by this process. @defaultValue 2 */
  readonly concurrency?: number;
  /** bullmq job lock; a killed worker's job is taken back after about this long. @defaultValue 30000 */
  readonly lockDurationMs?: number;
  /** How often stalled jobs are looked for. @defaultValue 15000 */
  readonly stalledIntervalMs?: number;
  /** Delay before a job whose instance is busy is tried again. @defaultValue 3000 */
  readonly busyDelayMs?: number;
  /** Largest delay between attempts of a failed job. @defaultValue 60000 */
  readonly maxBackoffMs?: number;
}

/** A running worker. */
export interface SyncWorker {
  readonly worker: Worker;
  close(): Promise<void>;
}

/**
 * Starts a worker.
 * @param settings - queue connection, engine, locks, status store, logger and timings.
 * @returns the worker handle.
 */
export function initSyncWorker(settings: WorkerSettings): SyncWorker {
  const shutdown = new AbortController();
  const processor = (job: Job, token?: string): Promise<JobResult> => processJob(settings, shutdown.signal, job, token);
  const worker = new Worker(settings.name ?? DEFAULT_QUEUE, processor, workerOptions(settings));
  logWorkerEvents(worker, settings.logger);
  return {
    worker,
    close: async () => {
      shutdown.abort(SYNC_ERR_ABORTED.create('*', '*', 'worker shutting down'));
      await worker.close();
    },
  };
}

/** Runs one job through the engine under the instance's lock; maps its failure for bullmq. */
async function processJob(
  settings: WorkerSettings,
  shutdown: AbortSignal,
  job: Job,
  token: string | undefined,
): Promise<JobResult> {
  const data = parseOrFail(job.data);
  const lease: HeldLease = { lost: undefined };
  try {
    const result = await settings.engine.runJob(data, {
      signal: shutdown,
      onProgress: (p) => job.updateProgress({ ...p }),
      lock: instanceLock(settings.locks, lease),
    });
    await recordStatus(settings, data, result, undefined);
    const retryable = result.failures?.find((f) => f.retryable);
    if (retryable !== undefined) {
      // The other types went through and are recorded; the sweep runs again for the rest.
      throw SYNC_ERR_SWEEP_INCOMPLETE.create(data.instanceId, retryable.resourceType, retryable.code);
    }
    return result;
  } catch (thrown) {
    if (SYNC_ERR_LOCKED.is(thrown)) {
      const busyDelay = settings.busyDelayMs ?? 3000;
      await job.moveToDelayed(Date.now() + Math.round(busyDelay * (0.5 + Math.random())), token);
      throw new DelayedError();
    }
    // An abort (shutdown, lost lock) surfaces as whatever the interrupted call threw: report
    // the abort itself, which is retryable, so the job runs again from the cursor.
    const err: unknown = shutdown.aborted ? shutdown.reason : lease.lost !== undefined ? lease.lost.reason : thrown;
    await recordStatus(settings, data, undefined, err);
    throw toQueueError(err);
  }
}

/** Whether the instance lock of a job was lost while it ran (its signal, then aborted). */
interface HeldLease {
  lost: AbortSignal | undefined;
}

/** The engine's lock function: the instance's Redis lock, or SYNC_ERR_LOCKED when it is busy. */
function instanceLock(locks: InstanceLocks, held: HeldLease): InstanceLockFn {
  return async (instanceId, fn) => {
    const lease = await locks.tryAcquire(instanceId);
    if (lease === undefined) {
      throw SYNC_ERR_LOCKED.create(instanceId);
    }
    try {
      return await fn(lease.signal);
    } finally {
      held.lost = lease.signal.aborted ? lease.signal : undefined;
      await lease.release();
    }
  };
}

function workerOptions(settings: WorkerSettings): WorkerOptions {
  return {
    connection: settings.connection,
    prefix: settings.prefix ?? DEFAULT_PREFIX,
    concurrency: settings.concurrency ?? 2,
    lockDuration: settings.lockDurationMs ?? 30_000,
    stalledInterval: settings.stalledIntervalMs ?? 15_000,
    // A job stalled by a killed worker is taken back several times before it counts as failed.
    maxStalledCount: 10,
    settings: {
      backoffStrategy: (attemptsMade, _type, _err, job) =>
        backoffDelay(
          {
            baseDelayMs: Number((job?.opts.backoff as { delay?: number } | undefined)?.delay ?? 2000),
            maxDelayMs: settings.maxBackoffMs ?? 60_000,
          },
          attemptsMade,
        ),
    },
  };
}

function logWorkerEvents(worker: Worker, logger: Logger): void {
  worker.on('failed', (job, err) => {
    logger.warn(
      {
        jobId: job?.id,
        kind: (job?.data as { kind?: string } | undefined)?.kind,
        reason: err.message,
        attemptsMade: job?.attemptsMade,
      },
      'job failed',
    );
  });
  worker.on('error', (err) => logger.error({ code: err instanceof AppError ? err.code : err.name }, 'worker error'));
}

function parseOrFail(data: unknown): ReturnType<typeof parseJobData> {
  try {
    return parseJobData(data);
  } catch (err) {
    throw toQueueError(err);
  }
}

/**
 * The error bullmq stores: `CODE: message`, unrecoverable unless retryable.
 * @param err - what the engine threw.
 * @returns an Error safe to store in Redis.
 */
export function toQueueError(err: unknown): Error {
  const app =
    err instanceof AppError ? err : SYNC_ERR_INTERNAL.create('job', err instanceof Error ? err.name : typeof err);
  const text = `${app.code}: ${app.message}`;
  return isRetryable(app) ? Object.assign(new Error(text), { retryable: true }) : new UnrecoverableError(text);
}

async function recordStatus(
  settings: WorkerSettings,
  data: ReturnType<typeof parseJobData>,
  result: JobResult | undefined,
  err: unknown,
): Promise<void> {
  if (settings.status === undefined || data.kind === 'quarantine-retry' || data.kind === 'reconcile') {
    return;
  }
  if (data.kind === 'sweep') {
    await recordSweep(settings.status, data.instanceId, result);
    return;
  }
  const direction = data.kind === 'pass' ? 'forward' : 'reverse';
  const at = new Date().toISOString();
  try {
    if (result !== undefined) {
      // A pass that returns has read its feed to the end; a backfill range says nothing of the cursor.
      const drained = data.kind !== 'pass' || data.range === undefined;
      const lagSeconds = result.passes?.[0]?.lagSeconds;
      await settings.status.record(direction, data.instanceId, data.resourceType, {
        at,
        result: 'ok',
        ...(drained ? { drainedAt: at } : {}),
        ...(lagSeconds === undefined ? {} : { lagSeconds }),
      });
    } else {
      await settings.status.record(direction, data.instanceId, data.resourceType, {
        at,
        result: 'failed',
        failedCode: err instanceof AppError ? err.code : 'SYNC_ERR_INTERNAL',
      });
    }
  } catch {
    // Status is informative only; Redis trouble surfaces through the queue itself.
  }
}

/** A sweep's status: one line per type that ran, ok or failed; nothing when the whole sweep failed. */
async function recordSweep(
  status: NonNullable<WorkerSettings['status']>,
  instanceId: string,
  result: JobResult | undefined,
): Promise<void> {
  if (result === undefined) {
    return; // stopped as a whole (shutdown, lost lock): each type keeps its last status
  }
  const at = new Date().toISOString();
  try {
    for (const p of result.passes ?? []) {
      await status.record('forward', instanceId, p.resourceType, {
        at,
        result: 'ok',
        drainedAt: at,
        ...(p.lagSeconds === undefined ? {} : { lagSeconds: p.lagSeconds }),
      });
    }
    for (const f of result.failures ?? []) {
      await status.record('forward', instanceId, f.resourceType, { at, result: 'failed', failedCode: f.code });
    }
  } catch {
    // Status is informative only; Redis trouble surfaces through the queue itself.
  }
}
