/**
 * Free-text scrubbing. Two sources of patterns:
 * - the record's own PHI: names, identifier values, phone numbers, e-mail addresses, address
 *   parts and birth dates of the person resources (Patient, RelatedPerson, Person,
 *   Practitioner) of the same input, including Bundle entries and contained resources;
 * - patterns that are PHI in any record: dates, e-mail addresses, US phone and social security
 *   numbers, URLs, and ages of 90 or more.
 * Matching is case-insensitive on whole words (Unicode letters and digits), longest term first.
 */

/** Resource types whose demographics feed the dictionary. */
const PERSON_TYPES: ReadonlySet<string> = new Set(['Patient', 'RelatedPerson', 'Person', 'Practitioner']);

const GENERIC = new RegExp(
  [
    // e-mail. The lookbehind lets a local part start only where its run of characters starts:
    // without it every position inside a long run rescans the run to its end (quadratic; a
    // 80,000-character token took 5 s). Matches are the same, since a match found from inside a
    // run is also found, leftmost, from the run's start.
    String.raw`(?<![\p{L}\p{N}._%+-])[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)+`,
    String.raw`\bhttps?:\/\/[^\s<>"']+`, // URL
    String.raw`\b\d{3}-\d{2}-\d{4}\b`, // SSN
    String.raw`(?:\+?1[\s.-]?)?\(?\b\d{3}\)?[\s.-]?\d{3}[\s.-]\d{4}\b`, // US phone
    String.raw`\b\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b`, // ISO date
    String.raw`\b\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b`, // numeric date
    String.raw`\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}\b`, // Month D, YYYY
    String.raw`\b\d{1,2}\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?,?\s+\d{4}\b`, // D Month YYYY
    String.raw`\b(?:9\d|1[0-4]\d)(?=[\s-]*(?:years?|yrs?|y\/o|yo)\b)`, // ages of 90 or more
  ].join('|'),
  'giu',
);

const MAY_MATCH_GENERIC = /[\d@]|https?:/;

/** The dictionary of one input. */
export interface PhiDictionary {
  /** Matches any term; undefined when no term was found. */
  readonly pattern: RegExp | undefined;
  /** Number of distinct terms (for tests). */
  readonly size: number;
}

/**
 * Collects the PHI terms of the person resources in `resources` (recursing into Bundle entries
 * and contained resources).
 * @param resources - the input and any related resources.
 * @param minLength - shorter name and address terms are ignored.
 * @returns the dictionary.
 */
export function collectPhi(resources: readonly unknown[], minLength: number): PhiDictionary {
  const terms = new Set<string>();
  const phones = new Set<string>();
  const visit = (r: unknown): void => {
    if (typeof r !== 'object' || r === null) {
      return;
    }
    const res = r as Record<string, unknown>;
    for (const e of asArray(res.entry)) {
      visit((e as { resource?: unknown } | null)?.resource);
    }
    asArray(res.contained).forEach(visit);
    if (typeof res.resourceType === 'string' && PERSON_TYPES.has(res.resourceType)) {
      personTerms(res, minLength, terms, phones);
    }
  };
  resources.forEach(visit);
  const alternatives = [...terms].sort((a, b) => b.length - a.length || (a < b ? -1 : 1)).map(escapeRegExp);
  for (const digits of [...phones].sort()) {
    alternatives.push(digits.split('').join(String.raw`[\s().+-]{0,2}`));
  }
  const pattern =
    alternatives.length === 0
      ? undefined
      : new RegExp(String.raw`(?<![\p{L}\p{N}])(?:${alternatives.join('|')})(?![\p{L}\p{N}])`, 'giu');
  return { pattern, size: alternatives.length };
}

function personTerms(res: Record<string, unknown>, minLength: number, terms: Set<string>, phones: Set<string>): void {
  const word = (s: unknown): void => {
    if (typeof s !== 'string') {
      return;
    }
    for (const token of s.split(/[\s,]+/)) {
      const t = token.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '');
      if (t.length >= minLength) {
        terms.add(t);
      }
    }
  };
  const whole = (s: unknown): void => {
    if (typeof s === 'string' && s.trim().length >= minLength) {
      terms.add(s.trim());
    }
  };
  const parties = [res, ...asArray(res.contact)] as Record<string, unknown>[];
  for (const p of parties) {
    for (const n of [...asArray(p.name)] as Record<string, unknown>[]) {
      word(n?.family);
      word(n?.text);
      asArray(n?.given).forEach(word);
    }
    for (const c of asArray(p.telecom) as Record<string, unknown>[]) {
      const v = c?.value;
      if (typeof v === 'string') {
        const digits = v.replace(/\D/g, '');
        if (c.system !== 'email' && digits.length >= 7) {
          phones.add(digits);
        } else {
          whole(v);
        }
      }
    }
    for (const a of asArray(p.address) as Record<string, unknown>[]) {
      asArray(a?.line).forEach(whole);
      whole(a?.city);
      whole(a?.district);
      whole(a?.text);
      const zip = typeof a?.postalCode === 'string' ? a.postalCode.trim() : '';
      whole(zip);
      whole(/^\d{5}-\d{4}$/.test(zip) ? zip.slice(0, 5) : undefined);
    }
  }
  for (const id of asArray(res.identifier) as Record<string, unknown>[]) {
    whole(id?.value);
  }
  for (const ext of asArray(res.extension) as Record<string, unknown>[]) {
    word(ext?.valueString);
    whole((ext?.valueAddress as Record<string, unknown> | undefined)?.city);
  }
  birthDateTerms(res.birthDate, terms);
}

/** A birth date as written in notes: ISO, M/D/YYYY, MM/DD/YYYY, D/M/YYYY. */
function birthDateTerms(value: unknown, terms: Set<string>): void {
  if (typeof value !== 'string') {
    return;
  }
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  terms.add(value);
  if (m) {
    const [, y, mo, d] = m as unknown as [string, string, string, string];
    const [mi, di] = [String(Number(mo)), String(Number(d))];
    for (const t of [`${mo}/${d}/${y}`, `${mi}/${di}/${y}`, `${d}/${mo}/${y}`, `${di}/${mi}/${y}`]) {
      terms.add(t);
    }
  }
}

/**
 * Scrubs a text: the generic patterns, then the dictionary.
 * @param text - free text.
 * @param dictionary - the input's PHI.
 * @param replacement - what replaces each hit.
 * @returns the scrubbed text.
 */
export function scrubText(text: string, dictionary: PhiDictionary, replacement: string): string {
  let out = text;
  // Generic patterns first: a name inside an e-mail address must not leave the rest of it behind.
  // Each needs a digit, an @ or a URL scheme, which most texts (code labels) lack.
  if (MAY_MATCH_GENERIC.test(out)) {
    GENERIC.lastIndex = 0;
    out = out.replace(GENERIC, replacement);
  }
  if (dictionary.pattern) {
    dictionary.pattern.lastIndex = 0;
    out = out.replace(dictionary.pattern, replacement);
  }
  return out;
}

function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? (v as unknown[]) : v === undefined || v === null ? [] : [v];
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
