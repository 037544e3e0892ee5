/**
 * Composition of the running service, for `npm start` and the CLI: a worker process (queue
 * consumer), a scheduler (cron → queue), the SyncControl the API uses, and a one-off pass
 * (CLI). Each returns a handle with `close()`. Redis is opened here and handed to the queue
 * module only; the engine and the pass never see it.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Anonymizer } from '../anonymizer/index.ts';
import { openInstanceRegistry, toFhirConnection } from '../instances/index.ts';
import type { InstanceRegistry } from '../instances/index.ts';
import type { FhirClientOptions } from '../shared/fhir-client.ts';
import { recordAudit } from './audit.ts';
import type { AuditInput } from './audit.ts';
import type { JobProgress, SyncControl } from './control.ts';
import { createSyncEngine } from './engine.ts';
import type { InstanceLockFn, JobResult, SyncEngine, SyncJobData } from './engine.ts';
import { createFhirStore, storeOnSide } from './fhir-store.ts';
import type { FhirStore } from './fhir-store.ts';
import type { SyncMetrics } from './metrics.ts';
import type { PassRequest, PassSummary } from './pass.ts';
import { createInstanceLocks } from './queue/lock.ts';
import { initSyncQueue } from './queue/queue.ts';
import { reconcileAllSubscriptions } from './push.ts';
import type { PushSettings } from './push.ts';
import type { SyncQueue } from './queue/queue.ts';
import { startSyncScheduler } from './queue/scheduler.ts';
import type { SyncScheduler } from './queue/scheduler.ts';
import { createStatusStore } from './queue/status.ts';
import { initSyncWorker } from './queue/worker.ts';
import { sealingCodec } from './seal.ts';
import { createSyncControl } from './sync-control.ts';
import type { RetryPolicy } from './writer.ts';
import { ErrorSide, SYNC_ERR_LOCKED } from '../shared/errors/index.ts';

/** Settings every part shares. */
export interface SyncServiceConfig {
  /** config/instances.yaml (or an open registry over it). */
  readonly instances: string | InstanceRegistry;
  /** @defaultValue env REDIS_URL, else redis://127.0.0.1:6379 */
  readonly redisUrl?: string;
  /** Redis key prefix of the queue, locks and status. @defaultValue 'fhir-sync' */
  readonly prefix?: string;
  /** @defaultValue 'sync' */
  readonly queueName?: string;
  readonly logger: Logger;
}

/** Settings of the parts that run passes. */
export interface EngineServiceConfig extends SyncServiceConfig {
  /** The anonymizer, or a getter of the current one (rules replaced at runtime). */
  readonly anonymizer: Anonymizer | (() => Anonymizer);
  /** The de-identification key (`deidKeyFrom`): also seals forward cursors. */
  readonly key: { readonly id: string; readonly secret: Uint8Array };
  readonly metrics?: SyncMetrics;
  readonly retry?: RetryPolicy;
  readonly clientOptions?: FhirClientOptions;
  /** Channels (types) of one instance a sweep runs at once. @defaultValue 4 */
  readonly channelConcurrency?: number;
  /** Most requests in flight to the global from this process (adaptive below it). @defaultValue 4 */
  readonly globalConcurrency?: number;
  /** Bundle caps per FHIR base known from saved server profiles (doctor --write-probes). */
  readonly initialBundleCaps?: ReadonlyMap<string, number>;
  /** Feed kinds per FHIR base found by doctor (saved server profiles), for `feed.kind: auto`. */
  readonly probedKinds?: ReadonlyMap<string, Readonly<Record<string, 'fhir-history' | 'search-lastupdated'>>>;
}

/** Settings of a worker process. */
export interface WorkerServiceConfig extends EngineServiceConfig {
  /** @defaultValue 2 */
  readonly concurrency?: number;
  /** Instance lock TTL. @defaultValue 30000 */
  readonly lockTtlMs?: number;
  /** bullmq job lock. @defaultValue 30000 */
  readonly lockDurationMs?: number;
  /** @defaultValue 15000 */
  readonly stalledIntervalMs?: number;
  /** Queue attempts per job. @defaultValue 12 */
  readonly attempts?: number;
  /** First retry delay of a failed job. @defaultValue 2000 */
  readonly backoffMs?: number;
}

