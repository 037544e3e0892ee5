import { describe, expect, it } from 'vitest';
import { createLimiter, limitedStore } from '../../src/sync/limiter.ts';
import type { Limiter, LimitSignal } from '../../src/sync/limiter.ts';
import { fakeStore } from './fakes.ts';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A request the test finishes by hand, at a chosen time on the fake clock. */
function controlled(limiter: Limiter, clock: { t: number }, kind = 'transaction', units = 1) {
  let finish!: (signal: LimitSignal) => void;
  let started = false;
  const done = limiter.run(
    () => {
      started = true;
      return new Promise<LimitSignal>((resolve) => (finish = resolve));
    },
    { kind, units },
    (s) => s,
  );
  return {
    get started() {
      return started;
    },
    end: async (signal: LimitSignal, latencyMs: number) => {
      while (!started) {
        await tick();
      }
      clock.t += latencyMs;
      finish(signal);
      await done;
    },
  };
}

describe('adaptive limiter', () => {
  it('keeps at most floor(limit) requests in flight and serves waiters in arrival order', async () => {
    const clock = { t: 0 };
    const limiter = createLimiter({ min: 1, max: 8, initial: 2, now: () => clock.t });
    const reqs = [0, 1, 2, 3].map(() => controlled(limiter, clock));
    await tick();
    expect(reqs.map((r) => r.started)).toEqual([true, true, false, false]);
    expect(limiter.waiting).toBe(2);
    await reqs[1]!.end('ok', 10);
    await tick();
    expect(reqs.map((r) => r.started)).toEqual([true, true, true, false]);
  });

  it('grows by about one slot per round of fast answers, up to max', async () => {
    const clock = { t: 0 };
    const limiter = createLimiter({ min: 1, max: 4, now: () => clock.t });
    for (let i = 0; i < 3; i++) {
      await controlled(limiter, clock).end('ok', 10);
    }
    expect(Math.floor(limiter.limit)).toBe(2);
    for (let i = 0; i < 50; i++) {
      await controlled(limiter, clock).end('ok', 10);
    }
    expect(limiter.limit).toBe(4);
  });

  it('halves on overload once per round, however many answers of that round complain', async () => {
    const clock = { t: 0 };
    const limiter = createLimiter({ min: 1, max: 16, initial: 16, now: () => clock.t });
    const round = Array.from({ length: 8 }, () => controlled(limiter, clock));
    await tick();
    for (const r of round) {
      await r.end('overload', 10);
    }
    expect(limiter.limit).toBe(8);
    // A request started after the decrease may decrease again.
    await controlled(limiter, clock).end('overload', 10);
    expect(limiter.limit).toBe(4);
  });

  it('treats latency far past the best of its kind as strain, per unit of work', async () => {
    const clock = { t: 0 };
    const limiter = createLimiter({ min: 1, max: 8, initial: 8, now: () => clock.t });
    await controlled(limiter, clock, 'transaction', 100).end('ok', 200); // 2 ms per entry
    await controlled(limiter, clock, 'read', 1).end('ok', 5); // a read is its own kind
    await controlled(limiter, clock, 'transaction', 10).end('ok', 25); // 2.5 ms per entry: normal
    expect(limiter.limit).toBe(8);
    await controlled(limiter, clock, 'transaction', 100).end('ok', 2000); // 20 ms per entry
    expect(limiter.limit).toBe(4);
  });

  /** Rounds of as many requests as the bound allows, each answered after `latency(n)` ms. */
  async function rounds(limiter: Limiter, clock: { t: number }, latency: (n: number) => number, count: number) {
    const seen: number[] = [];
    for (let i = 0; i < count; i++) {
      const n = Math.floor(limiter.limit);
      seen.push(n);
      const round = Array.from({ length: n }, () => controlled(limiter, clock, 'transaction', 10));
      // All of a round answer at the same moment, `latency(n)` after they started.
      for (const [j, r] of round.entries()) {
        await r.end('ok', j === 0 ? latency(n) : 0);
      }
    }
    return seen;
  }

  it('comes down to one or two in flight when the server serves requests one after another', async () => {
    const clock = { t: 0 };
    const limiter = createLimiter({ min: 1, max: 8, initial: 8, now: () => clock.t });
    await controlled(limiter, clock, 'transaction', 10).end('ok', 100);
    // n in flight take n times as long each: concurrency gains nothing.
    const seen = await rounds(limiter, clock, (n) => 100 * n, 30);
    expect(seen[0]).toBe(8);
    expect(Math.max(...seen.slice(-10))).toBeLessThanOrEqual(2);
  });

  it('keeps growing to max when answers stay fast however many run at once', async () => {
    const clock = { t: 0 };
    const limiter = createLimiter({ min: 1, max: 8, initial: 2, now: () => clock.t });
    await controlled(limiter, clock, 'transaction', 10).end('ok', 100);
    // A server that scales: more in flight costs a little each, far from n times.
    const seen = await rounds(limiter, clock, (n) => 100 + 10 * n, 30);
    expect(seen.at(-1)).toBe(8);
  });

  it('counts errors as overload and aborts as nothing, and frees the slot either way', async () => {
    const clock = { t: 0 };
    const limiter = createLimiter({ min: 1, max: 8, initial: 4, now: () => clock.t });
    const abort = Object.assign(new Error('aborted'), { name: 'AbortError' });
    await expect(limiter.run(() => Promise.reject(abort), { kind: 'read' })).rejects.toBe(abort);
    expect(limiter.limit).toBe(4);
    await expect(limiter.run(() => Promise.reject(new Error('timeout')), { kind: 'read' })).rejects.toThrow();
    expect(limiter.limit).toBe(2);
    expect(limiter.inFlight).toBe(0);
  });
});

describe('limitedStore', () => {
  it('bounds the writes to the store and reads 429/5xx answers as overload', async () => {
    const clock = { t: 0 };
    const limiter = createLimiter({ min: 1, max: 8, initial: 4, now: () => clock.t });
    const store = fakeStore();
    const limited = limitedStore(store, limiter);
    store.failures.push('503');
    const answer = await limited.transaction({ resourceType: 'Bundle', type: 'transaction', entry: [] });
    expect(answer.status).toBe(503);
    expect(limiter.limit).toBe(2);
    expect(await limited.read('Patient', 'nope')).toBeUndefined();
    expect(limiter.inFlight).toBe(0);
  });

  it('lets reads through while the writes fill every slot', async () => {
    const limiter = createLimiter({ min: 1, max: 1 });
    const store = fakeStore();
    const limited = limitedStore(store, limiter);
    let release!: () => void;
    const held = limiter.run(() => new Promise<void>((r) => (release = r)), { kind: 'transaction' });
    const write = limited.transaction({ resourceType: 'Bundle', type: 'transaction', entry: [] });
    await tick();
    expect(limiter.waiting).toBe(1);
    // The next page's preparation does not wait for the write in flight.
    expect(await limited.read('Patient', 'nope')).toBeUndefined();
    expect(await limited.searchAll('Patient', {})).toEqual([]);
    expect(limiter.waiting).toBe(1);
    release();
    await held;
    expect((await write).status).toBe(200);
  });
});
