/**
 * The engine: turns a job (pass, reverse, quarantine-retry) into channels built from the
 * current instances.yaml and runs it, with metrics and an audit record per unit of work.
 * Knows nothing of Redis: the queue worker hands it a lock function and a progress callback;
 * the CLI (`runPassOnce`) calls it directly.
 *
 * Only registered, enabled instances run, and only for the types they list: `sendTypes` for
 * forward passes, `receiveAdminTypes` for reverse passes. Anything else is refused with a
 * coded, non-retryable error before any I/O.
 */
import type { Logger } from 'pino';
import type { Anonymizer } from '../anonymizer/index.ts';
import { createChangeFeed, cursorAt } from '../changes/index.ts';
import type { ChangeFeed, ChangeFeedConfig } from '../changes/index.ts';
import { assertEnabled, toFhirConnection } from '../instances/index.ts';
import type { FeedConfig, InstancesConfig, ServerConnection } from '../instances/index.ts';
import { createFhirClient } from '../shared/fhir-client.ts';
import type { FhirClientOptions } from '../shared/fhir-client.ts';
import { AppError, ErrorSide, isRetryable, SYNC_ERR_JOB_INVALID } from '../shared/errors/index.ts';
import { recordAudit } from './audit.ts';
import type { AuditInput } from './audit.ts';
import { forwardChannel } from './channel.ts';
import type { Channel } from './channel.ts';
import type { JobProgress, SyncRange } from './control.ts';
import { createFhirStore, storeOnSide } from './fhir-store.ts';
import type { FhirStore } from './fhir-store.ts';
import type { SyncMetrics } from './metrics.ts';
import { runPass } from './pass.ts';
import { runReconcile } from './reconcile.ts';
import type { ReconcileSummary } from './reconcile.ts';
import type { PassDeps, PassRequest, PassSummary } from './pass.ts';
import { listQuarantineRecords, retryQuarantined } from './quarantine.ts';
import type { RetryOutcome, StoredQuarantine } from './quarantine.ts';
import { reverseChannel } from './reverse.ts';
import type { CursorCodec } from './seal.ts';
import { createLimiter, limitedStore } from './limiter.ts';
import { syncWaves } from './queue/scheduler.ts';
import { runWave } from './waves.ts';
import { DEFAULT_RETRY } from './writer.ts';
import type { RetryPolicy } from './writer.ts';

/** A job as the queue carries it: references only, never resources. */
export type SyncJobData =
  | {
      readonly kind: 'pass';
      readonly instanceId: string;
      readonly resourceType: string;
      readonly range?: SyncRange;
      readonly requestedBy?: string;
    }
  | {
      readonly kind: 'reverse';
      readonly instanceId: string;
      readonly resourceType: string;
      readonly requestedBy?: string;
    }
  | {
      /** Compare (instance, type) between local and global and repair gaps (reconcile.ts). */
      readonly kind: 'reconcile';
      readonly instanceId: string;
      readonly resourceType: string;
      readonly requestedBy?: string;
    }
  | {
      /** Every sent type of an instance, several channels at once (scheduled work). */
      readonly kind: 'sweep';
      readonly instanceId: string;
      readonly requestedBy?: string;
    }
  | {
      readonly kind: 'quarantine-retry';
      /** `*` = every instance. */
      readonly instanceId: string;
      readonly resourceType?: string;
      readonly ids?: readonly string[];
      readonly requestedBy?: string;
    };

/** Runs `fn` while holding the instance's lock; `signal` aborts when the lock is lost. */
export type InstanceLockFn = <T>(instanceId: string, fn: (signal: AbortSignal | undefined) => Promise<T>) => Promise<T>;

/** What a job returns (stored as the job's result: counts only). */
export interface JobResult {
  readonly kind: SyncJobData['kind'];
  readonly progress: JobProgress;
  readonly passes?: readonly Omit<PassSummary, 'cursorBefore' | 'cursorAfter'>[];
  readonly retry?: RetryOutcome;
  /** Reconciliations: what was compared and repaired. */
  readonly reconcile?: ReconcileSummary;
  /** Sweeps: the types whose pass failed (the others went on). */
  readonly failures?: readonly SweepFailure[];
}

