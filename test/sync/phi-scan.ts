/**
 * Helpers of the PHI leak test: the needle list (identifying strings of the input Patients),
 * a scanner that looks for them in every output the service produced, and a dump of every
 * Redis key and value under a prefix.
 *
 * Needle threshold: a needle must have at least 4 characters, and a needle made only of
 * digits at least 5 (a 5-digit ZIP code). Shorter strings ('MA', 'Mr.', '1') would match by
 * chance in any JSON and prove nothing. State and country are not needles (Safe Harbor keeps
 * them).
 */
import type { Address, Bundle, ContactPoint, Extension, HumanName, Patient } from '@medplum/fhirtypes';
import type { Redis } from 'ioredis';

/** Minimum length of a needle; digits-only needles need {@link MIN_DIGITS_NEEDLE}. */
export const MIN_NEEDLE = 4;
/** Minimum length of a needle made only of digits. */
export const MIN_DIGITS_NEEDLE = 5;

/** One identifying string and where it came from (for the failure message). */
export interface Needle {
  readonly value: string;
  readonly origin: string;
}

/** One block of collected output, named for the failure message. */
export interface Section {
  readonly name: string;
  readonly text: string;
}

/** A needle found in a section. */
export interface Hit {
  readonly needle: Needle;
  readonly section: string;
  readonly excerpt: string;
}

function keep(value: string | undefined): value is string {
  if (value === undefined) {
    return false;
  }
  const v = value.trim();
  return /^\d+$/.test(v) ? v.length >= MIN_DIGITS_NEEDLE : v.length >= MIN_NEEDLE;
}

class NeedleSet {
  readonly #byValue = new Map<string, Needle>();

  add(value: string | undefined, origin: string): void {
    if (!keep(value)) {
      return;
    }
    const v = value.trim();
    const seen = this.#byValue.get(v.toLowerCase());
    this.#byValue.set(v.toLowerCase(), { value: v, origin: seen === undefined ? origin : `${seen.origin}; ${origin}` });
  }

  /** A name part: as written, without digits (Synthea's "Luigi346"), and word by word. */
  addName(value: string | undefined, origin: string): void {
    if (value === undefined) {
      return;
    }
    this.add(value, origin);
    const noDigits = value.replace(/\d+/g, '').trim();
    this.add(noDigits, `${origin} (digits stripped)`);
    noDigits.split(/\s+/).forEach((w) => this.add(w, `${origin} (word)`));
  }

  /** A phone number: as written and, when it has 10+ digits, as bare digits. */
  addPhone(value: string | undefined, origin: string): void {
    this.add(value, origin);
    const digits = (value ?? '').replace(/\D/g, '');
    if (digits.length >= 10) {
      this.add(digits, `${origin} (digits only)`);
    }
  }

