/**
 * `dateShift`: moves a date by the patient's offset: one offset per patient, derived from the
 * key and the patient's pseudonym, the same in every resource of that patient's compartment,
 * so intervals survive. The time of day is kept or zeroed (`keepTime`, default from settings);
 * an instant stays a full instant, a bare year is left as it is.
 */
import { z } from 'zod';
import { DEID_ERR_INVALID_DATE } from '../../shared/errors/index.ts';
import { SecurityLabel } from './types.ts';
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
    return shifted;
  },
};
