/**
 * `dateShift`: moves a date by the patient's offset: one offset per patient, derived from the
 * key and the patient's pseudonym, the same in every resource of that patient's compartment,
 * so intervals survive. The time of day is kept or zeroed (`keepTime`, default from settings);
 * an instant stays a full instant, a bare year is left as it is. A date that lies 90 or more
 * years before the resource's reference date reveals an age over 89 by its year alone: it becomes
 * the pooled year (`referenceYear - threshold`), an instant (which needs a full timestamp) goes.
 */
import { z } from 'zod';
import { DEID_ERR_INVALID_DATE } from '../../shared/errors/index.ts';
import { ageInYears } from '../engine/dates.ts';
import { REMOVE, SecurityLabel } from './types.ts';
import type { Processor } from './types.ts';
import { DATE_TYPES } from './accepted-types.ts';

const options = z.strictObject({ keepTime: z.boolean().optional() });
type DateShiftOptions = z.output<typeof options>;

export const dateShiftProcessor: Processor<DateShiftOptions> = {
  method: 'dateShift',
  options,
  scope: 'value',
  label: SecurityLabel.PSEUDED,
  accepts: (type) => DATE_TYPES.has(type),
  describeAccepted: () => [...DATE_TYPES].join(', '),
  apply(value, target, o, ctx) {
    const keepTime = o.keepTime ?? ctx.settings.dateShift.keepTime;
    const shifted = typeof value === 'string' ? ctx.shiftDate(value, target.type, keepTime) : undefined;
    if (shifted === undefined) {
      throw DEID_ERR_INVALID_DATE.createWith({ location: ctx.location() }, [ctx.location()]);
    }
    const ref = ctx.referenceDate();
    const threshold = ctx.settings.ages.threshold;
    if ((ageInYears(value as string, ref) ?? 0) >= threshold) {
      return target.type === 'instant' ? REMOVE : String(Number(ref.slice(0, 4)) - threshold).padStart(4, '0');
    }
    return shifted;
  },
};
