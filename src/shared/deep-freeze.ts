/**
 * Configuration is checked once at load and then frozen, so nothing downstream can change
 * what was validated (rules, instance registry).
 */

/**
 * Freezes an object graph in place.
 * @param value - plain data (parsed configuration).
 * @returns the same value, frozen all the way down.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) {
      deepFreeze(v);
    }
  }
  return value;
}
