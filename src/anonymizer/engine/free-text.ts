/**
 * Free-text scrubbing. Two sources of patterns:
 * - the record's own PHI: names, identifier values, phone numbers, e-mail addresses, address
 *   parts and birth dates of the person resources (Patient, RelatedPerson, Person,
 *   Practitioner) of the same input, including Bundle entries and contained resources;
 * - patterns that are PHI in any record: dates, e-mail addresses, US phone and social security
 *   numbers, URLs, and ages of 90 or more.
 * Matching is case-insensitive on whole words (Unicode letters and digits), longest term first.
 */

/** Titles and roles that name nobody; a name's prefix must not redact every "Mrs" or "Nurse". */
const TITLES: ReadonlySet<string> = new Set([
  'mr',
  'mrs',
  'ms',
  'miss',
  'mx',
  'dr',
  'prof',
  'sir',
  'dame',
  'lady',
  'lord',
  'rev',
  'fr',
  'sr',
  'jr',
  'nurse',
  'doctor',
  'professor',
  'master',
  'madam',
  'the',
  'and',
  'von',
  'van',
  'der',
  'del',
  'de',
  'la',
]);

/** Letters without their accents (NFD, marks dropped). */
function foldAccents(s: string): string {
  return s.normalize('NFD').replace(/\p{M}+/gu, '');
}

