/**
 * Building transaction bundles (pure).
 *
 * - Every data write is a `PUT Type/id` (idempotent; the id is the pseudonym), every deletion
 *   a `DELETE Type/id`; a target answering 404/410 to a DELETE is fine (see readTransactionAnswer in writer.ts).
 * - One entry per identity: when the same `Type/id` appears twice, the later op wins (the
 *   feed's order), so a deletion followed by a resurrection goes out as the resource. HAPI
 *   (HAPI-0535), Medplum and Azure refuse duplicates in one transaction.
 * - Dependency order: PUTs are sorted so that a resource comes after the resources it
 *   references that are in the same plan (Kahn's algorithm, stable; cycles keep input order).
 *   Servers process DELETE before PUT within a transaction anyway; the sort matters when a
 *   plan is split over several bundles: a dependency always lands in the same or an earlier
 *   bundle.
 * - The cursor entry (if any) goes last, in the last bundle, so a crash leaves the cursor
 *   behind anything not yet written. Plans are normally one bundle (the feed's page size is
 *   the bundle size minus one); when a page grows past it (dependencies pulled in), earlier
 *   bundles hold only idempotent PUT/DELETEs that a replay rewrites without new versions.
 */
import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';

/** Why an entry is in the bundle (for counting and for mapping answers back). */
export type OpRole = 'data' | 'dependency' | 'quarantine' | 'unquarantine' | 'cursor';

export interface PutOp {
  readonly kind: 'put';
  readonly type: string;
  readonly id: string;
  readonly resource: Resource;
  /** `Type/id` keys (on the target) this resource references. */
  readonly deps?: readonly string[];
  /** Optimistic concurrency: `W/"<versionId>"` the target must still have. */
  readonly ifMatch?: string;
  readonly role: OpRole;
}

export interface DeleteOp {
  readonly kind: 'delete';
  readonly type: string;
  readonly id: string;
  readonly role: OpRole;
}

export type WriteOp = PutOp | DeleteOp;

/** A bundle ready to POST and the op behind each of its entries (same order). */
export interface PlannedBundle {
  readonly bundle: Bundle;
  readonly ops: readonly WriteOp[];
}

/**
 * The identity key of an op.
 * @param op - a write.
 * @returns `Type/id`.
 */
export function keyOf(op: { readonly type: string; readonly id: string }): string {
  return `${op.type}/${op.id}`;
}

/**
 * Keeps the last op per identity, in the order of those last occurrences.
 * @param ops - ops in feed order.
 * @returns deduplicated ops.
 */
export function lastPerIdentity<T extends { readonly type: string; readonly id: string }>(ops: readonly T[]): T[] {
  const last = new Map<string, number>();
  ops.forEach((op, i) => last.set(keyOf(op), i));
  return ops.filter((op, i) => last.get(keyOf(op)) === i);
}

/**
 * Orders PUTs after the PUTs they depend on (stable); DELETEs follow.
 * @param ops - deduplicated ops without the cursor.
 * @returns ops in write order.
 */
export function dependencyOrder(ops: readonly WriteOp[]): WriteOp[] {
  const puts = ops.filter((o): o is PutOp => o.kind === 'put');
  const index = new Map(puts.map((o, i) => [keyOf(o), i]));
  const waiting = puts.map((o) => new Set((o.deps ?? []).filter((d) => d !== keyOf(o) && index.has(d))));
  const dependents = new Map<string, number[]>();
  waiting.forEach((deps, i) => deps.forEach((d) => dependents.set(d, [...(dependents.get(d) ?? []), i])));
  const done = new Array<boolean>(puts.length).fill(false);
  const out: WriteOp[] = [];
  let progressed = true;
  while (out.length < puts.length && progressed) {
    progressed = false;
    for (let i = 0; i < puts.length; i++) {
      if (!done[i] && waiting[i]!.size === 0) {
        done[i] = true;
        progressed = true;
        out.push(puts[i]!);
        for (const j of dependents.get(keyOf(puts[i]!)) ?? []) {
          waiting[j]!.delete(keyOf(puts[i]!));
        }
        break; // restart from the top: keeps the order stable
      }
    }
  }
  // Cycles: whatever is left keeps its input order (servers resolve them within one bundle).
  puts.forEach((p, i) => !done[i] && out.push(p));
  return [...out, ...ops.filter((o) => o.kind === 'delete')];
}

/**
 * Splits ops into transaction bundles of at most `bundleSize` entries, the cursor op last.
 * @param ops - data, dependency and state ops (any order; duplicates resolved last-wins).
 * @param options - `bundleSize` (≥ 2) and the optional cursor op.
 * @returns the bundles, in write order; empty when there is nothing to write.
 */
export function planBundles(
  ops: readonly WriteOp[],
  options: { readonly bundleSize: number; readonly cursor?: PutOp },
): PlannedBundle[] {
  const ordered = dependencyOrder(lastPerIdentity(ops));
  const all = options.cursor === undefined ? ordered : [...ordered, options.cursor];
  const out: PlannedBundle[] = [];
  for (let start = 0; start < all.length; start += options.bundleSize) {
    const chunk = all.slice(start, start + options.bundleSize);
    out.push({ bundle: transactionBundle(chunk), ops: chunk });
  }
  return out;
}

/**
 * A transaction bundle for a list of ops.
 * @param ops - ops in write order.
 * @returns the Bundle.
 */
export function transactionBundle(ops: readonly WriteOp[]): Bundle {
  return { resourceType: 'Bundle', type: 'transaction', entry: ops.map(entryOf) };
}

function entryOf(op: WriteOp): BundleEntry {
  if (op.kind === 'delete') {
    return { request: { method: 'DELETE', url: keyOf(op) } };
  }
  const request =
    op.ifMatch === undefined
      ? { method: 'PUT' as const, url: keyOf(op) }
      : { method: 'PUT' as const, url: keyOf(op), ifMatch: op.ifMatch };
  return { resource: op.resource, request };
}
