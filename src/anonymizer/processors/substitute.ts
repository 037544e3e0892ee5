/**
 * `substitute`: replaces the element by a fixed value from the rules file (a text, number or
 * boolean for a primitive; an object for a complex type).
 */
import { z } from 'zod';
import { PRIMITIVE_TYPES } from '../fhir/schema.ts';
import { SecurityLabel } from './types.ts';
import type { Processor } from './types.ts';

const options = z.strictObject({
  value: z.union([z.string().min(1), z.number(), z.boolean(), z.record(z.string(), z.unknown())]),
});
type SubstituteOptions = z.output<typeof options>;

export const substituteProcessor: Processor<SubstituteOptions> = {
  method: 'substitute',
  options,
  scope: 'value',
  label: SecurityLabel.REDACTED,
  accepts: (type, o) => (PRIMITIVE_TYPES.has(type) ? typeof o.value !== 'object' : typeof o.value === 'object'),
  describeAccepted: (o) =>
    typeof o.value === 'object'
      ? 'complex types (the value is an object)'
      : 'primitive types (the value is not an object)',
  apply: (_value, _target, o) => (typeof o.value === 'object' ? structuredClone(o.value) : o.value),
};