  values(): Needle[] {
    return [...this.#byValue.values()];
  }
}

function addHumanName(set: NeedleSet, n: HumanName, at: string): void {
  set.addName(n.text, `${at}.text`);
  set.addName(n.family, `${at}.family`);
  (n.given ?? []).forEach((g) => set.addName(g, `${at}.given`));
  (n.prefix ?? []).forEach((g) => set.addName(g, `${at}.prefix`));
  (n.suffix ?? []).forEach((g) => set.addName(g, `${at}.suffix`));
}

function addAddress(set: NeedleSet, a: Address, at: string): void {
  (a.line ?? []).forEach((l) => set.add(l, `${at}.line`));
  set.add(a.text, `${at}.text`);
  set.addName(a.city, `${at}.city`);
  set.add(a.district, `${at}.district`);
  set.add(a.postalCode, `${at}.postalCode`);
}

function addTelecom(set: NeedleSet, t: ContactPoint, at: string): void {
  if (t.system === 'phone' || t.system === 'fax' || t.system === 'sms') {
    set.addPhone(t.value, `${at}.${t.system}`);
  } else {
    set.add(t.value, `${at}.${t.system ?? 'value'}`);
  }
}

function addExtensions(set: NeedleSet, exts: readonly Extension[] | undefined, at: string): void {
  for (const e of exts ?? []) {
    if (e.valueString !== undefined) {
      set.addName(e.valueString, `${at}[${e.url}].valueString`);
    }
    if (e.valueAddress !== undefined) {
      addAddress(set, e.valueAddress, `${at}[${e.url}].valueAddress`);
    }
    if (e.valueHumanName !== undefined) {
      addHumanName(set, e.valueHumanName, `${at}[${e.url}].valueHumanName`);
    }
    addExtensions(set, e.extension, `${at}[${e.url}]`);
  }
}

/** Extension strings that are codes or category labels, not PHI (race/ethnicity text). */
const NOT_PHI_EXTENSIONS = /us-core-(race|ethnicity)/;

/**
 * The identifying strings of a Patient: names (given, family, prefix, suffix, with and without
 * digits), identifier values (MRN, SSN, driver's licence, passport), telecom, address lines,
 * cities, postal codes, full birth and death dates, extension strings (mother's maiden name,
 * birth place), contacts' names, telecom and addresses.
 * @param patient - a Patient.
 * @param into - the set to add to.
 */
function addPatient(set: NeedleSet, patient: Patient): void {
  const at = `Patient/${patient.id ?? '?'}`;
  (patient.name ?? []).forEach((n) => addHumanName(set, n, `${at}.name`));
  (patient.identifier ?? []).forEach((i) =>
    set.add(i.value, `${at}.identifier[${i.type?.coding?.[0]?.code ?? i.system ?? '?'}]`),
  );
  (patient.telecom ?? []).forEach((t) => addTelecom(set, t, `${at}.telecom`));
  (patient.address ?? []).forEach((a) => addAddress(set, a, `${at}.address`));
  set.add(patient.birthDate, `${at}.birthDate`);
  set.add(patient.deceasedDateTime?.slice(0, 10), `${at}.deceasedDateTime`);
  addExtensions(
    set,
    (patient.extension ?? []).filter((e) => !NOT_PHI_EXTENSIONS.test(e.url)),
    `${at}.extension`,
  );
  for (const c of patient.contact ?? []) {
    if (c.name) {
      addHumanName(set, c.name, `${at}.contact.name`);
    }
    (c.telecom ?? []).forEach((t) => addTelecom(set, t, `${at}.contact.telecom`));
    if (c.address) {
      addAddress(set, c.address, `${at}.contact.address`);
    }
  }
}

/**
 * The needles of some input bundles plus extra strings (local resource ids).
 * @param bundles - the input bundles; their Patients give the PHI needles, their entries'
 *   original ids and fullUrls give id needles.
 * @param extraIds - further strings that must not leave (e.g. server-assigned local ids).
 * @returns distinct needles (case-insensitive), each with its origin.
 */
export function needlesOf(bundles: readonly Bundle[], extraIds: readonly { id: string; origin: string }[]): Needle[] {
  const set = new NeedleSet();
  for (const b of bundles) {
    for (const e of b.entry ?? []) {
      const r = e.resource;
      if (r?.resourceType === 'Patient') {
        addPatient(set, r);
      }
      if (r?.id !== undefined) {
        set.add(r.id, `bundle ${r.resourceType}.id`);
      }
      set.add(e.fullUrl?.replace(/^urn:uuid:/, ''), `bundle ${r?.resourceType ?? '?'} fullUrl`);
    }
  }
  extraIds.forEach((x) => set.add(x.id, x.origin));
  return set.values();
}

/** The forms a needle can take in collected text: as is, JSON-escaped, URL-encoded. */
function formsOf(needle: string): string[] {
  const forms = new Set([needle, JSON.stringify(needle).slice(1, -1), encodeURIComponent(needle)]);
  forms.add(encodeURIComponent(needle).replace(/%20/g, '+'));
  return [...forms].map((f) => f.toLowerCase());
}

/**
 * First place of a needle in a text. A needle of digits only must stand alone: a postal code
 * inside a longer number or a hex string (a millisecond timestamp in a log line, a random
 * UUID) is not that postal code.
 * @param hay - the text (lower case).
 * @param needle - one form of the needle (lower case).
 * @returns the index, or -1.
 */
function findNeedle(hay: string, needle: string): number {
  const digits = /^\d+$/.test(needle);
  for (let at = hay.indexOf(needle); at >= 0; at = hay.indexOf(needle, at + 1)) {
    if (!digits || (!/[a-z0-9]/.test(hay[at - 1] ?? '') && !/[a-z0-9]/.test(hay[at + needle.length] ?? ''))) {
      return at;
    }
  }
  return -1;
}

/**
 * Every occurrence (first per needle and section) of any needle, case-insensitive, in any of
 * its forms.
 * @param sections - the collected outputs.
 * @param needles - what must not appear.
 * @returns the hits (empty = clean).
 */
export function scan(sections: readonly Section[], needles: readonly Needle[]): Hit[] {
  const hits: Hit[] = [];
  const compiled = needles.map((n) => ({ needle: n, forms: formsOf(n.value) }));
  for (const s of sections) {
    const hay = s.text.toLowerCase();
    for (const { needle, forms } of compiled) {
      for (const f of forms) {
        const at = findNeedle(hay, f);
        if (at >= 0) {
          hits.push({
            needle,
            section: s.name,
            excerpt: s.text.slice(Math.max(0, at - 80), at + f.length + 80),
          });
          break;
        }
      }
    }
  }
  return hits;
}

/**
 * Every key under a prefix with its type and full value (strings, hashes, lists, sets,
 * sorted sets with scores, streams).
 * @param redis - a connection.
 * @param prefix - the key prefix (without `*`).
 * @returns one section per key; the key name is part of the text, so it is scanned too.
 */
export async function dumpRedis(redis: Redis, prefix: string): Promise<Section[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  const out: Section[] = [];
  for (const key of [...new Set(keys)].sort()) {
    const type = await redis.type(key);
    let value: unknown;
    switch (type) {
      case 'string':
        value = await redis.get(key);
        break;
      case 'hash':
        value = await redis.hgetall(key);
        break;
      case 'list':
        value = await redis.lrange(key, 0, -1);
        break;
      case 'set':
        value = await redis.smembers(key);
        break;
      case 'zset':
        value = await redis.zrange(key, '0', '-1', 'WITHSCORES');
        break;
      case 'stream':
        value = await redis.xrange(key, '-', '+');
        break;
      default:
        value = `(type ${type})`;
    }
    out.push({ name: `redis ${type} ${key}`, text: `${key}\n${JSON.stringify(value)}` });
  }
  return out;
}
