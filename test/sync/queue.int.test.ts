/**
 * The queue module against a real Redis (no FHIR servers needed): instance locks, one unit
 * of work per instance across several workers, work shared between workers, deterministic
 * ids of scheduled jobs, retry and permanent-failure rules, job payload checks, progress and
 * the SyncControl views. The engine is a stand-in here; live passes are in live.int.test.ts.
 */
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseInstances } from '../../src/instances/index.ts';
import { SYNC_ERR_INSTANCE_UNKNOWN, SINK_ERR_UNAVAILABLE } from '../../src/shared/errors/index.ts';
import { createSyncControl, initSyncQueue, initSyncWorker, startSyncScheduler } from '../../src/sync/index.ts';
import type { JobResult, SyncEngine, SyncJobData, SyncQueue } from '../../src/sync/index.ts';
import { createInstanceLocks } from '../../src/sync/queue/lock.ts';
import { createStatusStore } from '../../src/sync/queue/status.ts';
import { uniq, waitFor } from './live.ts';

const run = uniq();
const prefix = `fhir-sync-qtest-${run}`;
let redis: Redis;
const queues: SyncQueue[] = [];
const closers: (() => Promise<void>)[] = [];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A stand-in engine: holds the instance lock for `ms`, records overlaps, fails on demand. */
function standIn(
  ms: number,
  behaviour: (job: SyncJobData, attempt: number) => 'ok' | 'retryable' | 'permanent' = () => 'ok',
) {
  const running = new Map<string, number>();
  const log = { maxPerInstance: 0, maxTotal: 0, total: 0, done: [] as string[], attempts: new Map<string, number>() };
  const engine: Pick<SyncEngine, 'runJob'> = {
    runJob: async (job, options) =>
      options.lock(job.instanceId, async () => {
        const key = `${job.kind}/${job.instanceId}/${'resourceType' in job ? (job.resourceType ?? '*') : '*'}`;
        const attempt = (log.attempts.get(key) ?? 0) + 1;
        log.attempts.set(key, attempt);
        running.set(job.instanceId, (running.get(job.instanceId) ?? 0) + 1);
        log.total++;
        log.maxPerInstance = Math.max(log.maxPerInstance, ...running.values());
        log.maxTotal = Math.max(log.maxTotal, log.total);
        try {
          await new Promise<void>((resolve, reject) => {
            const t = setTimeout(resolve, ms);
            options.signal?.addEventListener('abort', () => {
              clearTimeout(t);
              reject(Object.assign(new Error('This operation was aborted'), { name: 'AbortError' }));
            });
          });
          await options.onProgress?.({ pages: 1, resources: 7, deletes: 1, quarantined: 0 });
          const b = behaviour(job, attempt);
          if (b === 'retryable') {
            throw SINK_ERR_UNAVAILABLE.create('http://global/fhir', 3, 'HTTP 503');
          }
          if (b === 'permanent') {
            throw SYNC_ERR_INSTANCE_UNKNOWN.create(job.instanceId);
          }
          log.done.push(key);
          return {
            kind: job.kind,
            progress: { pages: 1, resources: 7, deletes: 1, quarantined: 0 },
          } satisfies JobResult;
        } finally {
          running.set(job.instanceId, running.get(job.instanceId)! - 1);
          log.total--;
        }
      }),
  };
  return { engine: engine as SyncEngine, log };
}

function newQueue(name: string): SyncQueue {
  const q = initSyncQueue({ connection: redis, prefix, name, attempts: 3, backoffMs: 100 });
  queues.push(q);
  return q;
}

function startWorkers(name: string, engine: SyncEngine, count: number, concurrency: number): (() => Promise<void>)[] {
  const mine: (() => Promise<void>)[] = [];
  for (let i = 0; i < count; i++) {
    // Each worker gets its own connection, as separate processes would.
    const conn = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
    const w = initSyncWorker({
      connection: conn,
      prefix,
      name,
      engine,
      locks: createInstanceLocks(conn, { prefix, ttlMs: 5000 }),
      status: createStatusStore(conn, prefix),
      logger: pino({ level: 'silent' }),
      concurrency,
      busyDelayMs: 100,
    });
    let closed = false;
    const close = async (): Promise<void> => {
      if (!closed) {
        closed = true;
        await w.close();
        conn.disconnect();
      }
    };
    closers.push(close);
    mine.push(close);
  }
  return mine;
}

