/**
 * The one backoff of the service: exponential, capped, with jitter. Both the queue (BullMQ's
 * retry of a failed job) and the FHIR writer (retries of a transaction or read) use it, so an
 * operator reads one rule in the docs and sees it in the logs.
 */

/** Base and cap of a backoff. */
export interface BackoffPolicy {
  /** Delay before the first retry, before jitter. */
  readonly baseDelayMs: number;
  /** Largest delay. */
  readonly maxDelayMs: number;
}

/**
 * Delay before the next attempt: uniform in [10%, 100%] of min(max, base · 2^(attempt−1)).
 * The jitter spreads retries of many channels that failed together (the global came back);
 * the 10% floor keeps a retry from spinning.
 * @param policy - base and cap.
 * @param attempt - the attempt that just failed (1-based).
 * @param random - uniform [0, 1).
 * @returns delay in ms, never above the cap.
 */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling * (0.1 + 0.9 * random()));
}
