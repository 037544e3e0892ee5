/**
 * References on their way to the target: this module owns what a reference and an id become
 * there (the anonymiser owns their syntax and pseudonyms: `parseLiteralReference`,
 * `pseudonymousId`). The sync engine uses it twice: on a local resource, to learn which synced
 * resources it depends on, and on the transformed output, to decide per reference whether it
 * stays, is pointed at the target's id (the global's own id for global-owned admin data), is
 * masked (a data-absent-reason extension in place of the reference, so required elements stay
 * present) or is dropped.
 * Contained references (`#x`) are always kept; every object with a string `reference` is a
 * FHIR Reference (or a CodeableReference's inner Reference).
 *
 * Forward rules (per reference of a local resource to `Type/id`), {@link forwardReferences}:
 * - `Type` is a global admin type and the local's `Type/id` carries the `from-global` mark
 *   (it was pushed down by the reverse channel, so `id` is the global's own id): the
 *   reference keeps that id. No dependency: the global owns it.
 * - `Type` is a global admin type created on the local (no mark): `references.localOnlyAdmin`
 *   decides: `send` links to its pseudonym (and it is synced as a dependency), `mask`/`drop`
 *   as below. When the rules exempt the admin type from pseudonyms (the default), a
 *   local-only admin resource gets an id derived from (instance, type, id) instead, so two
 *   locals' resources can never collide on the global.
 * - `Type` is in `sendTypes`: link to the pseudonym; the target is a dependency (written in
 *   the same bundle when the global does not have it yet).
 * - Anything else (e.g. Practitioner when not sent, absolute URLs, `urn:` leftovers):
 *   `references.unsynced` (`mask` = data-absent-reason in place of the reference, or `drop`).

 */
import type { Resource } from '@medplum/fhirtypes';
import { parseLiteralReference } from '../anonymizer/index.ts';
import type { Anonymizer } from '../anonymizer/index.ts';
import type { GlobalServer, LocalInstance } from '../instances/index.ts';
import type { FhirStore } from './fhir-store.ts';
import { stateId } from './ids.ts';
import { FROM_GLOBAL_TAG, SYNC_SYSTEM } from './marks.ts';

/** http://hl7.org/fhir/StructureDefinition/data-absent-reason */
export const DATA_ABSENT_REASON = 'http://hl7.org/fhir/StructureDefinition/data-absent-reason';

/** How one source reference is carried to the target. */
export type RefPlan =
  | { readonly action: 'link'; readonly targetRef: string; readonly dependency: boolean }
  | { readonly action: 'mask' }
  | { readonly action: 'drop' };

/** The ids and reference plans of a channel. */
export interface ChannelReferences {
  /** Id on the target of a source (type, id). */
  targetId(type: string, id: string): string;
  /** The id a reference to a source (type, id) carries in the transform's output. */
  outputId(type: string, id: string): string;
  /** How a reference to a source (type, id) is carried. */
  plan(type: string, id: string): Promise<RefPlan>;
}

/**
 * The forward rules (see the head of this module) for one instance.
 * @param input - the instance, the global's settings, the anonymiser and the local's store.
 * @returns target ids, output ids and plans.
 */
export function forwardReferences(input: {
  readonly instance: LocalInstance;
  readonly global: GlobalServer;
  readonly anonymizer: Anonymizer;
  readonly local: FhirStore;
}): ChannelReferences {
  const { instance, anonymizer } = input;
  const adminTypes = new Set(input.global.adminTypes);
  const sendTypes = new Set(instance.sendTypes);
  const globalOwned = lazyIdSets(input.local, { _tag: `${SYNC_SYSTEM}|${FROM_GLOBAL_TAG.code}` });
  const outputId = (type: string, id: string): string => anonymizer.pseudonymousId(instance.id, type, id);
  const targetId = (type: string, id: string): string => {
    const p = outputId(type, id);
    // Rules usually exempt admin types from pseudonyms (their ids are the global's). A
    // local-only admin resource sent forward still needs an id no other local can take.
    return p === id && adminTypes.has(type) ? stateId('local-admin', instance.id, type, id) : p;
  };
  const unsynced: RefPlan = { action: instance.references.unsynced };
  return {
    targetId,
    outputId,
    plan: async (type, id) => {
      if (adminTypes.has(type)) {
        if ((await globalOwned(type)).has(id)) {
          return { action: 'link', targetRef: `${type}/${id}`, dependency: false };
        }
        const rule = instance.references.localOnlyAdmin;
        return rule === 'send'
          ? { action: 'link', targetRef: `${type}/${targetId(type, id)}`, dependency: true }
          : { action: rule };
      }
      return sendTypes.has(type)
        ? { action: 'link', targetRef: `${type}/${targetId(type, id)}`, dependency: true }
        : unsynced;
    },
  };
}

/**
 * Per-type sets of ids found by a search, loaded once per channel (one pass) on first use.
 * @param store - where to search.
 * @param query - the search (ids only are asked for).
 * @returns a loader per type.
 */
