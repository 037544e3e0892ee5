/**
 * An adaptive bound on the requests in flight to one server (the global), shared by every
 * channel of a process: parallel channels keep the server busy, and the bound shrinks as soon as
 * the server shows strain, so it is never overloaded.
 *
 * Additive increase, multiplicative decrease (as TCP's congestion window): each answer that
 * comes back fast and without complaint raises the bound by 1/bound (about one per round of
 * requests); an overload signal (429, 503, a timeout, or latency past `slowFactor` times the
 * best seen recently) halves it, at most once per round so one burst of slow answers counts
 * once. And, as TCP Vegas does, a request that ran beside others but took about as long as if
 * they had been served one after another (`n` in flight, latency ≥ `serialFactor` · n · best)
 * shows that the server gained nothing from the concurrency: the bound goes down by one. A
 * server that works one request at a time (HAPI on an embedded database, a small machine) is
 * thus kept at one or two requests instead of a queue of contending transactions, while a
 * server that scales keeps growing to `max`. Latency is compared per kind of request and per unit of work (a 100-entry transaction
 * is not a slow read). The best latency is a floor that forgets slowly, so a server that got
 * slower for good becomes the new normal instead of keeping the bound at its minimum forever.
 *
 * Pure apart from the clock: no timers, no I/O; waiters are served in arrival order.
 */
import type { Bundle } from '@medplum/fhirtypes';
import type { FhirAnswer, FhirStore } from './fhir-store.ts';

/** Settings of {@link createLimiter}. */
export interface LimiterOptions {
  /** Largest bound. */
  readonly max: number;
  /** @defaultValue 1 */
  readonly min?: number;
  /** Bound at start. @defaultValue min */
  readonly initial?: number;
  /** Latency above this multiple of the recent best counts as strain. @defaultValue 3 */
  readonly slowFactor?: number;
  /**
   * With `n` requests in flight, latency at or above this fraction of `n` times the best says
   * the server served them one after another. @defaultValue 0.8
   */
  readonly serialFactor?: number;
  /** Milliseconds clock. @defaultValue performance.now */
  readonly now?: () => number;
}

/** How one request ended, as the limiter sees it. */
export type LimitSignal = 'ok' | 'overload' | 'neutral';

/** What a request is, for latency comparisons. */
export interface RequestShape {
  /** Requests of one kind are compared with each other (`transaction`, `search`...). */
  readonly kind: string;
  /** Units of work (entries of a transaction). @defaultValue 1 */
  readonly units?: number;
}

/** The limiter. */
export interface Limiter {
  /**
   * Runs `fn` once a slot is free.
   * @param fn - the request.
   * @param shape - its kind and size, for latency comparisons.
   * @param classify - what its result says of the server's state (errors: `overload`, aborts: `neutral`).
   */
  run<T>(fn: () => Promise<T>, shape: RequestShape, classify?: (result: T) => LimitSignal): Promise<T>;
  /** Current bound (fractional; floor of it is the number of slots). */
  readonly limit: number;
  readonly inFlight: number;
  readonly waiting: number;
}

/**
 * Creates a limiter.
 * @param options - bounds, strain threshold, clock.
 * @returns the limiter.
 */
export function createLimiter(options: LimiterOptions): Limiter {
  const min = Math.max(1, options.min ?? 1);
  const max = Math.max(min, options.max);
  const s: LimiterState = {
    min,
    max,
    slowFactor: options.slowFactor ?? 3,
    serialFactor: options.serialFactor ?? 0.8,
    now: options.now ?? ((): number => performance.now()),
    limit: Math.min(max, Math.max(min, options.initial ?? min)),
    inFlight: 0,
    bestOf: new Map<string, number>(),
    epoch: 0,
    queue: [],
  };
  return {
    run: <T>(fn: () => Promise<T>, shape: RequestShape, classify?: (result: T) => LimitSignal): Promise<T> =>
      runLimited(s, fn, shape, classify),
    get limit() {
      return s.limit;
    },
    get inFlight() {
      return s.inFlight;
    },
    get waiting() {
      return s.queue.length;
    },
  };
}

/** The settings and running state of one limiter. */
interface LimiterState {
  readonly min: number;
  readonly max: number;
  readonly slowFactor: number;
  readonly serialFactor: number;
  readonly now: () => number;
  limit: number;
  inFlight: number;
  /** Best latency per unit of work, per kind of request. */
  readonly bestOf: Map<string, number>;
  /** Requests started after the last decrease: only their answers may decrease again. */
  epoch: number;
  readonly queue: (() => void)[];
}

