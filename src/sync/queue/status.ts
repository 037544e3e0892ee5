/**
 * Last-pass facts per (direction, instance, type) for GET /status: when, ok or failed, the
 * failure code, and when the feed was last read to its end (lag). Kept in one Redis hash:
 * nothing here is needed to sync correctly (cursors and quarantine live on the servers), it
 * is rebuilt by the next pass.
 */
import type { Redis } from 'ioredis';
import type { Direction } from '../state.ts';

/** What is known about the last pass. */
export interface PassStatus {
  readonly at: string;
  readonly result: 'ok' | 'failed';
  readonly failedCode?: string;
  /** When a pass last read the feed to its end. */
  readonly drainedAt?: string;
}

/** The status store. */
export interface StatusStore {
  record(direction: Direction, instanceId: string, resourceType: string, status: PassStatus): Promise<void>;
  all(): Promise<Map<string, PassStatus>>;
}

/**
 * Key of one (direction, instance, type) in {@link StatusStore.all}.
 * @param direction - forward or reverse.
 * @param instanceId - instance.
 * @param resourceType - type.
 * @returns the key.
 */
export function statusKey(direction: Direction, instanceId: string, resourceType: string): string {
  return `${direction}/${instanceId}/${resourceType}`;
}

/**
 * A status store in one Redis hash.
 * @param redis - client.
 * @param prefix - key prefix.
 * @returns the store.
 */
export function createStatusStore(redis: Redis, prefix: string): StatusStore {
  const key = `${prefix}:status`;
  return {
    record: async (direction, instanceId, resourceType, status) => {
      const field = statusKey(direction, instanceId, resourceType);
      const previous = parse(await redis.hget(key, field));
      const drainedAt = status.drainedAt ?? previous?.drainedAt;
      await redis.hset(key, field, JSON.stringify({ ...status, ...(drainedAt === undefined ? {} : { drainedAt }) }));
    },
    all: async () => {
      const raw = await redis.hgetall(key);
      const out = new Map<string, PassStatus>();
      for (const [field, value] of Object.entries(raw)) {
        const s = parse(value);
        if (s !== undefined) {
          out.set(field, s);
        }
      }
      return out;
    },
  };
}

function parse(value: string | null | undefined): PassStatus | undefined {
  if (value === null || value === undefined) {
    return undefined;
  }
  try {
    return JSON.parse(value) as PassStatus;
  } catch {
    return undefined;
  }
}