/** A type whose pass failed within a sweep. */
export interface SweepFailure {
  readonly resourceType: string;
  readonly code: string;
  readonly retryable: boolean;
}

/** Inputs of {@link createSyncEngine}. */
export interface SyncEngineDeps {
  /** The current configuration (re-read when the file changed). */
  readonly config: () => Promise<InstancesConfig>;
  /**
   * The anonymizer, or a function returning the current one (rules replaced at runtime take
   * effect from the next job).
   */
  readonly anonymizer: Anonymizer | (() => Anonymizer);
  /** Codec of forward cursors (sealed with the anonymizer's key in production). */
  readonly codec: CursorCodec;
  readonly logger: Logger;
  readonly metrics?: SyncMetrics;
  /** @defaultValue () => new Date() */
  readonly clock?: () => Date;
  /** @defaultValue DEFAULT_RETRY */
  readonly retry?: RetryPolicy;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly random?: () => number;
  /** Options of every FHIR client (fetch, env) — tests and custom transports. */
  readonly clientOptions?: FhirClientOptions;
  /** Who runs scheduled work, for the audit trail. @defaultValue 'fhir-sync-worker' */
  readonly actor?: string;
  /** Write AuditEvents to the global server. @defaultValue true */
  readonly auditToGlobal?: boolean;
  /**
   * Most requests in flight to the global at once, across every channel of this process; the
   * adaptive limiter stays below it while the global shows strain. @defaultValue 4
   */
  readonly globalConcurrency?: number;
  /** Channels (types) of one instance a sweep runs at once. @defaultValue 4 */
  readonly channelConcurrency?: number;
  /**
   * Bundle caps already known per target FHIR base (from `doctor --write-probes` profiles):
   * bundles to it start at that size instead of being refused once and split.
   */
  readonly initialBundleCaps?: ReadonlyMap<string, number>;
  /** Feed kinds per type found by `doctor` per FHIR base, used by `feed.kind: auto` (profiles). */
  readonly probedKinds?: ReadonlyMap<string, Readonly<Record<string, 'fhir-history' | 'search-lastupdated'>>>;
}

/** The engine. */
export interface SyncEngine {
  /** The channel of a request (checks the allow-list). */
  openChannel(req: PassRequest): Promise<Channel>;
  /** Runs one job; `lock` serializes work per instance. */
  runJob(
    job: SyncJobData,
    options: {
      lock: InstanceLockFn;
      onProgress?: (p: JobProgress) => Promise<void> | void;
      signal?: AbortSignal;
      /** A pass job's feed has nothing more to prepare (see PassRequest.onDrained). */
      onDrained?: () => void;
    },
  ): Promise<JobResult>;
  /** The global server's store. */
  globalStore(): Promise<FhirStore>;
  /** Audit record (log + AuditEvent on the global). */
  audit(event: AuditInput): Promise<void>;
}

/**
 * Creates the engine.
 * @param deps - configuration source, anonymizer, codec, logger and I/O.
 * @returns the engine.
 */
export function createSyncEngine(deps: SyncEngineDeps): SyncEngine {
  const clock = deps.clock ?? ((): Date => new Date());
  const conns = engineConnections(deps);
  const openChannel = (req: PassRequest): Promise<Channel> => openChannelOf(deps, conns, req);
  const passDeps: PassDeps = {
    openChannel,
    logger: deps.logger,
    clock,
    retry: deps.retry ?? DEFAULT_RETRY,
    sleep: deps.sleep ?? sleep,
    random: deps.random ?? Math.random,
    metrics: deps.metrics,
    onBundleCap: conns.learnBundleCap,
  };
  // The global holds cursors, quarantine and audit: the service writes there.
  const globalStore = async (): Promise<FhirStore> =>
    storeOnSide(conns.globalFor((await deps.config()).global), ErrorSide.target);
  const audit = async (event: AuditInput): Promise<void> => {
    const store = deps.auditToGlobal === false ? undefined : await globalStore();
    await recordAudit({ logger: deps.logger, store }, event);
  };
  const engine: SyncEngine = {
    openChannel,
    globalStore,
    audit,
    runJob: async (job, options) => dispatchJob(engine, passDeps, deps, job, options),
  };
  return engine;
}

