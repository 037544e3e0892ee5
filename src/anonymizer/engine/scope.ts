/**
 * The per-resource services processors use (ApplyContext): pseudonyms bound to the instance,
 * the resource's patient (for the date offset and for scrubbing), its reference date for ages.
 * Patient, offset and reference date are computed lazily, once per resource.
 */
import { DEID_ERR_REFERENCE } from '../../shared/errors/index.ts';
import type { FhirSchema } from '../fhir/schema.ts';
import type { ApplyContext, SecurityLabel } from '../processors/types.ts';
import type { RulesSettings } from '../rules/types.ts';
import { latestDay, offsetFromBits, shiftDate } from './dates.ts';
import { scrubText } from './free-text.ts';
import type { PhiDictionary } from './free-text.ts';
import {
  containedPseudonym,
  identifierPseudonym,
  identifierSystem,
  patientKey,
  patientKeyOfReference,
  pseudonymousId,
  rewriteFullUrl,
  rewriteReference,
  rewriteRequestUrl,
  space,
} from './references.ts';
import type { ReferenceEnv, Rewrite } from './references.ts';

/** Elements that name a resource's patient outside the compartment definitions. */
const OWNER_PATHS: readonly (readonly string[])[] = [['patient'], ['subject']];

const DATE_TYPE_INDEX: Readonly<Record<string, number>> = { date: 0, dateTime: 1, instant: 2 };

/** What every resource of one input shares. */
export interface BatchEnv {
  readonly refs: ReferenceEnv;
  readonly settings: RulesSettings;
  readonly schema: FhirSchema;
  /** PHI of the person resources of the input (undefined when no rule scrubs). */
  readonly dictionary: PhiDictionary | undefined;
  /** Patient keys of the Patients present in the input or the related resources. */
  readonly knownPatients: ReadonlySet<string>;
  /** Date offsets by patient key, filled as patients are met. */
  readonly offsets: Map<string, number>;
  /** Shifted dates by (offset, type, keepTime) and value. */
  readonly shifted: Map<number, Map<string, string | undefined>>;
}

/** How a resource was reached. */
export type ResourceKind = 'top' | 'entry' | 'contained';

/** ApplyContext of one resource. */
export class ResourceScope implements ApplyContext {
  readonly settings: RulesSettings;
  readonly resourceType: string;
  readonly kind: ResourceKind;
  /** Labels of the methods that fired in this resource. */
  readonly labels = new Set<SecurityLabel>();
  readonly #env: BatchEnv;
  readonly #resource: Readonly<Record<string, unknown>>;
  readonly #container: ResourceScope | undefined;
  readonly #where: { location(): string };
  #patient: string | undefined;
  #offset: number | undefined;
  #reference: string | undefined;

  constructor(
    env: BatchEnv,
    resource: Readonly<Record<string, unknown>>,
    kind: ResourceKind,
    container: ResourceScope | undefined,
    where: { location(): string },
  ) {
    this.#env = env;
    this.settings = env.settings;
    this.#resource = resource;
    this.resourceType = resource.resourceType as string;
    this.kind = kind;
    this.#container = container;
    this.#where = where;
  }

  location(): string {
    return this.#where.location();
  }

