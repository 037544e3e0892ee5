/**
 * `remove`: the element is dropped with everything below it (parts that an earlier rule
 * decides stay, e.g. `Address.state` kept before `Address` removed).
 */
import { z } from 'zod';
import { REMOVE, SecurityLabel } from './types.ts';
import type { Processor } from './types.ts';

export const removeProcessor: Processor<Record<string, never>> = {
  method: 'remove',
  options: z.strictObject({}),
  scope: 'subtree',
  label: SecurityLabel.REDACTED,
  accepts: () => true,
  describeAccepted: () => 'any element',
  apply: () => REMOVE,
};