async function runLimited<T>(
  s: LimiterState,
  fn: () => Promise<T>,
  shape: RequestShape,
  classify?: (result: T) => LimitSignal,
): Promise<T> {
  await acquire(s);
  const startedIn = s.epoch;
  // Requests in flight beside this one (itself included) when it started.
  const beside = s.inFlight;
  const t0 = s.now();
  let result: T;
  try {
    result = await fn();
  } catch (err) {
    settle(s, isAbort(err) ? 'neutral' : 'overload', shape, s.now() - t0, startedIn, beside);
    throw err;
  }
  settle(s, classify?.(result) ?? 'ok', shape, s.now() - t0, startedIn, beside);
  return result;
}

function acquire(s: LimiterState): Promise<void> {
  if (s.queue.length === 0 && s.inFlight < Math.floor(s.limit)) {
    s.inFlight++;
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    s.queue.push(resolve);
  });
}

function pump(s: LimiterState): void {
  while (s.queue.length > 0 && s.inFlight < Math.floor(s.limit)) {
    s.inFlight++;
    s.queue.shift()!();
  }
}

function settle(
  s: LimiterState,
  signal: LimitSignal,
  shape: RequestShape,
  elapsed: number,
  startedIn: number,
  beside: number,
): void {
  s.inFlight--;
  if (signal === 'neutral') {
    pump(s);
    return;
  }
  const latency = elapsed / Math.max(1, shape.units ?? 1);
  const best = s.bestOf.get(shape.kind);
  const slow = best !== undefined && latency > best * s.slowFactor;
  // Forget slowly (1 % per answer) so a lasting change of speed becomes the new best.
  s.bestOf.set(shape.kind, best === undefined ? latency : Math.min(latency, best * 1.01));
  const serial = best !== undefined && beside > 1 && latency >= best * beside * s.serialFactor;
  if (signal === 'overload' || slow) {
    if (startedIn === s.epoch) {
      s.limit = Math.max(s.min, s.limit / 2);
      s.epoch++;
    }
  } else if (serial) {
    if (startedIn === s.epoch) {
      s.limit = Math.max(s.min, s.limit - 1);
      s.epoch++;
    }
  } else {
    s.limit = Math.min(s.max, s.limit + 1 / s.limit);
  }
  pump(s);
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError';
}

/**
 * A store whose writes go through a limiter (shared by all channels writing to it). Reads go
 * straight through: they are small, each channel has at most a few at a time, and a read
 * queued behind a transaction would stall the preparation of a channel's next page, so the
 * pipeline (prepare page N+1 while page N is written) would stop overlapping.
 * @param store - the store (the global server's).
 * @param limiter - the shared limiter.
 * @returns the same operations, writes bounded.
 */
export function limitedStore(store: FhirStore, limiter: Limiter): FhirStore {
  const answer = (a: FhirAnswer): LimitSignal => (a.status === 429 || a.status >= 500 ? 'overload' : 'ok');
  return {
    base: store.base,
    transaction: (bundle, signal) =>
      limiter.run(
        () => store.transaction(bundle, signal),
        { kind: `transaction:${bundle.type ?? 'transaction'}:${mainType(bundle)}`, units: bundle.entry?.length ?? 1 },
        answer,
      ),
    read: (type, id, signal) => store.read(type, id, signal),
    searchAll: (type, query, signal) => store.searchAll(type, query, signal),
    searchPages: (type, query, signal) => store.searchPages(type, query, signal),
    create: (resource, signal) => limiter.run(() => store.create(resource, signal), { kind: 'create' }),
  };
}

/**
 * The resource type most entries of a bundle carry: an entry of one type costs the server about
 * what another of that type does, while an ExplanationOfBenefit costs many Observations.
 */
function mainType(bundle: Bundle): string {
  const counts = new Map<string, number>();
  for (const e of bundle.entry ?? []) {
    const type = e.resource?.resourceType ?? e.request?.url.split(/[/?]/)[0] ?? '';
    counts.set(type, (counts.get(type) ?? 0) + 1);
  }
  let best = '';
  let most = 0;
  for (const [type, n] of counts) {
    if (n > most) {
      best = type;
      most = n;
    }
  }
  return best;
}
