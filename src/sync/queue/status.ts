/**
 * Last-pass facts per (direction, instance, type) for GET /status: when, ok or failed, the
 * failure code, when the feed was last read to its end, and the lag measured then. Kept in one Redis hash:
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
  /** Newest change on the local minus the cursor's position, in seconds, as the last pass measured it. */
  readonly lagSeconds?: number;
  /** When that lag was measured. */
  readonly lagAt?: string;
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
      // A failed pass keeps what the last good one measured.
      const drainedAt = status.drainedAt ?? previous?.drainedAt;
      const lag =
        status.lagSeconds !== undefined
          ? { lagSeconds: status.lagSeconds, lagAt: status.lagAt ?? status.at }
          : previous?.lagSeconds !== undefined
            ? { lagSeconds: previous.lagSeconds, lagAt: previous.lagAt }
            : {};
      await redis.hset(
        key,
        field,
        JSON.stringify({ ...status, ...(drainedAt === undefined ? {} : { drainedAt }), ...lag }),
      );
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