/** What the engine keeps per server connection for its whole life, and what it learned about targets. */
interface EngineConnections {
  readonly storeFor: (server: ServerConnection) => FhirStore;
  readonly feedFor: (server: ServerConnection, feed: FeedConfig, pageSize: number) => ChangeFeed;
  /** The global's store behind the limiter every channel shares. */
  readonly globalFor: (server: ServerConnection) => FhirStore;
  /** The bundle size to plan for a target: the configured one, or less once the target proved to cap it. */
  readonly capped: (base: string, configured: number) => number;
  readonly learnBundleCap: (target: string, refused: number, size: number) => void;
}

function engineConnections(deps: SyncEngineDeps): EngineConnections {
  // One store and one client per connection for the life of the engine, so an OAuth token is
  // reused until it expires instead of being fetched again for every pass.
  const storeFor = perConnection((conn) => createFhirStore(conn, deps.clientOptions));
  const clientFor = perConnection((conn) => createFhirClient(conn, deps.clientOptions));
  const feedFor = (server: ServerConnection, feed: FeedConfig, pageSize: number): ChangeFeed => {
    const probedKinds = feed.kind === 'auto' ? probedKindsFor(deps, server) : undefined;
    return createChangeFeed(
      { ...feedConfig(feed, pageSize), ...(probedKinds === undefined ? {} : { probedKinds }) },
      { client: clientFor(server) },
    );
  };
  const globalFor = limitedGlobals(storeFor, deps.globalConcurrency ?? 4);
  return { storeFor, feedFor, globalFor, ...bundleCaps(deps) };
}

function probedKindsFor(
  deps: Pick<SyncEngineDeps, 'probedKinds'>,
  server: ServerConnection,
): Readonly<Record<string, 'fhir-history' | 'search-lastupdated'>> | undefined {
  const base = `${server.baseUrl}${server.fhirUrlPath}`.replace(/\/+$/, '');
  return [...(deps.probedKinds ?? [])].find(([b]) => b.replace(/\/+$/, '') === base)?.[1];
}

/** Every channel's requests to the global share one adaptive bound. */
function limitedGlobals(
  storeFor: (server: ServerConnection) => FhirStore,
  max: number,
): (server: ServerConnection) => FhirStore {
  const globalLimiter = createLimiter({ min: 1, max, initial: 2 });
  const limitedGlobals = new Map<FhirStore, FhirStore>();
  return (server) => {
    const store = storeFor(server);
    let limited = limitedGlobals.get(store);
    if (limited === undefined) {
      limited = limitedStore(store, globalLimiter);
      limitedGlobals.set(store, limited);
    }
    return limited;
  };
}

/**
 * Bundle caps found by trial (a refused bundle that went through split), per target: later
 * passes plan bundles that fit instead of being refused and split again.
 */
function bundleCaps(
  deps: Pick<SyncEngineDeps, 'initialBundleCaps' | 'logger'>,
): Pick<EngineConnections, 'capped' | 'learnBundleCap'> {
  // Keyed by FHIR base without trailing slash: profiles and stores spell it either way.
  const baseKey = (base: string): string => base.replace(/\/+$/, '');
  const caps = new Map<string, number>([...(deps.initialBundleCaps ?? [])].map(([b, n]) => [baseKey(b), n]));
  const capped = (base: string, configured: number): number =>
    Math.min(configured, caps.get(baseKey(base)) ?? configured);
  const learnBundleCap = (target: string, refused: number, size: number): void => {
    if (size < (caps.get(baseKey(target)) ?? Number.POSITIVE_INFINITY)) {
      caps.set(baseKey(target), size);
      deps.logger.warn(
        { target, refused, size },
        'the server refused a transaction of this size and accepted it split: bundles to it are capped from now on (set bundleSize to this value to skip the trial)',
      );
    }
  };
  return { capped, learnBundleCap };
}

