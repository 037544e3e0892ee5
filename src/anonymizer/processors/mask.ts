/**
 * `mask`: replaces the characters of a text value by a mask character, optionally keeping a
 * few at either end (`555-***-**68`). The length stays, so formats remain recognisable.
 */
import { z } from 'zod';
import { SecurityLabel } from './types.ts';
import type { Processor } from './types.ts';
import { TEXT_TYPES } from './accepted-types.ts';

const options = z.strictObject({
  keepFirst: z.number().int().min(0).max(64).default(0),
  keepLast: z.number().int().min(0).max(64).default(0),
  char: z.string().length(1).default('*'),
});
type MaskOptions = z.output<typeof options>;

export const maskProcessor: Processor<MaskOptions> = {
  method: 'mask',
  options,
  scope: 'value',
  label: SecurityLabel.MASKED,
  accepts: (type) => TEXT_TYPES.has(type),
  describeAccepted: () => [...TEXT_TYPES].join(', '),
  apply(value, _target, o) {
    const chars = [...String(value)];
    // A value too short to keep its ends and still hide something is masked whole.
    const reveal = o.keepFirst + o.keepLast < chars.length;
    const first = reveal ? o.keepFirst : 0;
    const last = reveal ? o.keepLast : 0;
    return chars.map((c, i) => (i < first || i >= chars.length - last ? c : o.char)).join('');
  },
};