async function drained(q: SyncQueue): Promise<void> {
  await waitFor(
    async () =>
      Object.values(await q.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized')).every((n) => n === 0),
    60_000,
    'queue drained',
    100,
  );
}

beforeAll(() => {
  redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
});

afterAll(async () => {
  for (const c of closers) {
    await c();
  }
  for (const q of queues) {
    await q.queue.obliterate({ force: true });
    await q.close();
  }
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) {
    await redis.del(...keys);
  }
  redis.disconnect();
});

describe('instance locks', () => {
  it('are exclusive, released, and expire when their holder stops renewing', async () => {
    const locks = createInstanceLocks(redis, { prefix, ttlMs: 600 });
    const first = await locks.tryAcquire('x');
    expect(first).toBeDefined();
    expect(await locks.tryAcquire('x')).toBeUndefined();
    expect(await locks.tryAcquire('y')).toBeDefined();
    await first!.release();
    const again = await locks.tryAcquire('x');
    expect(again).toBeDefined();
    await again!.release();
    // A holder killed with SIGKILL: its key stays until the TTL, nobody renews it.
    await redis.set(`${prefix}:lock:instance:z`, 'dead-worker', 'PX', 400);
    expect(await locks.tryAcquire('z')).toBeUndefined();
    await sleep(500);
    expect(await locks.tryAcquire('z')).toBeDefined();
  });

  it('abort the work of a holder that lost its lock', async () => {
    const locks = createInstanceLocks(redis, { prefix, ttlMs: 300 });
    const lease = (await locks.tryAcquire('lost'))!;
    await redis.set(`${prefix}:lock:instance:lost`, 'someone-else', 'PX', 5000);
    await waitFor(() => lease.signal.aborted, 2000, 'the lease to be aborted', 20);
    expect((lease.signal.reason as { code?: string }).code).toBe('SYNC_ERR_ABORTED');
    await lease.release();
    expect(await redis.get(`${prefix}:lock:instance:lost`)).toBe('someone-else');
  });
});