async function openChannelOf(deps: SyncEngineDeps, conns: EngineConnections, req: PassRequest): Promise<Channel> {
  const config = await deps.config();
  const direction = req.direction ?? 'forward';
  const inst = assertEnabled(
    config.instances.find((i) => i.id === req.instanceId),
    req.instanceId,
    req.resourceType,
    direction === 'forward' ? 'send' : 'receive',
  );
  // Forward reads the local and writes the global; reverse the other way round. Each store
  // reports its failures with the codes of its side (FEED_ERR_* read, SINK_ERR_* written).
  const local = storeOnSide(conns.storeFor(inst), direction === 'forward' ? ErrorSide.source : ErrorSide.target);
  const globalStore = storeOnSide(
    conns.globalFor(config.global),
    direction === 'forward' ? ErrorSide.target : ErrorSide.source,
  );
  if (direction === 'forward') {
    const pageSize = inst.feed.pageSize ?? Math.max(1, config.global.bundleSize - 1);
    return forwardChannel({
      instance: inst,
      global: { ...config.global, bundleSize: conns.capped(globalStore.base, config.global.bundleSize) },
      resourceType: req.resourceType,
      feed: conns.feedFor(inst, inst.feed, pageSize),
      anonymizer: currentAnonymizer(deps),
      local,
      globalStore,
      codec: deps.codec,
      rangeCursor: rangeCursorFor(inst.feed),
    });
  }
  return reverseChannel({
    instance: { ...inst, bundleSize: conns.capped(local.base, inst.bundleSize) },
    global: config.global,
    resourceType: req.resourceType,
    feed: conns.feedFor(config.global, config.global.feed, Math.max(1, inst.bundleSize - 1)),
    local,
    globalStore,
    rangeCursor: rangeCursorFor(config.global.feed),
  });
}

async function dispatchJob(
  engine: SyncEngine,
  passDeps: PassDeps,
  deps: SyncEngineDeps,
  job: SyncJobData,
  options: Parameters<SyncEngine['runJob']>[1],
): Promise<JobResult> {
  switch (job.kind) {
    case 'pass':
    case 'reverse':
      return runPassJob(engine, passDeps, deps, job, options);
    case 'sweep':
      return runSweepJob(engine, passDeps, deps, job, options);
    case 'quarantine-retry':
      return runRetryJob(engine, passDeps, deps, job, options);
    case 'reconcile':
      return runReconcileJob(engine, passDeps, deps, job, options);
    default:
      throw SYNC_ERR_JOB_INVALID.create('unknown kind');
  }
}

