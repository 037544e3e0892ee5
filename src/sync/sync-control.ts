/**
 * `SyncControl` (the API's view of the sync side) over the queue, the instances file and the
 * global server. Everything is checked before a job is enqueued: the instance must be
 * registered and enabled, the type listed (`sendTypes` → forward pass, `receiveAdminTypes`
 * → reverse pass), and a range supported by the instance's feed; otherwise a coded error.
 */
import type { Basic } from '@medplum/fhirtypes';
import { assertEnabled } from '../instances/index.ts';
import type { InstancesConfig, LocalInstance } from '../instances/index.ts';
import {
  AppError,
  SYNC_ERR_QUEUE_UNAVAILABLE,
  SYNC_ERR_RANGE_UNSUPPORTED,
  SYNC_ERR_TYPE_NOT_SYNCED,
} from '../shared/errors/index.ts';
import type { SyncControl, SyncRange, TypeStatus } from './control.ts';
import type { SyncJobData } from './engine.ts';
import type { FhirStore } from './fhir-store.ts';
import { listQuarantineRecords, toQuarantineItem } from './quarantine.ts';
import type { SyncQueue } from './queue/queue.ts';
import { statusKey } from './queue/status.ts';
import type { PassStatus, StatusStore } from './queue/status.ts';
import { STATE_CODE_SYSTEM, parseCursor } from './state.ts';
import type { CursorState } from './state.ts';

/** Inputs of {@link createSyncControl}. */
export interface SyncControlDeps {
  readonly queue: Pick<SyncQueue, 'addManual' | 'addWake' | 'getJob' | 'ping'>;
  readonly config: () => Promise<InstancesConfig>;
  readonly globalStore: () => Promise<FhirStore>;
  readonly status?: StatusStore;
  /**
   * Deadline of each Redis call (queue, status): past it, or on a Redis error, the call fails
   * with the retryable SYNC_ERR_QUEUE_UNAVAILABLE (503), so the API never hangs on Redis.
   * @defaultValue 3000
   */
  readonly redisTimeoutMs?: number;
}

/**
 * Runs a Redis call with a deadline; Redis failures become SYNC_ERR_QUEUE_UNAVAILABLE.
 * @param ms - the deadline.
 * @param call - the call.
 * @returns its result.
 */