  pseudonymousId(resourceType: string, id: string): string {
    return pseudonymousId(this.#env.refs, resourceType, id);
  }

  resourceId(id: string): string {
    return this.kind === 'contained'
      ? containedPseudonym(this.#env.refs, id)
      : pseudonymousId(this.#env.refs, this.resourceType, id);
  }

  rewriteReference(reference: string): string {
    return this.#unwrap(rewriteReference(this.#env.refs, reference));
  }

  rewriteFullUrl(fullUrl: string): string | undefined {
    const r = rewriteFullUrl(this.#env.refs, fullUrl);
    return r === undefined ? undefined : this.#unwrap(r);
  }

  rewriteRequestUrl(url: string): string {
    return this.#unwrap(rewriteRequestUrl(this.#env.refs, url));
  }

  identifierValue(system: string | undefined, value: string): string {
    return identifierPseudonym(this.#env.refs, system, value);
  }

  identifierSystem(system: string): string {
    return identifierSystem(this.#env.refs, system);
  }

  pseudonymizeValue(value: string): string {
    const memo = space(this.#env.refs, '|value');
    let p = memo.get(value);
    if (p === undefined) {
      p = this.#env.refs.hmac.uuid(`${this.#env.refs.instanceId}|value|${value}`);
      memo.set(value, p);
    }
    return p;
  }

  dateShiftDays(): number {
    if (this.#offset === undefined) {
      const key = this.patientKey();
      let offset = this.#env.offsets.get(key);
      if (offset === undefined) {
        offset = offsetFromBits(this.#env.refs.hmac.uint32(`dateshift|${key}`), this.settings.dateShift.maxDays);
        this.#env.offsets.set(key, offset);
      }
      this.#offset = offset;
    }
    return this.#offset;
  }

  shiftDate(value: string, type: string, keepTime: boolean): string | undefined {
    const key = this.dateShiftDays() * 8 + (DATE_TYPE_INDEX[type] ?? 3) * 2 + (keepTime ? 1 : 0);
    let memo = this.#env.shifted.get(key);
    if (!memo) {
      memo = new Map();
      this.#env.shifted.set(key, memo);
    }
    if (memo.has(value)) {
      return memo.get(value);
    }
    const shifted = shiftDate(value, this.dateShiftDays(), keepTime, type);
    memo.set(value, shifted);
    return shifted;
  }

  referenceDate(): string {
    this.#reference ??= this.#computeReferenceDate();
    return this.#reference;
  }

  scrubText(text: string): string | undefined {
    const key = this.patientKey();
    // Only a record whose Patient is in the input can be checked for its own PHI.
    if (!key.startsWith('Self/') && !this.#env.knownPatients.has(key)) {
      return undefined;
    }
    const dictionary = this.#env.dictionary ?? { pattern: undefined, size: 0 };
    return scrubText(text, dictionary, this.settings.freeText.replacement);
  }

  /**
   * The key of the resource's patient: the Patient's own pseudonym for a Patient and for every
   * resource of its compartment (subject, patient, beneficiary, ...); contained resources use
   * their container's; a resource outside any patient's compartment uses its own pseudonym.
   */
  patientKey(): string {
    this.#patient ??= this.#computePatientKey();
    return this.#patient;
  }

  #computePatientKey(): string {
    if (this.#container) {
      return this.#container.patientKey();
    }
    const id = typeof this.#resource.id === 'string' ? this.#resource.id : undefined;
    if (this.resourceType === 'Patient' && id !== undefined) {
      return patientKey(this.#env.refs, id);
    }
    // Device (patient) and other types outside the R4 compartment still name their patient: their
    // dates must move with that patient's, not drift by an offset of their own.
    for (const path of [...this.#env.schema.compartmentPaths(this.resourceType), ...OWNER_PATHS]) {
      for (const ref of valuesAt(this.#resource, path)) {
        const key = patientKeyOfReference(this.#env.refs, ref);
        if (key !== undefined) {
          return key;
        }
      }
    }
    return `Self/${this.resourceType}/${id === undefined ? '' : pseudonymousId(this.#env.refs, this.resourceType, id)}`;
  }

  /** Age at death for the deceased; otherwise the later of meta.lastUpdated and the configured date. */
  #computeReferenceDate(): string {
    const deceased = this.#resource.deceasedDateTime;
    if (typeof deceased === 'string') {
      const d = latestDay(deceased);
      if (d !== undefined) {
        return d;
      }
    }
    const meta = this.#resource.meta as { lastUpdated?: unknown } | undefined;
    const own = typeof meta?.lastUpdated === 'string' ? latestDay(meta.lastUpdated) : undefined;
    const configured = this.settings.ages.referenceDate;
    const candidates = [own, configured].filter((d): d is string => d !== undefined).sort();
    // loadRules requires a configured date whenever a rule needs one, so this is always set.
    return candidates[candidates.length - 1] ?? (configured as string);
  }

  #unwrap(r: Rewrite): string {
    if (!r.ok) {
      throw DEID_ERR_REFERENCE.createWith({ location: this.location() }, [this.location(), r.reason]);
    }
    return r.value;
  }
}

function valuesAt(value: unknown, path: readonly string[]): unknown[] {
  let current: unknown[] = [value];
  for (const key of path) {
    const next: unknown[] = [];
    for (const v of current) {
      const child = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[key] : undefined;
      if (Array.isArray(child)) {
        next.push(...(child as unknown[]));
      } else if (child !== undefined) {
        next.push(child);
      }
    }
    current = next;
  }
  return current;
}