/** Character references that stand for letters and digits (&#77;, &#x4D;, &euml;) become the character. */
function decodeLetterEntities(s: string): string {
  return s.replace(
    /&(?:#(\d{1,7})|#x([0-9a-f]{1,6})|([a-z]{1,8}));/gi,
    (m, dec?: string, hex?: string, name?: string) => {
      if (name !== undefined) {
        const named = NAMED_LETTERS[name];
        return named ?? (name.toLowerCase() === 'nbsp' ? ' ' : m);
      }
      const code = dec !== undefined ? Number(dec) : parseInt(hex as string, 16);
      const c = code <= 0x10ffff ? String.fromCodePoint(code) : '';
      return /^[\p{L}\p{N}\s]$/u.test(c) ? c : m;
    },
  );
}

const NAMED_LETTERS: Readonly<Record<string, string>> = (() => {
  const out: Record<string, string> = {};
  const marks: Record<string, string> = {
    acute: '\u0301',
    grave: '\u0300',
    uml: '\u0308',
    circ: '\u0302',
    tilde: '\u0303',
    ring: '\u030a',
    cedil: '\u0327',
  };
  for (const base of 'aeiouycnAEIOUYCN') {
    for (const [name, mark] of Object.entries(marks)) {
      const c = (base + mark).normalize('NFC');
      if (c.length === 1) {
        out[base + name] = c;
      }
    }
  }
  return Object.assign(out, { szlig: 'ß', oslash: 'ø', Oslash: 'Ø', aelig: 'æ', AElig: 'Æ' });
})();

/** Resource types whose demographics feed the dictionary. */
const PERSON_TYPES: ReadonlySet<string> = new Set(['Patient', 'RelatedPerson', 'Person', 'Practitioner']);

// Every alternative is linear: runs that could be rescanned from each inner position start only
// where the run starts (lookbehind), and no quantifier nests another.
const GENERIC = new RegExp(
  [
    // e-mail. The lookbehind lets a local part start only where its run of characters starts:
    // without it every position inside a long run rescans the run to its end (quadratic; a
    // 80,000-character token took 5 s). Matches are the same, since a match found from inside a
    // run is also found, leftmost, from the run's start.
    String.raw`(?<![\p{L}\p{N}._%+-])[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)+`,
    String.raw`\b(?:https?|ftp|mailto|file):\/{0,2}[^\s<>"']+`, // URL with a scheme
    String.raw`(?<![\p{L}\p{N}.-])www\.[^\s<>"']+`, // URL without scheme
    // host names with a common top-level domain, with or without a path
    String.raw`(?<![\p{L}\p{N}.-])[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63}){0,6}\.(?:com|org|net|edu|gov|info|biz|io|co\.uk|org\.uk|de|fr|nl|au|ca)\b(?:\/[^\s<>"']*)?`,
    String.raw`(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]*\d)`, // IPv4
    String.raw`(?<![\p{L}\p{N}:])(?:(?:[0-9a-f]{1,4}:){4,7}[0-9a-f]{1,4}|(?:[0-9a-f]{1,4}:){1,6}:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,5})(?![\p{L}\p{N}:])`, // IPv6
    String.raw`\(01\)\d{14}(?:\(\d{2,4}\)[^\s(]+)*`, // GS1 UDI
    // identifiers named by a keyword: account, policy, member, licence, plate, serial numbers
    // (the keyword is captured and kept; a lookbehind here cost 8x the rest of the patterns)
    String.raw`(\b(?:acct|account|a\/c|policy|member|subscriber|licen[cs]e|certificate|serial|plate|registration|reg|mrn|chart|badge|passport)\.?(?:\s{0,3}(?:no\.?|number|nr\.?|num|id|#))?\s{0,3}[:#]?\s{0,3})(?=[a-z-]{0,15}\d)[a-z0-9][a-z0-9-]{2,15}(?:[ -][a-z0-9]{2,5})?\b`,
    // VIN: 17 letters and digits (no I, O, Q) with both kinds
    String.raw`(?<![\p{L}\p{N}])(?=[a-hj-npr-z]*\d)(?=\d*[a-hj-npr-z])[a-hj-npr-z0-9]{17}(?![\p{L}\p{N}])`,
    String.raw`(?<![\d.,/-])\d{3}[- ]\d{2}[- ]\d{4}(?![\d-])`, // SSN
    String.raw`(?<![\d.,])\d{7,}(?![.,]?\d)`, // long numbers: SSN, MRN, account, compact dates (20240229)
    String.raw`(?:\+?1[\s.-]?)?\(?\b\d{3}\)?[\s.-]?\d{3}[\s.-]\d{4}\b`, // US phone
    // international and national phone numbers: +CC ..., or a leading 0 trunk prefix
    String.raw`(?<![\p{L}\p{N}+])\+\d{1,3}[\s.-]?\(?\d{1,5}\)?[\s.-]?\d{2,5}(?:[\s.-]?\d{2,5}){0,3}(?![\p{L}\p{N}])`,
    String.raw`(?<![\d.,])\(?0\d{2,4}\)?[\s-]\d{3,4}[\s-]?\d{3,4}(?![\d.,]?\d)`,
    String.raw`\b\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b`, // ISO date
    String.raw`(?<![\d.,/])\d{4}\/\d{1,2}\/\d{1,2}(?![\d/])`, // 2024/03/05
    // numeric dates with one separator throughout; 0.12/0.015 (a strength) is not one
    String.raw`(?<![\d.,/])(?:\d{1,2}\/\d{1,2}\/\d{2,4}|\d{1,2}\.\d{1,2}\.\d{2,4}|\d{1,2}-\d{1,2}-\d{2,4})(?![\d/]|[.,]\d)`,
    String.raw`\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}\b`, // Month D, YYYY
    String.raw`\b\d{1,2}\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?,?\s+\d{4}\b`, // D Month YYYY
    // ages of 90 or more: "94 years", "94-year-old", "94 y.o.", "94yo", "aged 94", "age: 94"
    String.raw`\b(?:9\d|1[0-4]\d)(?=[\s-]*(?:years?|yrs?|y\.?\s?o\.?|yo|y\/o)(?![\p{L}]))`,
    String.raw`(\bage(?:d|\s{0,3}:)?\s{1,3})(?:9\d|1[0-4]\d)\b`,
  ].join('|'),
  'giu',
);

const MAY_MATCH_GENERIC = /[\d@]|https?:|mailto:|www\.|\.(?:com|org|net|edu|gov|info|biz|io|uk|de|fr|nl|au|ca)\b/i;

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
  const add = (t: string): void => {
    if (t.length >= minLength && !TITLES.has(t.toLowerCase())) {
      terms.add(t);
      const folded = foldAccents(t);
      if (folded !== t) {
        terms.add(folded); // notes often drop the accents: Zoë, Zoe
      }
    }
  };
  const word = (s: unknown): void => {
    if (typeof s !== 'string') {
      return;
    }
    for (const token of s.split(/[\s,]+/)) {
      const t = token.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '');
      add(t);
      // Each part of a double-barrelled name is used alone too (Mrs Whitfield).
      if (/[-\u2010\u2011']/.test(t)) {
        t.split(/[-\u2010\u2011']+/).forEach(add);
      }
    }
  };
  const whole = (s: unknown): void => {
    if (typeof s === 'string') {
      add(s.trim());
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
  // Entities for letters would split a name into pieces no pattern knows (M&#97;rgarethe).
  let out = text.includes('&') ? decodeLetterEntities(text) : text;
  // Generic patterns first: a name inside an e-mail address must not leave the rest of it behind.
  // Each needs a digit, an @ or a URL scheme, which most texts (code labels) lack.
  if (MAY_MATCH_GENERIC.test(out)) {
    GENERIC.lastIndex = 0;
    // Groups 1 and 2 are the keywords before an identifier or an age ("Account no.", "aged"): kept.
    out = out.replace(GENERIC, (_m, keyword?: string, aged?: string) => (keyword ?? aged ?? '') + replacement);
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
