/**
 * `generalize`: keeps a coarser value.
 * - `to: zip3`: a US postal code becomes its first three digits, `000` for the prefixes with
 *   20,000 people or fewer (settings.zip3.restrictedPrefixes); anything else is removed.
 * - `to: year`: a date keeps its year; a year implying an age at or above the threshold (90)
 *   becomes `referenceYear - threshold` (the "90 or older" group), computed against the
 *   resource's own dates or the configured reference date, never the clock.
 * - `to: age`: an age at or above the threshold becomes the threshold (`>=` on a Quantity).
 * 45 CFR 164.514(b)(2)(i)(B), (C).
 */
import { z } from 'zod';
import { DEID_ERR_INVALID_DATE, DEID_ERR_INVALID_VALUE } from '../../shared/errors/index.ts';
import { ageInYears, parseFhirDate } from '../engine/dates.ts';
import { REMOVE, SecurityLabel } from './types.ts';
import type { ApplyContext, Processor, Target } from './types.ts';
import { AGE_TYPES } from './accepted-types.ts';

const options = z.strictObject({ to: z.enum(['zip3', 'year', 'age']) });
type GeneralizeOptions = z.output<typeof options>;

const SHORT_UNITS: ReadonlySet<string> = new Set(['mo', 'wk', 'd', 'h', 'min', 'months', 'weeks', 'days', 'hours']);
const US = new Set(['us', 'usa', 'united states', 'united states of america']);
const ZIP = /^\s*(\d{3})\d{2}(?:[-\s]?\d{4})?\s*$/;

export const generalizeProcessor: Processor<GeneralizeOptions> = {
  method: 'generalize',
  options,
  scope: 'value',
  label: SecurityLabel.ABSTRED,
  accepts(type, o) {
    return o.to === 'zip3'
      ? type === 'string'
      : o.to === 'year'
        ? type === 'date' || type === 'dateTime'
        : AGE_TYPES.has(type);
  },
  describeAccepted(o) {
    return o.to === 'zip3' ? 'string (postal codes)' : o.to === 'year' ? 'date, dateTime' : [...AGE_TYPES].join(', ');
  },
  apply(value, target, o, ctx) {
    switch (o.to) {
      case 'zip3':
        return zip3(value, target, ctx);
      case 'year':
        return year(value, ctx);
      case 'age':
        return age(value, target, ctx);
    }
  },
};

function zip3(value: unknown, target: Target, ctx: ApplyContext): unknown {
  const country = target.parent.country;
  if (typeof country === 'string' && !US.has(country.trim().toLowerCase())) {
    return REMOVE; // not a US ZIP: no rule says which prefixes are safe
  }
  const m = typeof value === 'string' ? ZIP.exec(value) : null;
  if (!m) {
    return REMOVE;
  }
  const prefix = m[1] as string;
  return ctx.settings.zip3.restrictedPrefixes.includes(prefix) ? '000' : prefix;
}

function year(value: unknown, ctx: ApplyContext): unknown {
  const d = typeof value === 'string' ? parseFhirDate(value) : undefined;
  if (!d || typeof value !== 'string') {
    throw DEID_ERR_INVALID_DATE.createWith({ location: ctx.location() }, [ctx.location()]);
  }
  const ref = ctx.referenceDate();
  const years = ageInYears(value, ref) as number;
  const threshold = ctx.settings.ages.threshold;
  const y = years >= threshold ? Number(ref.slice(0, 4)) - threshold : d.year;
  return String(y).padStart(4, '0');
}

function age(value: unknown, target: Target, ctx: ApplyContext): unknown {
  const threshold = ctx.settings.ages.threshold;
  if (typeof value === 'number') {
    return value >= threshold ? threshold : value;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw DEID_ERR_INVALID_VALUE.createWith({ location: ctx.location() }, [ctx.location(), 'an age']);
  }
  // Only the Quantity elements are carried over: an extension inside could hold anything.
  const q = value as { value?: unknown; comparator?: unknown; unit?: unknown; system?: unknown; code?: unknown };
  const out: Record<string, unknown> = {};
  const r = value as { low?: unknown; high?: unknown };
  if (r.low !== undefined || r.high !== undefined) {
    // A Range of ages: each end is a SimpleQuantity.
    const range: Record<string, unknown> = {};
    for (const k of ['low', 'high'] as const) {
      if (r[k] !== undefined) {
        range[k] = age(r[k], { ...target, type: 'SimpleQuantity' }, ctx);
      }
    }
    return range;
  }
  const unit = typeof q.code === 'string' ? q.code : q.unit;
  // Ages in months, weeks or days of 90 or more are still children.
  const over =
    typeof q.value === 'number' && q.value >= threshold && !(typeof unit === 'string' && SHORT_UNITS.has(unit));
  if (typeof q.value === 'number') {
    out.value = over ? threshold : q.value;
  }
  if (over) {
    // A SimpleQuantity (Range.low/high) has no comparator: the pooled value alone says 90+.
    if (target.type !== 'SimpleQuantity') {
      out.comparator = '>=';
    }
  } else if (typeof q.comparator === 'string') {
    out.comparator = q.comparator;
  }
  for (const k of ['unit', 'system', 'code'] as const) {
    if (typeof q[k] === 'string') {
      out[k] = q[k];
    }
  }
  return out;
}
