/**
 * The people whose PHI a batch's free text may carry, read from the local so the anonymiser
 * can scrub them (its `related` context, what the CLI's `--related` gives by hand).
 *
 * Why: a pass sends one type at a time. A DocumentReference, a Communication to a relative or a
 * Binary arrives without its Patient in the batch. The anonymiser then either removes the text
 * (its Patient is unknown: safe, but the note is lost) or, for a resource outside any patient's
 * compartment, scrubs it against an empty dictionary, and the names pass.
 *
 * What is read, per batch, in a bounded number of searches (`_id=a,b,c` per type):
 * 1. the Patients and RelatedPersons the batch references;
 * 2. for a resource that references no person (a Binary's `securityContext`, a Provenance's
 *    `target`), the resources it references, one hop, and the people those reference;
 * 3. the Patients of the RelatedPersons found, and the RelatedPersons of every Patient (a
 *    relative's name in a note is PHI too).
 * The number of people read is capped per batch; past the cap the rest are not read, and the
 * anonymiser's fail-closed rules apply to their records (text of an unknown patient is removed).
 */
import type { Resource } from '@medplum/fhirtypes';
import type { FhirStore } from './fhir-store.ts';
import { collectReferences } from './references.ts';

/** Types whose names, identifiers and addresses the anonymiser's dictionary is built from. */
export const PERSON_TYPES: ReadonlySet<string> = new Set(['Patient', 'RelatedPerson']);

/** Options of {@link peopleContext}. */
export interface PeopleContextOptions {
  /**
   * Most resources read for one batch (people and one-hop resources together).
   * @defaultValue 1000
   */
  readonly maxResources?: number;
  /**
   * Ids per `_id=` search.
   * @defaultValue 50
   */
  readonly idsPerSearch?: number;
  readonly signal?: AbortSignal;
}

type Key = string;

const keyOf = (type: string, id: string): Key => `${type}/${id}`;

/**
 * Reads the people related to a batch from its source server.
 * @param batch - the resources about to be de-identified.
 * @param source - the local they come from.
 * @param opts - cap, search size, abort signal.
 * @returns the related Patients and RelatedPersons that are not in the batch itself.
 */
export async function peopleContext(
  batch: readonly Resource[],
  source: FhirStore,
  opts: PeopleContextOptions = {},
): Promise<Resource[]> {
  const budget = { left: opts.maxResources ?? 1000 };
  const perSearch = opts.idsPerSearch ?? 50;
  const known = new Set<Key>();
  for (const r of batch) {
    if (typeof r.id === 'string') {
      known.add(keyOf(r.resourceType, r.id));
    }
  }
  const people = new Set<Key>();
  const hops = new Set<Key>();
  for (const r of batch) {
    const refs = collectReferences(r).filter((ref) => !ref.absolute);
    const personal = refs.filter((ref) => PERSON_TYPES.has(ref.type));
    personal.forEach((ref) => people.add(keyOf(ref.type, ref.id)));
    if (personal.length === 0 && !PERSON_TYPES.has(r.resourceType)) {
      refs.forEach((ref) => hops.add(keyOf(ref.type, ref.id)));
    }
  }
  const read = (keys: Iterable<Key>): Promise<Resource[]> =>
    readByIds(
      [...keys].filter((k) => !known.has(k)),
      source,
      perSearch,
      budget,
      opts.signal,
    );

  for (const r of await read(hops)) {
    for (const ref of collectReferences(r)) {
      if (!ref.absolute && PERSON_TYPES.has(ref.type)) {
        people.add(keyOf(ref.type, ref.id));
      }
    }
  }
  const found = await read(people);
  found.forEach((r) => known.add(keyOf(r.resourceType, r.id ?? '')));
  // A relative's Patient, then every Patient's relatives.
  const patientsOfRelatives = new Set<Key>();
  for (const r of found) {
    if (r.resourceType === 'RelatedPerson' && typeof r.patient?.reference === 'string') {
      patientsOfRelatives.add(r.patient.reference);
    }
  }
  const more = await read([...patientsOfRelatives].filter((k) => k.startsWith('Patient/')));
  found.push(...more);
  const patientIds = [...batch, ...found].flatMap((r) =>
    r.resourceType === 'Patient' && typeof r.id === 'string' ? [r.id] : [],
  );
  const relatives = await searchChunks(source, 'RelatedPerson', 'patient', patientIds, perSearch, budget, opts.signal);
  const seen = new Set(found.map((r) => keyOf(r.resourceType, r.id ?? '')));
  for (const r of relatives) {
    const key = keyOf(r.resourceType, r.id ?? '');
    if (!known.has(key) && !seen.has(key)) {
      seen.add(key);
      found.push(r);
    }
  }
  return found.filter((r) => PERSON_TYPES.has(r.resourceType));
}

/** Reads `Type/id` keys with one `_id=` search per type and chunk, within the budget. */
async function readByIds(
  keys: readonly Key[],
  source: FhirStore,
  perSearch: number,
  budget: { left: number },
  signal: AbortSignal | undefined,
): Promise<Resource[]> {
  const byType = new Map<string, string[]>();
  for (const key of keys) {
    const [type, id] = key.split('/') as [string, string];
    byType.set(type, [...(byType.get(type) ?? []), id]);
  }
  const out: Resource[] = [];
  for (const [type, ids] of byType) {
    out.push(...(await searchChunks(source, type, '_id', ids, perSearch, budget, signal)));
  }
  return out;
}

/** One search per chunk of values of one parameter, stopping when the budget is spent. */
async function searchChunks(
  source: FhirStore,
  type: string,
  param: string,
  values: readonly string[],
  perSearch: number,
  budget: { left: number },
  signal: AbortSignal | undefined,
): Promise<Resource[]> {
  const out: Resource[] = [];
  const unique = [...new Set(values)];
  for (let i = 0; i < unique.length && budget.left > 0; i += perSearch) {
    const chunk = unique.slice(i, i + Math.min(perSearch, budget.left));
    const found = await source.searchAll(type, { [param]: chunk.join(','), _count: String(perSearch) }, signal);
    const kept = found.filter((r) => r.resourceType === type).slice(0, budget.left);
    budget.left -= kept.length;
    out.push(...kept);
  }
  return out;
}