/** Something running that can be stopped. */
export interface Handle {
  close(): Promise<void>;
}

function redisOf(config: SyncServiceConfig, extra: { commandTimeout?: number } = {}): Redis {
  return new Redis(config.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', {
    maxRetriesPerRequest: null,
    ...extra,
  });
}

async function registryOf(config: SyncServiceConfig): Promise<InstanceRegistry> {
  return typeof config.instances === 'string' ? openInstanceRegistry(config.instances) : config.instances;
}

function engineOf(config: EngineServiceConfig, registry: InstanceRegistry): SyncEngine {
  return createSyncEngine({
    config: () => registry.config(),
    anonymizer: config.anonymizer,
    codec: sealingCodec(config.key.secret, config.key.id),
    logger: config.logger,
    metrics: config.metrics,
    retry: config.retry,
    clientOptions: config.clientOptions,
    channelConcurrency: config.channelConcurrency,
    globalConcurrency: config.globalConcurrency,
    initialBundleCaps: config.initialBundleCaps,
    probedKinds: config.probedKinds,
  });
}

/**
 * Starts a worker process part: consumes the queue and runs passes.
 * @param config - instances, Redis, anonymizer and key, logger, metrics, timings.
 * @returns the handle; `close()` waits for running jobs to stop.
 */
export async function startWorker(config: WorkerServiceConfig): Promise<Handle & { readonly engine: SyncEngine }> {
  const registry = await registryOf(config);
  const redis = redisOf(config);
  const prefix = config.prefix ?? 'fhir-sync';
  const engine = engineOf(config, registry);
  const worker = initSyncWorker({
    connection: redis,
    prefix,
    name: config.queueName,
    engine,
    locks: createInstanceLocks(redis, { prefix, ttlMs: config.lockTtlMs }),
    status: createStatusStore(redis, prefix),
    logger: config.logger,
    concurrency: config.concurrency,
    lockDurationMs: config.lockDurationMs,
    stalledIntervalMs: config.stalledIntervalMs,
  });
  return {
    engine,
    close: async () => {
      await worker.close();
      redis.disconnect();
    },
  };
}

/**
 * Starts the scheduler part (cron per instance → jobs).
 * @param config - instances, Redis, logger.
 * @returns the handle (also `tick(instanceId)` to enqueue now).
 */
export async function startScheduler(
  config: SyncServiceConfig & {
    readonly reloadEveryMs?: number;
    /** Push wake-up: where locals notify and the secret of their tokens; none = polling only. */
    readonly push?: PushSettings;
    readonly clientOptions?: FhirClientOptions;
  },
): Promise<Handle & Pick<SyncScheduler, 'tick' | 'reconcile'> & { readonly pushReady: Promise<void> }> {
  const registry = await registryOf(config);
  const redis = redisOf(config);
  const queue = initSyncQueue({ connection: redis, prefix: config.prefix, name: config.queueName });
  const scheduler = await startSyncScheduler({
    queue,
    config: () => registry.config(),
    logger: config.logger,
    reloadEveryMs: config.reloadEveryMs,
  });
  // Subscriptions follow the registry: at start and with each reconcile of the schedules.
  const subscribe = async (): Promise<void> => {
    if (config.push !== undefined) {
      const { instances } = await registry.config();
      await reconcileAllSubscriptions(
        instances,
        (i) => storeOnSide(createFhirStore(toFhirConnection(i), config.clientOptions), ErrorSide.target),
        config.push,
        config.logger,
      );
    }
  };
  const pushReady = subscribe().catch(() => undefined);
  return {
    pushReady,
    tick: (id) => scheduler.tick(id),
    reconcile: async () => {
      await scheduler.reconcile();
      await subscribe().catch(() => undefined);
    },
    close: async () => {
      await pushReady;
      await scheduler.close();
      await queue.close();
      redis.disconnect();
    },
  };
}

/**
 * Opens the SyncControl the API consumes, and the audit sink it reuses.
 * @param config - instances, Redis, logger; `clientOptions` for the global server's client.
 * @returns control, audit sink and the queue (for tests), with `close()`.
 */
