/**
 * The contract every de-identification method implements. One processor per method, all
 * registered in one map (`registry.ts`); the rules loader validates a rule's method options
 * with the processor's own schema and asks it which element types it can work on, so a rule
 * that cannot work is refused at load rather than at run time.
 */
import type { z } from 'zod';
import type { RulesSettings } from '../rules/types.ts';

/** Returned by a processor to drop the element. */
export const REMOVE: unique symbol = Symbol('remove');
/** Returned by a processor to empty the element: the value goes, a data-absent-reason `masked` marks it. */
export const REDACT: unique symbol = Symbol('redact');

/** What a processor may return: a new value, or one of the sentinels. */
export type ProcessResult = unknown;

/** Security label codes (v3 ObservationValue) the engine writes into `meta.security`. */
export const SecurityLabel = {
  PSEUDED: 'PSEUDED',
  REDACTED: 'REDACTED',
  MASKED: 'MASKED',
  ABSTRED: 'ABSTRED',
} as const;
export type SecurityLabel = (typeof SecurityLabel)[keyof typeof SecurityLabel];

/** The element a processor works on. */
export interface Target {
  /** FHIR type code of the element (`string`, `date`, `Address`, ...). */
  readonly type: string;
  /** Its JSON key in the parent (`postalCode`, `valueString`). */
  readonly key: string;
  /** FHIR type of the parent (`Address`, `Reference`, `BundleEntry`, ...). */
  readonly parentType: string;
  /** The parent object as it came in (read-only: siblings such as Identifier.system or Attachment.contentType). */
  readonly parent: Readonly<Record<string, unknown>>;
  /** The element is the `id` of the resource being walked. */
  readonly isResourceId: boolean;
}

/** Services of the engine a processor may use; scoped to the resource being walked. */
export interface ApplyContext {
  readonly settings: RulesSettings;
  readonly resourceType: string;
  /** Element path for error messages (FHIRPath-like, indices, no values). */
  location(): string;
  /** Pseudonymous id of (type, id) of this instance; exempt types keep their id. */
  pseudonymousId(resourceType: string, id: string): string;
  /** The pseudonym of the resource being walked, used for its own `id`. */
  resourceId(id: string): string;
  /** Rewrites a Reference.reference (every form); throws a coded error when it cannot. */
  rewriteReference(reference: string): string;
  /** Rewrites Bundle.entry.fullUrl; undefined drops it. */
  rewriteFullUrl(fullUrl: string): string | undefined;
  /** Rewrites Bundle.entry.request.url / response.location. */
  rewriteRequestUrl(url: string): string;
  /** Pseudonym of an Identifier value (scoped by instance and system). */
  identifierValue(system: string | undefined, value: string): string;
  /** Identifier.system as written on the global (public namespaces stay, site systems become pseudonyms). */
  identifierSystem(system: string): string;
  /** Keyed pseudonym of any other string. */
  pseudonymizeValue(value: string): string;
  /** Days to shift dates by: one offset per patient. */
  dateShiftDays(): number;
  /**
   * A date of this resource shifted by its patient's offset (memoised per input: the same
   * dates recur across a patient's resources).
   * @returns the shifted value, or undefined when the value is not a valid date of that type.
   */
  shiftDate(value: string, type: string, keepTime: boolean): string | undefined;
  /** The date ages are computed against (YYYY-MM-DD): the resource's own dates or the configured date. */
  referenceDate(): string;
  /**
   * Scrubs free text of the record's PHI; undefined when the record's Patient is not part of
   * the input (then the text cannot be checked and must be removed).
   */
  scrubText(text: string): string | undefined;
}

/** One de-identification method. */
export interface Processor<O = unknown> {
  readonly method: string;
  /** Strict schema of the method's own rule keys (besides name/select/method/...). */
  readonly options: z.ZodType<O>;
  /**
   * `subtree`: decides every element below the matched one that no earlier rule decides
   * (keep, remove, redact). `value`: transforms the matched element as a whole.
   */
  readonly scope: 'subtree' | 'value';
  /** Label written into meta.security when the method fires; none for keep. */
  readonly label?: SecurityLabel;
  /**
   * Whether the method can work on elements of this FHIR type.
   * @param type - FHIR type code.
   * @param options - the rule's validated options.
   */
  accepts(type: string, options: O): boolean;
  /** Human description of accepted types, for error messages. */
  describeAccepted(options: O): string;
  /**
   * Transforms one element (for `value` methods, one array item at a time).
   * @returns the new value, REMOVE or REDACT.
   */
  apply(value: unknown, target: Target, options: O, ctx: ApplyContext): ProcessResult;
}