async function runPassJob(
  engine: SyncEngine,
  passDeps: PassDeps,
  deps: SyncEngineDeps,
  job: Extract<SyncJobData, { kind: 'pass' | 'reverse' }>,
  options: Parameters<SyncEngine['runJob']>[1],
): Promise<JobResult> {
  const direction = job.kind === 'pass' ? 'forward' : 'reverse';
  const range = job.kind === 'pass' ? job.range : undefined;
  const started = passDeps.clock();
  const base = { action: `sync.${job.kind}`, actor: { subject: job.requestedBy ?? deps.actor ?? 'fhir-sync-worker' } };
  const target = {
    instanceId: job.instanceId,
    resourceType: job.resourceType,
    direction,
    ...(range?.since === undefined ? {} : { since: range.since }),
  };
  try {
    const summary = await options.lock(job.instanceId, (lockSignal) =>
      runPass(
        passDeps,
        {
          instanceId: job.instanceId,
          resourceType: job.resourceType,
          direction,
          range,
          signal: anySignal(options.signal, lockSignal),
          ...(options.onDrained === undefined ? {} : { onDrained: options.onDrained }),
        },
        options.onProgress,
      ),
    );
    deps.metrics?.passFinished(summary, 'ok', passDeps.clock());
    await safeAudit(engine, deps.logger, {
      ...base,
      outcome: 'success',
      at: passDeps.clock().toISOString(),
      rulesVersion: summary.rulesVersion,
      target,
      counts: countsOf(summary),
    });
    const { cursorBefore: _b, cursorAfter: _a, ...figures } = summary;
    return { kind: job.kind, progress: progressOf(summary), passes: [figures] };
  } catch (err) {
    const code = err instanceof AppError ? err.code : 'SYNC_ERR_INTERNAL';
    if (code !== 'SYNC_ERR_LOCKED') {
      const figures = {
        instanceId: job.instanceId,
        resourceType: job.resourceType,
        direction,
        resources: 0,
        deletes: 0,
        quarantined: 0,
        dependencies: 0,
      } as const;
      deps.metrics?.passFinished(
        { ...figures, durationMs: passDeps.clock().getTime() - started.getTime() },
        'failed',
        passDeps.clock(),
      );
      await safeAudit(engine, deps.logger, {
        ...base,
        outcome: 'failure',
        at: passDeps.clock().toISOString(),
        target,
        failureCode: code,
      });
    }
    throw err;
  }
}

async function runReconcileJob(
  engine: SyncEngine,
  passDeps: PassDeps,
  deps: SyncEngineDeps,
  job: Extract<SyncJobData, { kind: 'reconcile' }>,
  options: Parameters<SyncEngine['runJob']>[1],
): Promise<JobResult> {
  const base = { action: 'sync.reconcile', actor: { subject: job.requestedBy ?? deps.actor ?? 'fhir-sync-worker' } };
  const target = { instanceId: job.instanceId, resourceType: job.resourceType, direction: 'forward' };
  try {
    // Under the instance's lock: a pass writing the same resources at once would only race
    // identical PUTs, but one writer per instance keeps the global's load as configured.
    const summary = await options.lock(job.instanceId, (lockSignal) =>
      runReconcile(
        passDeps,
        {
          instanceId: job.instanceId,
          resourceType: job.resourceType,
          signal: anySignal(options.signal, lockSignal),
        },
        options.onProgress,
      ),
    );
    const { instanceId: _i, resourceType: _t, ...counts } = summary;
    await safeAudit(engine, deps.logger, {
      ...base,
      outcome: 'success',
      at: passDeps.clock().toISOString(),
      target,
      counts,
    });
    return {
      kind: 'reconcile',
      progress: { pages: 0, resources: summary.repaired, deletes: 0, quarantined: summary.quarantined },
      reconcile: summary,
    };
  } catch (err) {
    const code = err instanceof AppError ? err.code : 'SYNC_ERR_INTERNAL';
    if (code !== 'SYNC_ERR_LOCKED') {
      await safeAudit(engine, deps.logger, {
        ...base,
        outcome: 'failure',
        at: passDeps.clock().toISOString(),
        target,
        failureCode: code,
      });
    }
    throw err;
  }
}

/**
 * Every sent type of an instance under one hold of its lock, in waves (`syncWaves`: the types
 * most others reference first, one by one, then the rest several channels at once; a wave
 * starts when the one before has nothing left to prepare): the global's limiter, not the number
 * of channels, bounds the load. A failed type does not stop the others; the failures are
 * returned for the caller to record and, when retryable, to run the sweep again.
 */