export async function redisCall<T>(ms: number, call: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(SYNC_ERR_QUEUE_UNAVAILABLE.create(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([call(), deadline]);
  } catch (err) {
    throw err instanceof AppError ? err : SYNC_ERR_QUEUE_UNAVAILABLE.createWith({}, ['Redis error'], { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Creates the SyncControl.
 * @param deps - queue, configuration, global store, status store.
 * @returns the control.
 */
export function createSyncControl(deps: SyncControlDeps): SyncControl {
  const redis = <T>(call: () => Promise<T>): Promise<T> => redisCall(deps.redisTimeoutMs ?? 3000, call);
  const instance = async (id: string): Promise<LocalInstance> => {
    const config = await deps.config();
    return assertEnabled(
      config.instances.find((i) => i.id === id),
      id,
    );
  };
  const ctx: ControlCtx = { deps, redis, instance };
  return {
    triggerSync: async (instanceId, resourceType, range) => {
      const inst = await instance(instanceId);
      const job = jobFor(inst, resourceType, range);
      return { jobId: await redis(() => deps.queue.addManual(job)) };
    },
    triggerReconcile: async (instanceId, resourceType) => {
      const inst = await instance(instanceId);
      // Forward only: the global's admin types have no local pseudonyms to compare.
      if (!inst.sendTypes.includes(resourceType)) {
        throw SYNC_ERR_TYPE_NOT_SYNCED.create(inst.id, resourceType);
      }
      const job: SyncJobData = { kind: 'reconcile', instanceId: inst.id, resourceType };
      return { jobId: await redis(() => deps.queue.addManual(job)) };
    },
    wake: async (instanceId, resourceType) => {
      const inst = await instance(instanceId);
      if (!inst.sendTypes.includes(resourceType)) {
        throw SYNC_ERR_TYPE_NOT_SYNCED.create(inst.id, resourceType);
      }
      return { jobId: await redis(() => deps.queue.addWake({ kind: 'pass', instanceId: inst.id, resourceType })) };
    },
    getJob: (jobId) => redis(() => deps.queue.getJob(jobId)),
    status: () => statusOf(ctx),
    listQuarantine: async (filter = {}) =>
      (await listQuarantineRecords(await deps.globalStore(), filter)).map(toQuarantineItem),
    retryQuarantine: (filter = {}) => enqueueRetry(ctx, filter),
    ready: () => readiness(ctx),
  };
}

/** What the operations of a SyncControl share. */
interface ControlCtx {
  readonly deps: SyncControlDeps;
  /** A Redis call with the deadline. */
  readonly redis: <T>(call: () => Promise<T>) => Promise<T>;
  /** The registered, enabled instance (else a coded error). */
  readonly instance: (id: string) => Promise<LocalInstance>;
}

/** Each forward (instance, type) of the enabled instances: cursor, last pass, quarantine count. */
async function statusOf({ deps, redis }: ControlCtx): Promise<TypeStatus[]> {
  const config = await deps.config();
  const store = await deps.globalStore();
  const [cursors, quarantine, passes] = await Promise.all([
    store.searchAll('Basic', { code: `${STATE_CODE_SYSTEM}|cursor`, _count: '1000' }),
    listQuarantineRecords(store),
    deps.status === undefined ? Promise.resolve(new Map<string, PassStatus>()) : redis(() => deps.status!.all()),
  ]);
  const cursorOf = forwardCursors(cursors);
  const quarantined = new Map<string, number>();
  for (const q of quarantine) {
    const key = `${q.instanceId}/${q.resourceType}`;
    quarantined.set(key, (quarantined.get(key) ?? 0) + 1);
  }
  return config.instances
    .filter((i) => i.enabled)
    .flatMap((i) =>
      i.sendTypes.map((t): TypeStatus => {
        const cursor = cursorOf.get(`${i.id}/${t}`);
        const pass = passes.get(statusKey('forward', i.id, t));
        return {
          instanceId: i.id,
          resourceType: t,
          ...(cursor?.cursor === undefined ? {} : { cursor: cursor.cursor }),
          ...(pass?.lagSeconds === undefined ? {} : { lagSeconds: pass.lagSeconds }),
          ...(pass === undefined ? {} : { lastPassAt: pass.at, lastPassResult: pass.result }),
          quarantineCount: quarantined.get(`${i.id}/${t}`) ?? 0,
        };
      }),
    );
}

/** Forward cursors by `instance/type`; a cursor resource that does not parse is left out. */
function forwardCursors(cursors: readonly unknown[]): Map<string, CursorState> {
  return new Map(
    cursors.flatMap((b) => {
      try {
        const c = parseCursor(b as Basic);
        return c.direction === 'forward' ? [[`${c.instanceId}/${c.resourceType}`, c] as const] : [];
      } catch {
        return [];
      }
    }),
  );
}

async function enqueueRetry(
  { deps, redis, instance }: ControlCtx,
  filter: NonNullable<Parameters<SyncControl['retryQuarantine']>[0]>,
): Promise<{ jobId: string }> {
  if (filter.instanceId !== undefined) {
    const inst = await instance(filter.instanceId);
    if (filter.resourceType !== undefined && !inst.sendTypes.includes(filter.resourceType)) {
      throw SYNC_ERR_TYPE_NOT_SYNCED.create(inst.id, filter.resourceType);
    }
  }
  const job: SyncJobData = {
    kind: 'quarantine-retry',
    instanceId: filter.instanceId ?? '*',
    ...(filter.resourceType === undefined ? {} : { resourceType: filter.resourceType }),
    ...(filter.ids === undefined ? {} : { ids: filter.ids }),
  };
  return { jobId: await redis(() => deps.queue.addManual(job)) };
}

async function readiness({ deps, redis }: ControlCtx): Promise<{ redis: boolean; global: boolean }> {
  const [redisUp, global] = await Promise.all([
    redis(() => deps.queue.ping()).catch(() => false),
    deps
      .globalStore()
      .then((s) => s.read('Basic', '00000000-0000-5000-8000-000000000000'))
      .then(
        () => true,
        () => false,
      ),
  ]);
  return { redis: redisUp, global };
}

/**
 * The job of a manual trigger.
 * @param inst - the (enabled) instance.
 * @param resourceType - requested type.
 * @param range - optional backfill range.
 * @returns the payload.
 */
export function jobFor(inst: LocalInstance, resourceType: string, range: SyncRange | undefined): SyncJobData {
  if (inst.sendTypes.includes(resourceType)) {
    if (range !== undefined) {
      checkRange(inst, range);
    }
    return { kind: 'pass', instanceId: inst.id, resourceType, ...(range === undefined ? {} : { range: { ...range } }) };
  }
  if (inst.receiveAdminTypes.includes(resourceType)) {
    if (range !== undefined) {
      throw SYNC_ERR_RANGE_UNSUPPORTED.create(inst.id, 'any range', 'reverse channel');
    }
    return { kind: 'reverse', instanceId: inst.id, resourceType };
  }
  throw SYNC_ERR_TYPE_NOT_SYNCED.create(inst.id, resourceType);
}

function checkRange(inst: LocalInstance, range: SyncRange): void {
  if (range.versionRange !== undefined) {
    throw SYNC_ERR_RANGE_UNSUPPORTED.create(inst.id, 'versionRange', inst.feed.kind);
  }
  if (range.since === undefined || !Number.isFinite(Date.parse(range.since))) {
    throw SYNC_ERR_RANGE_UNSUPPORTED.create(inst.id, 'since (not an instant)', inst.feed.kind);
  }
  if (inst.feed.kind === 'aidbox-changes') {
    throw SYNC_ERR_RANGE_UNSUPPORTED.create(inst.id, 'since', inst.feed.kind);
  }
}
