/**
 * FHIR date arithmetic on the wire format, without `Date` parsing of zones: shifting moves the
 * calendar date and leaves the time of day and the zone offset as written, so intervals within
 * one patient stay exact (to the day) and an instant stays a valid instant.
 * Spec: https://hl7.org/fhir/R4/datatypes.html#date (date, dateTime, instant).
 */

const DATE_PATTERN = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2}))?)?)?$/;

/** A parsed FHIR date/dateTime/instant. */
export interface FhirDate {
  readonly year: number;
  /** 1-12, absent for `YYYY`. */
  readonly month?: number;
  /** 1-31, absent for `YYYY` and `YYYY-MM`. */
  readonly day?: number;
  /** `hh:mm:ss`, absent without a time. */
  readonly time?: string;
  /** `.sss` as written. */
  readonly fraction?: string;
  /** `Z` or `+hh:mm`. */
  readonly zone?: string;
}

/**
 * Parses a FHIR date, dateTime or instant.
 * @param value - the wire value.
 * @returns the parts, or undefined when the value does not follow the format.
 */
export function parseFhirDate(value: string): FhirDate | undefined {
  const m = DATE_PATTERN.exec(value);
  if (!m) {
    return undefined;
  }
  const [, y, mo, d, time, fraction, zone] = m;
  const month = mo === undefined ? undefined : Number(mo);
  const day = d === undefined ? undefined : Number(d);
  if ((month !== undefined && (month < 1 || month > 12)) || (day !== undefined && (day < 1 || day > 31))) {
    return undefined;
  }
  return { year: Number(y), month, day, time, fraction, zone };
}

/**
 * Shifts a FHIR date value by whole days.
 * @param value - a date, dateTime or instant.
 * @param days - offset in days (may be negative).
 * @param keepTime - keep the time of day; false writes 00:00:00 (zone kept).
 * @param type - FHIR type of the element (`instant` must keep a full timestamp).
 * @returns the shifted value, or undefined when the value is not a valid date of that type.
 */
export function shiftDate(value: string, days: number, keepTime: boolean, type: string): string | undefined {
  const d = parseFhirDate(value);
  if (!d || (type === 'instant' && d.time === undefined) || (type === 'date' && d.time !== undefined)) {
    return undefined;
  }
  if (d.month === undefined) {
    return value; // a bare year carries no day to shift
  }
  // A year-month is shifted as its middle day, so it lands in the neighbouring month as often as a full date would.
  const shifted = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not map years 0-99 to 1900-1999.
  shifted.setUTCFullYear(d.year, d.month - 1, (d.day ?? 15) + days);
  const ymd = formatYmd(shifted.getUTCFullYear(), shifted.getUTCMonth() + 1, shifted.getUTCDate());
  if (d.day === undefined) {
    return ymd.slice(0, 7);
  }
  if (d.time === undefined) {
    return ymd;
  }
  const time = keepTime ? d.time + (d.fraction ?? '') : '00:00:00';
  return `${ymd}T${time}${d.zone ?? ''}`;
}

/**
 * Whole years between two dates (the age of someone born on `birth` at `at`). A partial birth
 * date counts from its earliest possible day, so the age is never underestimated.
 * @param birth - FHIR date.
 * @param at - FHIR date the age is computed at.
 * @returns age in years, or undefined when a value is not a date.
 */
export function ageInYears(birth: string, at: string): number | undefined {
  const b = parseFhirDate(birth);
  const a = parseFhirDate(at);
  if (!b || !a) {
    return undefined;
  }
  const bm = b.month ?? 1;
  const bd = b.day ?? 1;
  const am = a.month ?? 12;
  const ad = a.day ?? 31;
  let age = a.year - b.year;
  if (am < bm || (am === bm && ad < bd)) {
    age -= 1;
  }
  return age;
}

/**
 * The calendar date part (`YYYY-MM-DD`) of a FHIR date value, padding partial dates to their
 * last possible day (used as a reference date).
 * @param value - a date, dateTime or instant.
 * @returns the date, or undefined when the value is not a date.
 */
export function latestDay(value: string): string | undefined {
  const d = parseFhirDate(value);
  if (!d) {
    return undefined;
  }
  const month = d.month ?? 12;
  const last = new Date(0);
  last.setUTCFullYear(d.year, month, 0);
  const day = d.day ?? last.getUTCDate();
  return formatYmd(d.year, month, day);
}

function formatYmd(y: number, m: number, d: number): string {
  return `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

/**
 * Turns 32 random bits into a non-zero day offset in [-maxDays, -1] or [1, maxDays].
 * @param bits - unsigned 32-bit value (from the HMAC).
 * @param maxDays - the configured range.
 * @returns the offset in days.
 */
export function offsetFromBits(bits: number, maxDays: number): number {
  const k = bits % (2 * maxDays);
  return k < maxDays ? -(k + 1) : k - maxDays + 1;
}