async function runSweepJob(
  engine: SyncEngine,
  passDeps: PassDeps,
  deps: SyncEngineDeps,
  job: Extract<SyncJobData, { kind: 'sweep' }>,
  options: Parameters<SyncEngine['runJob']>[1],
): Promise<JobResult> {
  const inst = assertEnabled(
    (await deps.config()).instances.find((i) => i.id === job.instanceId),
    job.instanceId,
  );
  const waves = syncWaves(inst.sendTypes);
  const maxLanes = Math.max(1, deps.channelConcurrency ?? 4);
  return options.lock(job.instanceId, async (lockSignal) => {
    const held: InstanceLockFn = (_id, fn) => fn(lockSignal);
    const progress = new Map<string, JobProgress>();
    const total = (): JobProgress => {
      const sum = { pages: 0, resources: 0, deletes: 0, quarantined: 0 };
      for (const p of progress.values()) {
        sum.pages += p.pages;
        sum.resources += p.resources;
        sum.deletes += p.deletes;
        sum.quarantined += p.quarantined;
      }
      return sum;
    };
    const passes: NonNullable<JobResult['passes']>[number][] = [];
    const failures: SweepFailure[] = [];
    let halted = false;
    const runType = async (resourceType: string, drained: () => void): Promise<void> => {
      try {
        const result = await runPassJob(
          engine,
          passDeps,
          deps,
          { kind: 'pass', instanceId: job.instanceId, resourceType, requestedBy: job.requestedBy },
          {
            lock: held,
            signal: options.signal,
            onProgress: (p) => {
              progress.set(resourceType, p);
              return options.onProgress?.(total());
            },
            onDrained: drained,
          },
        );
        passes.push(...(result.passes ?? []));
      } catch (err) {
        if (lockSignal?.aborted === true || options.signal?.aborted === true) {
          halted = true;
          throw err; // shutdown or lost lock: the whole sweep stops and runs again
        }
        const code = err instanceof AppError ? err.code : 'SYNC_ERR_INTERNAL';
        failures.push({ resourceType, code, retryable: isRetryable(err) });
      } finally {
        drained();
      }
    };
    // A wave starts once the one before has nothing left to prepare, so its first reads overlap
    // the last commits of the one before instead of leaving the global idle between them. A
    // dependency whose commit has not landed yet is found missing and sent again with the new
    // page (an identical PUT; the 409 of a race is retried once by the writer).
    const running: Promise<PromiseSettledResult<void>[]>[] = [];
    for (const wave of waves) {
      if (halted) {
        break;
      }
      const { drained, done } = runWave(wave, maxLanes, runType);
      running.push(done);
      await Promise.race([drained, done]);
    }
    const stopped = (await Promise.all(running))
      .flat()
      .find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (stopped !== undefined) {
      throw stopped.reason;
    }
    return { kind: job.kind, progress: total(), passes, failures };
  });
}

