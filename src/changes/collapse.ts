/**
 * Reduces a run of changes to what a writer must apply: one change per resource, the latest.
 * A transaction may not touch one resource twice (HAPI-0535, Medplum, Azure), and the global
 * server only needs the final state. "Latest" is the later version when both versionIds are
 * integers, else the later position in feed order (feeds deliver oldest first). A deletion
 * that is the latest survives; a resurrection (a version after a deletion) wins as a resource.
 */
import type { Change } from './types.ts';

/**
 * The latest change per (resourceType, id), in the order of their last appearance.
 * @param changes - changes in feed order.
 * @returns at most one change per resource.
 */
export function latestPerResource(changes: readonly Change[]): Change[] {
  const winner = new Map<string, number>();
  changes.forEach((change, i) => {
    const key = `${change.resourceType}/${change.id}`;
    const current = winner.get(key);
    if (current === undefined || !isOlder(change, changes[current] as Change)) {
      winner.set(key, i);
    }
  });
  const keep = new Set(winner.values());
  return changes.filter((_, i) => keep.has(i));
}

function isOlder(candidate: Change, current: Change): boolean {
  const a = numericVersion(candidate.versionId);
  const b = numericVersion(current.versionId);
  return a !== undefined && b !== undefined && a < b;
}

function numericVersion(v: string | undefined): number | undefined {
  return v !== undefined && /^\d{1,15}$/.test(v) ? Number(v) : undefined;
}
