/**
 * Nesting depth of parsed JSON, measured without recursion. Every recursive walker of the
 * service (de-identification, reference collection, JSON.stringify) would exhaust the stack on
 * a resource nested thousands of levels deep; such a resource is refused up front instead.
 */

/**
 * Deepest nesting a resource may have (objects and arrays counted alike). Real FHIR stays far
 * below: nested questionnaire items and extensions of extensions reach a few dozen levels.
 */
export const MAX_RESOURCE_DEPTH = 256;

/**
 * Whether a JSON value nests deeper than a limit. Iterative with an explicit stack; stops at the
 * first value past the limit, so its cost is linear in the part it looked at.
 * @param value - parsed JSON.
 * @param max - the limit (the top-level value is at depth 0).
 * @returns true when some object or array sits at depth `max` or deeper.
 */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) {
      continue;
    }
    if (depth >= max) {
      return true;
    }
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      stack.push([child, depth + 1]);
    }
  }
  return false;
}