async function runRetryJob(
  engine: SyncEngine,
  passDeps: PassDeps,
  deps: SyncEngineDeps,
  job: Extract<SyncJobData, { kind: 'quarantine-retry' }>,
  options: Parameters<SyncEngine['runJob']>[1],
): Promise<JobResult> {
  const store = await engine.globalStore();
  const records = await listQuarantineRecords(store, {
    instanceId: job.instanceId === '*' ? undefined : job.instanceId,
    resourceType: job.resourceType,
    ids: job.ids,
  });
  const groups = new Map<string, StoredQuarantine[]>();
  for (const r of records) {
    const key = `${r.instanceId}/${r.resourceType}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const total = { retried: 0, delivered: 0, deleted: 0, stillQuarantined: 0, skipped: 0 };
  const config = await deps.config();
  for (const group of groups.values()) {
    const { instanceId, resourceType } = group[0]!;
    const inst = config.instances.find((i) => i.id === instanceId);
    if (inst === undefined || !inst.enabled || !inst.sendTypes.includes(resourceType)) {
      // Records of instances no longer registered (or types no longer sent) cannot be retried.
      total.skipped += group.length;
      continue;
    }
    const outcome = await options.lock(instanceId, async (lockSignal) => {
      const channel = await engine.openChannel({ instanceId, resourceType });
      const writer = {
        store: channel.target,
        bundleSize: channel.bundleSize,
        retry: passDeps.retry,
        sleep: passDeps.sleep,
        random: passDeps.random,
        signal: anySignal(options.signal, lockSignal),
      };
      return retryQuarantined(channel, writer, group, passDeps.clock);
    });
    total.retried += outcome.retried;
    total.delivered += outcome.delivered;
    total.deleted += outcome.deleted;
    total.stillQuarantined += outcome.stillQuarantined;
    await options.onProgress?.({
      pages: 0,
      resources: total.delivered,
      deletes: total.deleted,
      quarantined: total.stillQuarantined,
    });
  }
  await safeAudit(engine, deps.logger, {
    action: 'quarantine.retry-run',
    actor: { subject: job.requestedBy ?? deps.actor ?? 'fhir-sync-worker' },
    outcome: 'success',
    at: passDeps.clock().toISOString(),
    rulesVersion: currentAnonymizer(deps).rulesVersion,
    target: { instanceId: job.instanceId, resourceType: job.resourceType },
    counts: total,
  });
  return {
    kind: job.kind,
    progress: { pages: 0, resources: total.delivered, deletes: total.deleted, quarantined: total.stillQuarantined },
    retry: total,
  };
}

function currentAnonymizer(deps: Pick<SyncEngineDeps, 'anonymizer'>): Anonymizer {
  return typeof deps.anonymizer === 'function' ? deps.anonymizer() : deps.anonymizer;
}

/** An audit failure must not fail (or re-run) the work it describes: it is logged. */
async function safeAudit(engine: SyncEngine, logger: Logger, event: AuditInput): Promise<void> {
  try {
    await engine.audit(event);
  } catch (err) {
    logger.warn(
      { action: event.action, code: err instanceof AppError ? err.code : 'error' },
      'audit event not written to the global server',
    );
  }
}

function countsOf(s: PassSummary): Record<string, number> {
  return {
    pages: s.pages,
    resources: s.resources,
    deletes: s.deletes,
    quarantined: s.quarantined,
    dependencies: s.dependencies,
    skipped: s.skipped,
    durationMs: s.durationMs,
  };
}

function progressOf(s: PassSummary): JobProgress {
  return { pages: s.pages, resources: s.resources, deletes: s.deletes, quarantined: s.quarantined };
}

/**
 * The change feed configuration of a configured feed.
 * @param feed - the feed section of instances.yaml.
 * @param pageSize - page size when the file does not set one.
 * @returns what `createChangeFeed` takes.
 */
export function feedConfig(feed: FeedConfig, pageSize: number): ChangeFeedConfig {
  return {
    kind: feed.kind,
    pageSize: feed.pageSize ?? pageSize,
    ...(feed.settleMs === undefined ? {} : { settleMs: feed.settleMs }),
    ...(feed.maxCursorKeys === undefined ? {} : { maxCursorKeys: feed.maxCursorKeys }),
    ...(feed.deletionsQuery === undefined ? {} : { deletionsQuery: feed.deletionsQuery }),
  };
}

/**
 * A feed cursor starting at an instant, for the timestamp feeds (`fhir-history`,
 * `search-lastupdated`, `auto`), made by the cursor module; Aidbox version cursors have no
 * instant, so a backfill there is refused.
 * @param feed - the feed section.
 * @returns the builder, or undefined when the kind has no instant cursors.
 */
export function rangeCursorFor(feed: FeedConfig): ((since: string) => string | undefined) | undefined {
  if (feed.kind === 'aidbox-changes') {
    return undefined;
  }
  return cursorAt;
}

/** One value per distinct connection (a registry edit that changes it makes a new one). */
function perConnection<T>(make: (conn: ReturnType<typeof toFhirConnection>) => T): (server: ServerConnection) => T {
  const made = new Map<string, T>();
  return (server) => {
    const conn = toFhirConnection(server);
    const key = JSON.stringify(conn);
    let value = made.get(key);
    if (value === undefined) {
      value = make(conn);
      made.set(key, value);
    }
    return value;
  };
}

function anySignal(a: AbortSignal | undefined, b: AbortSignal | undefined): AbortSignal | undefined {
  return a === undefined ? b : b === undefined ? a : AbortSignal.any([a, b]);
}

/**
 * Sleeps, waking early (rejecting) on abort.
 * @param ms - milliseconds.
 * @param signal - optional abort.
 * @returns after the delay.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason as Error);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