describe('queue and workers', () => {
  it('run at most one job per instance at a time across workers, and share the work', async () => {
    const q = newQueue(`share-${run}`);
    const { engine, log } = standIn(250);
    startWorkers(`share-${run}`, engine, 2, 3);
    for (const instanceId of ['i1', 'i2', 'i3']) {
      for (const resourceType of ['Patient', 'Encounter', 'Observation']) {
        await q.addManual({ kind: 'pass', instanceId, resourceType });
      }
    }
    await drained(q);
    expect(log.done).toHaveLength(9);
    expect(log.maxPerInstance).toBe(1);
    expect(log.maxTotal).toBeGreaterThan(1);
  });

  it('run waiting jobs in dependency order, not arrival order', async () => {
    // An operator triggers several types at once: DiagnosticReport must not run first and pull
    // in every Observation and Patient as dependencies.
    const q = newQueue(`order-${run}`);
    for (const resourceType of ['DiagnosticReport', 'Observation', 'Patient', 'Encounter']) {
      await q.addManual({ kind: 'pass', instanceId: 'i7', resourceType });
    }
    await q.addManual({ kind: 'reverse', instanceId: 'i7', resourceType: 'Organization' });
    const { engine, log } = standIn(10);
    startWorkers(`order-${run}`, engine, 1, 1);
    await drained(q);
    expect(log.done).toEqual([
      'reverse/i7/Organization',
      'pass/i7/Patient',
      'pass/i7/Encounter',
      'pass/i7/Observation',
      'pass/i7/DiagnosticReport',
    ]);
  });

  it('make a scheduled job a no-op while the previous one is pending', async () => {
    const q = newQueue(`sched-${run}`);
    const id1 = await q.addScheduled({ kind: 'pass', instanceId: 'i1', resourceType: 'Patient' });
    const id2 = await q.addScheduled({ kind: 'pass', instanceId: 'i1', resourceType: 'Patient' });
    expect(id1).toBe('sched.pass.i1.Patient');
    expect(id2).toBe(id1);
    const pending = await q.queue.getJobCounts('waiting', 'prioritized');
    expect((pending.waiting ?? 0) + (pending.prioritized ?? 0)).toBe(1);
    const { engine, log } = standIn(10);
    startWorkers(`sched-${run}`, engine, 1, 1);
    await drained(q);
    expect(log.done).toEqual(['pass/i1/Patient']);
    // Done jobs are removed, so the next tick adds a new one.
    await q.addScheduled({ kind: 'pass', instanceId: 'i1', resourceType: 'Patient' });
    await drained(q);
    expect(log.done).toHaveLength(2);
  });

  it('retry retryable failures and end permanent ones at once, with codes only', async () => {
    const q = newQueue(`fail-${run}`);
    const { engine, log } = standIn(10, (job, attempt) =>
      job.instanceId === 'flaky' ? (attempt < 2 ? 'retryable' : 'ok') : job.instanceId === 'ghost' ? 'permanent' : 'ok',
    );
    startWorkers(`fail-${run}`, engine, 1, 2);
    const flaky = await q.addManual({ kind: 'pass', instanceId: 'flaky', resourceType: 'Patient' });
    const ghost = await q.addManual({ kind: 'pass', instanceId: 'ghost', resourceType: 'Patient' });
    const bad = await q.queue.add(
      'pass',
      { kind: 'pass', instanceId: 'i1', resourceType: 'Patient', resource: { name: 'Jane Doe' } },
      { jobId: `bad-${run}` },
    );
    await drained(q);
    expect(await q.getJob(flaky)).toMatchObject({
      state: 'completed',
      progress: { pages: 1, resources: 7, deletes: 1, quarantined: 0 },
      kind: 'pass',
      instanceId: 'flaky',
    });
    expect(log.attempts.get('pass/flaky/Patient')).toBe(2);
    const g = await q.getJob(ghost);
    expect(g).toMatchObject({ state: 'failed', failedCode: 'SYNC_ERR_INSTANCE_UNKNOWN' });
    expect(log.attempts.get('pass/ghost/Patient')).toBe(1);
    const b = await q.queue.getJob(bad.id!);
    expect(await b!.getState()).toBe('failed');
    expect(b!.failedReason).toMatch(/^SYNC_ERR_JOB_INVALID/);
    expect(b!.failedReason).not.toContain('Jane');
    expect(b!.attemptsMade).toBe(1);
  });
});

describe('worker shutdown', () => {
  it('aborts the running pass retryably; another worker runs it again', async () => {
    const q = newQueue(`stop-${run}`);
    const slow = standIn(30_000);
    const [closeFirst] = startWorkers(`stop-${run}`, slow.engine, 1, 1);
    const jobId = await q.addManual({ kind: 'pass', instanceId: 'i9', resourceType: 'Patient' });
    await waitFor(async () => (await q.getJob(jobId))?.state === 'active', 10_000, 'active', 50);
    await closeFirst!();
    // The failure is recorded in Redis as the aborted job settles; on a loaded machine that can
    // come a moment after close() returns.
    await waitFor(async () => (await q.queue.getJob(jobId))?.failedReason !== undefined, 10_000, 'recorded', 50);
    const job = await q.queue.getJob(jobId);
    expect(job!.failedReason).toMatch(/^SYNC_ERR_ABORTED/);
    expect(await job!.getState()).not.toBe('failed');
    const fast = standIn(10);
    startWorkers(`stop-${run}`, fast.engine, 1, 1);
    await waitFor(
      async () => (await q.getJob(jobId))?.state === 'completed',
      20_000,
      'completed by the second worker',
      50,
    );
    expect(fast.log.done).toEqual(['pass/i9/Patient']);
  });
});

