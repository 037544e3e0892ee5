/**
 * One lock per instance in Redis, so that at most one unit of work (a forward pass, a reverse
 * pass or a quarantine retry) runs per instance across all workers and processes. Per
 * instance rather than per (instance, type): a pass may write resources of other types (the
 * dependencies it pulls in), and admin copies pushed down by the reverse channel must not
 * race the forward pass that decides which admin resources are global-owned.
 *
 * `SET key token NX PX ttl`, renewed every ttl/3 while the work runs, released with a
 * compare-and-delete. A worker killed with SIGKILL stops renewing: the lock expires after at
 * most `ttl` and the job, put back by bullmq's stalled-job check, runs again. A worker that
 * loses its lock (paused past the TTL) has its work aborted; even if a write slipped through,
 * the cursor's `ifMatch` makes the loser's commit fail rather than the data double.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { SYNC_ERR_ABORTED } from '../../shared/errors/index.ts';

/** A held lock. */
export interface Lease {
  /** Aborted when the lock is lost. */
  readonly signal: AbortSignal;
  release(): Promise<void>;
}

/** The locks. */
export interface InstanceLocks {
  /** Takes the lock of an instance, or undefined when another holder has it. */
  tryAcquire(instanceId: string): Promise<Lease | undefined>;
}

const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/**
 * Redis-backed instance locks.
 * @param redis - an ioredis client.
 * @param options - key prefix and TTL (default 30 s).
 * @returns the locks.
 */
export function createInstanceLocks(
  redis: Redis,
  options: { readonly prefix: string; readonly ttlMs?: number },
): InstanceLocks {
  const ttl = options.ttlMs ?? 30_000;
  return {
    tryAcquire: async (instanceId) => {
      const key = `${options.prefix}:lock:instance:${instanceId}`;
      const token = randomBytes(12).toString('hex');
      if ((await redis.set(key, token, 'PX', ttl, 'NX')) !== 'OK') {
        return undefined;
      }
      const controller = new AbortController();
      const lost = (): void => controller.abort(SYNC_ERR_ABORTED.create(instanceId, '*', 'instance lock lost'));
      const timer = setInterval(
        () => {
          redis.eval(RENEW, 1, key, token, String(ttl)).then(
            (ok) => ok === 0 && lost(),
            () => undefined, // Redis briefly away: keep trying until the TTL decides
          );
        },
        Math.max(100, Math.floor(ttl / 3)),
      );
      timer.unref();
      return {
        signal: controller.signal,
        release: async () => {
          clearInterval(timer);
          await redis.eval(RELEASE, 1, key, token).catch(() => undefined);
        },
      };
    },
  };
}
