/**
 * The compiled, frozen form of a rules file (config/anonymization.yaml) as the engine uses it.
 * Produced only by `loadRules`, which validates everything first.
 */

/** Safe Harbor identifier categories of 45 CFR 164.514(b)(2)(i), grouped as the coverage report uses them. */
export const SafeHarborCategory = {
  A: 'A',
  B: 'B',
  C: 'C',
  D: 'D',
  E: 'E',
  F: 'F',
  G: 'G',
  H: 'H',
  I: 'I',
  J: 'J',
  K: 'K',
  L: 'L',
  M: 'M',
  N: 'N',
  O: 'O',
  P: 'P',
  Q: 'Q',
  R: 'R',
} as const;
export type SafeHarborCategory = (typeof SafeHarborCategory)[keyof typeof SafeHarborCategory];

/** Engine-wide settings of a rules file. Every field has a default (see `rules/schema.ts`). */
export interface RulesSettings {
  /** When true, every element no rule decides is dropped (only what a rule keeps or transforms leaves). */
  readonly allowListMode: boolean;
  /** An element the FHIR type does not define: `fail` the resource, or `remove` the element. */
  readonly unknownElements: 'fail' | 'remove';
  readonly references: {
    /** Resource types whose ids and references are never pseudonymised (owned by the global server). */
    readonly exemptTypes: readonly string[];
  };
  readonly dateShift: {
    /** Offsets are drawn from [-maxDays, -1] and [1, maxDays]. */
    readonly maxDays: number;
    /** Keep the time of day of dateTime/instant values; false sets it to 00:00:00. */
    readonly keepTime: boolean;
  };
  readonly ages: {
    /** Ages at or above this are pooled (Safe Harbor: 90). */
    readonly threshold: number;
    /**
     * Date ages are computed against when it is later than the resource's own dates
     * (YYYY-MM-DD). Required when a rule generalises dates to a year.
     */
    readonly referenceDate?: string | undefined;
  };
  readonly zip3: {
    /** 3-digit ZIP prefixes with 20,000 people or fewer; they become `000`. */
    readonly restrictedPrefixes: readonly string[];
  };
  readonly freeText: {
    /** What replaces a scrubbed term. */
    readonly replacement: string;
    /** Shorter name/address terms are not scrubbed (too many false hits). */
    readonly minTermLength: number;
  };
  readonly marking: {
    /** Write v3 ObservationValue labels (PSEUDED, REDACTED, ...) into meta.security. */
    readonly securityLabels: boolean;
    /** Write meta.tag codings naming the rules version and the key id. */
    readonly tags: boolean;
  };
}

/** One step of a compiled JSONPath. */
export type PathSegment =
  | { readonly kind: 'key'; readonly key: string }
  | { readonly kind: 'index'; readonly index: number }
  | { readonly kind: 'wildcard' }
  | { readonly kind: 'descendant' };

/** Matches an element of a FHIR data type anywhere (extensions, contained resources, QR items). */
export interface TypeSelector {
  readonly kind: 'type';
  /**
   * Data types, primitive types, backbone elements named by their definition path
   * (`QuestionnaireResponse.item` = the type of every item at any depth), or `Resource`
   * (the root of every resource, nested ones included). One of them must match.
   */
  readonly types: readonly string[];
  /** Dotted element path below that type (`postalCode`, `period.start`); empty = the type itself. */
  readonly element: readonly string[];
  /** Only inside these resource types; empty = all. */
  readonly in: readonly string[];
  /** Only elements whose child values (dotted path) equal one of the listed values. */
  readonly where: readonly { readonly path: readonly string[]; readonly values: readonly string[] }[];
}

/** An exact JSONPath from the root of resources of the listed types. */
export interface PathSelector {
  readonly kind: 'path';
  readonly path: string;
  readonly segments: readonly PathSegment[];
  readonly in: readonly string[];
  /** Only in resources whose values at these dotted paths equal one of the listed values. */
  readonly where: readonly { readonly path: readonly string[]; readonly values: readonly string[] }[];
}

/** QuestionnaireResponse items, by questionnaire + linkId, by item code, or by answer type. */
export interface QuestionnaireSelector {
  readonly kind: 'questionnaire';
  /** Canonical URL of the Questionnaire (version after `|` optional). */
  readonly questionnaire?: string;
  readonly linkIds: readonly string[];
  /** `system|code` of the Questionnaire item's code (needs the Questionnaire). */
  readonly itemCodes: readonly string[];
  /** Answer value keys (`valueString`, `valueDate`, ...); empty = any. */
  readonly answerTypes: readonly string[];
  /** `answer`: the answer values; `item`: the whole item with everything below it. */
  readonly target: 'answer' | 'item';
}

export type Selector = TypeSelector | PathSelector | QuestionnaireSelector;

/** One rule, in file order. */
export interface Rule {
  /** Position in the file (0-based); the lowest index that matches an element decides it. */
  readonly index: number;
  readonly name: string;
  readonly description?: string;
  readonly categories: readonly SafeHarborCategory[];
  readonly method: string;
  /** The method's own options, validated by its processor. */
  readonly options: unknown;
  readonly selector: Selector;
  /** Where the rule starts in the file. */
  readonly line: number;
  readonly column: number;
}

/** A finding of validation that does not stop loading (reported by `rules validate`). */
export interface RulesProblem {
  readonly code: string;
  readonly message: string;
  readonly line: number;
  readonly column: number;
  /** Path inside the YAML document (`rules[3].select.path`). */
  readonly path: string;
}

/** The compiled rules: deeply frozen. */
export interface CompiledRules {
  /** Where the text came from (a file path or a label). */
  readonly source: string;
  /** Short hash of the normalised rules (written into meta.tag). */
  readonly version: string;
  readonly profile: string;
  readonly description?: string;
  readonly settings: RulesSettings;
  readonly rules: readonly Rule[];
  /** Optional Questionnaire definitions named in the file are not loaded here; see createAnonymizer. */
  readonly warnings: readonly RulesProblem[];
}