describe('scheduler and SyncControl', () => {
  const yaml = `version: 1
global: { baseUrl: 'http://127.0.0.1:1/' }
instances:
  - id: on
    baseUrl: http://127.0.0.1:2/
    sendTypes: [Observation, Patient, Encounter]
    receiveAdminTypes: [Organization]
  - id: off
    enabled: false
    baseUrl: http://127.0.0.1:3/
    sendTypes: [Patient]
`;
  const config = parseInstances(yaml, { source: 't' }).config;

  it('enqueues reverse passes first, then one sweep of the forward types', async () => {
    const q = newQueue(`tick-${run}`);
    const s = await startSyncScheduler({
      queue: q,
      config: () => Promise.resolve(config),
      logger: pino({ level: 'silent' }),
    });
    closers.push(() => s.close());
    expect(s.scheduled()).toEqual(['on']);
    expect(await s.tick('on')).toEqual(['sched.reverse.on.Organization', 'sched.sweep.on']);
    expect(await s.tick('off')).toEqual([]);
  });

  it('adds a reconciliation schedule when the instance has one: one reconcile job per sent type', async () => {
    const q = newQueue(`rec-${run}`);
    const withReconcile = parseInstances(
      yaml.replace(
        'receiveAdminTypes: [Organization]',
        "receiveAdminTypes: [Organization]\n    reconcileSchedule: '0 3 * * *'",
      ),
      { source: 't' },
    ).config;
    const s = await startSyncScheduler({
      queue: q,
      config: () => Promise.resolve(withReconcile),
      logger: pino({ level: 'silent' }),
    });
    closers.push(() => s.close());
    expect(s.scheduled()).toEqual(['on', 'on#reconcile']);
    expect(await s.tick('on#reconcile')).toEqual([
      'sched.reconcile.on.Patient',
      'sched.reconcile.on.Encounter',
      'sched.reconcile.on.Observation',
    ]);
  });

  it('enqueues only registered, enabled instances and synced types, with references only', async () => {
    const q = newQueue(`ctl-${run}`);
    const control = createSyncControl({
      queue: q,
      config: () => Promise.resolve(config),
      globalStore: () => Promise.reject(new Error('unused')),
    });
    await expect(control.triggerSync('ghost', 'Patient')).rejects.toMatchObject({ code: 'SYNC_ERR_INSTANCE_UNKNOWN' });
    await expect(control.triggerSync('off', 'Patient')).rejects.toMatchObject({ code: 'SYNC_ERR_INSTANCE_DISABLED' });
    await expect(control.triggerSync('on', 'Practitioner')).rejects.toMatchObject({ code: 'SYNC_ERR_TYPE_NOT_SYNCED' });
    await expect(control.triggerSync('on', 'Patient', { versionRange: { lower: 1 } })).rejects.toMatchObject({
      code: 'SYNC_ERR_RANGE_UNSUPPORTED',
    });
    await expect(control.triggerSync('on', 'Organization', { since: '2026-01-01T00:00:00Z' })).rejects.toMatchObject({
      code: 'SYNC_ERR_RANGE_UNSUPPORTED',
    });
    const { jobId } = await control.triggerSync('on', 'Patient', { since: '2026-01-01T00:00:00Z' });
    const job = await q.queue.getJob(jobId);
    expect(job!.data).toEqual({
      kind: 'pass',
      instanceId: 'on',
      resourceType: 'Patient',
      range: { since: '2026-01-01T00:00:00Z' },
    });
    expect(await control.getJob(jobId)).toMatchObject({
      id: jobId,
      kind: 'pass',
      instanceId: 'on',
      resourceType: 'Patient',
      state: 'waiting',
    });
    const rev = await control.triggerSync('on', 'Organization');
    expect((await q.queue.getJob(rev.jobId))!.data).toEqual({
      kind: 'reverse',
      instanceId: 'on',
      resourceType: 'Organization',
    });
    const retry = await control.retryQuarantine({ instanceId: 'on', resourceType: 'Patient', ids: ['abc'] });
    expect((await q.queue.getJob(retry.jobId))!.data).toEqual({
      kind: 'quarantine-retry',
      instanceId: 'on',
      resourceType: 'Patient',
      ids: ['abc'],
    });
    await expect(control.retryQuarantine({ instanceId: 'off' })).rejects.toMatchObject({
      code: 'SYNC_ERR_INSTANCE_DISABLED',
    });
    expect(await control.getJob('nope')).toBeUndefined();
    expect(await control.ready()).toEqual({ redis: true, global: false });
  });
});