export function lazyIdSets(
  store: FhirStore,
  query: Readonly<Record<string, string>>,
): (type: string) => Promise<ReadonlySet<string>> {
  const cache = new Map<string, Promise<ReadonlySet<string>>>();
  return (type) => {
    let hit = cache.get(type);
    if (hit === undefined) {
      hit = store
        .searchAll(type, { ...query, _elements: 'id', _count: '1000' })
        .then((rs) => new Set(rs.flatMap((r) => (r.id === undefined ? [] : [r.id]))));
      cache.set(type, hit);
    }
    return hit;
  };
}

/** A parsed literal reference. */
export interface ParsedRef {
  readonly type: string;
  readonly id: string;
  /** The reference was an absolute URL (it names a server). */
  readonly absolute: boolean;
}

export type RefDecision =
  | { readonly action: 'keep' }
  | { readonly action: 'rewrite'; readonly reference: string }
  | { readonly action: 'mask' }
  | { readonly action: 'drop' };

/** What a rewrite did. */
export interface RewriteCounts {
  kept: number;
  rewritten: number;
  masked: number;
  dropped: number;
}

/**
 * Parses `Type/id`, `Type/id/_history/v` or an absolute URL ending so, with the anonymiser's
 * parser (one reading of references for both).
 * @param reference - the reference string.
 * @returns the type and id, or undefined for contained (`#x`), `urn:` and anything else.
 */
export function parseReference(reference: string): ParsedRef | undefined {
  const lit = parseLiteralReference(reference);
  return lit === undefined ? undefined : { type: lit.type, id: lit.id, absolute: lit.base !== undefined };
}

/**
 * The literal references of a resource (contained resources included), in document order.
 * @param resource - any resource.
 * @returns parsed references; unparseable ones are skipped.
 */
export function collectReferences(resource: Resource): ParsedRef[] {
  const out: ParsedRef[] = [];
  visit(resource, (obj) => {
    const parsed = typeof obj.reference === 'string' ? parseReference(obj.reference) : undefined;
    if (parsed !== undefined) {
      out.push(parsed);
    }
  });
  return out;
}

/**
 * Rewrites every reference of a resource by a decision function. The input is not modified.
 * @param resource - the resource.
 * @param decide - called for every reference that is not contained (`#x`); `parsed` is
 *   undefined for references it cannot read (urn:, malformed).
 * @returns the new resource and counts per action.
 */
export function rewriteReferences<T extends Resource>(
  resource: T,
  decide: (parsed: ParsedRef | undefined, raw: string) => RefDecision,
): { resource: T; counts: RewriteCounts } {
  const counts: RewriteCounts = { kept: 0, rewritten: 0, masked: 0, dropped: 0 };
  const out = transform(resource, (obj) => {
    const raw = obj.reference;
    if (typeof raw !== 'string' || raw.startsWith('#')) {
      return obj;
    }
    const parsed = parseReference(raw);
    const decision = decide(parsed, raw);
    switch (decision.action) {
      case 'keep':
        counts.kept++;
        return obj;
      case 'rewrite':
        counts.rewritten++;
        return { ...obj, reference: decision.reference };
      case 'mask':
        counts.masked++;
        return maskedReference(obj, parsed);
      case 'drop':
        counts.dropped++;
        return DROP;
      default:
        return decision satisfies never;
    }
  });
  return { resource: out as T, counts };
}

/**
 * A reference reduced to its type and a data-absent-reason `masked` extension.
 * @param obj - the original Reference object.
 * @param parsed - its parsed form, if any.
 * @returns the masked Reference (no reference, display or identifier).
 */
export function maskedReference(obj: Record<string, unknown>, parsed: ParsedRef | undefined): Record<string, unknown> {
  const type = typeof obj.type === 'string' ? obj.type : parsed?.type;
  return {
    ...(type === undefined ? {} : { type }),
    extension: [{ url: DATA_ABSENT_REASON, valueCode: 'masked' }],
  };
}

const DROP: unique symbol = Symbol('drop');
type Obj = Record<string, unknown>;

function visit(value: unknown, fn: (obj: Obj) => void): void {
  if (Array.isArray(value)) {
    for (const v of value) {
      visit(v, fn);
    }
  } else if (typeof value === 'object' && value !== null) {
    fn(value as Obj);
    for (const v of Object.values(value)) {
      visit(v, fn);
    }
  }
}

/**
 * Rebuilds a JSON tree bottom-up; `fn` sees each object whose children are already done.
 * Arrays and objects emptied by drops are dropped as well.
 */
function transform(value: unknown, fn: (obj: Obj) => Obj | typeof DROP): unknown {
  if (Array.isArray(value)) {
    const items = value.map((v) => transform(v, fn)).filter((v) => v !== DROP);
    return items.length > 0 || value.length === 0 ? items : DROP;
  }
  if (typeof value === 'object' && value !== null) {
    const obj: Obj = {};
    let removed = false;
    for (const [k, v] of Object.entries(value)) {
      const t = transform(v, fn);
      if (t === DROP) {
        removed = true;
      } else {
        obj[k] = t;
      }
    }
    // An element left empty by a drop is invalid FHIR: drop it too.
    return removed && Object.keys(obj).length === 0 ? DROP : fn(obj);
  }
  return value;
}
