/**
 * Reading and rewriting the literal references of a resource (pure). The sync engine uses it
 * twice: on a local resource, to learn which synced resources it depends on, and on the
 * de-identified output, to decide per reference whether it stays, is pointed at the global
 * server's own id (global-owned admin data), is masked (a data-absent-reason extension in
 * place of the reference, so required elements stay present) or is dropped.
 * Contained references (`#x`) are always kept; every object with a string `reference` is a
 * FHIR Reference (or a CodeableReference's inner Reference).
 */
import type { Resource } from '@medplum/fhirtypes';

/** http://hl7.org/fhir/StructureDefinition/data-absent-reason */
export const DATA_ABSENT_REASON = 'http://hl7.org/fhir/StructureDefinition/data-absent-reason';

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

const RELATIVE = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;
const ABSOLUTE = /^https?:\/\/.+\/([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

/**
 * Parses `Type/id`, `Type/id/_history/v` or an absolute URL ending so.
 * @param reference - the reference string.
 * @returns the type and id, or undefined for contained (`#x`), `urn:` and anything else.
 */
export function parseReference(reference: string): ParsedRef | undefined {
  const rel = RELATIVE.exec(reference);
  if (rel !== null) {
    return { type: rel[1]!, id: rel[2]!, absolute: false };
  }
  const abs = ABSOLUTE.exec(reference);
  if (abs !== null) {
    return { type: abs[1]!, id: abs[2]!, absolute: true };
  }
  return undefined;
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