export async function openSyncControl(
  config: SyncServiceConfig & {
    readonly clientOptions?: FhirClientOptions;
    /**
     * Longest wait for one Redis call of the API (ioredis `commandTimeout`, and a deadline
     * around each call): a stalled Redis makes the API answer 503, never hang.
     * @defaultValue 3000
     */
    readonly redisTimeoutMs?: number;
  },
): Promise<
  Handle & {
    readonly control: SyncControl;
    readonly audit: (event: AuditInput) => Promise<void>;
    readonly queue: SyncQueue;
  }
> {
  const registry = await registryOf(config);
  const redisTimeoutMs = config.redisTimeoutMs ?? 3000;
  const redis = redisOf(config, { commandTimeout: redisTimeoutMs });
  const prefix = config.prefix ?? 'fhir-sync';
  const queue = initSyncQueue({ connection: redis, prefix, name: config.queueName });
  let cached: { key: string; store: FhirStore } | undefined;
  const globalStore = async (): Promise<FhirStore> => {
    const conn = toFhirConnection((await registry.config()).global);
    const key = JSON.stringify(conn);
    if (cached?.key !== key) {
      cached = { key, store: storeOnSide(createFhirStore(conn, config.clientOptions), ErrorSide.target) };
    }
    return cached.store;
  };
  const control = createSyncControl({
    queue,
    config: () => registry.config(),
    globalStore,
    status: createStatusStore(redis, prefix),
    redisTimeoutMs,
  });
  return {
    control,
    queue,
    // The log line is written first; a failed AuditEvent write then fails the call.
    audit: async (event) => recordAudit({ logger: config.logger, store: await globalStore() }, event),
    close: async () => {
      await queue.close();
      redis.disconnect();
    },
  };
}

/**
 * Runs one job now in this process (CLI), with the instance lock when Redis is configured.
 * @param config - as for the service; `redisUrl: null` runs without the lock.
 * @param job - the job.
 * @param onProgress - progress callback.
 * @param signal - aborts the job.
 * @returns the job's result.
 */
export async function runJobOnce(
  config: Omit<EngineServiceConfig, 'redisUrl'> & { readonly redisUrl?: string | null },
  job: SyncJobData,
  onProgress?: (p: JobProgress) => Promise<void> | void,
  signal?: AbortSignal,
): Promise<JobResult> {
  const registry = await registryOf({ ...config, redisUrl: undefined });
  const engine = engineOf({ ...config, redisUrl: undefined }, registry);
  const redis = config.redisUrl === null ? undefined : redisOf({ ...config, redisUrl: config.redisUrl ?? undefined });
  const lock: InstanceLockFn =
    redis === undefined
      ? (_id, fn) => fn(undefined)
      : async (id, fn) => {
          const lease = await createInstanceLocks(redis, { prefix: config.prefix ?? 'fhir-sync' }).tryAcquire(id);
          if (lease === undefined) {
            throw SYNC_ERR_LOCKED.create(id);
          }
          try {
            return await fn(lease.signal);
          } finally {
            await lease.release();
          }
        };
  try {
    return await engine.runJob(job, { lock, onProgress, signal });
  } finally {
    redis?.disconnect();
  }
}

/**
 * Runs one pass now in this process (CLI).
 * @param config - as for the service; `redisUrl: null` runs without the lock.
 * @param req - the pass.
 * @param onProgress - progress callback.
 * @returns the pass summary.
 */
export async function runPassOnce(
  config: Omit<EngineServiceConfig, 'redisUrl'> & { readonly redisUrl?: string | null },
  req: PassRequest,
  onProgress?: (p: JobProgress) => Promise<void> | void,
): Promise<PassSummary> {
  const result = await runJobOnce(
    config,
    req.direction === 'reverse'
      ? { kind: 'reverse', instanceId: req.instanceId, resourceType: req.resourceType, requestedBy: 'cli' }
      : {
          kind: 'pass',
          instanceId: req.instanceId,
          resourceType: req.resourceType,
          range: req.range,
          requestedBy: 'cli',
        },
    onProgress,
    req.signal,
  );
  const pass = result.passes?.[0];
  if (pass === undefined) {
    throw new Error('unreachable: a pass job reports its pass');
  }
  return pass;
}
