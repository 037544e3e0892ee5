/**
 * `keep`: the element and everything below it that no earlier rule decides stays as it is.
 * It still walks the subtree (unknown elements are refused, nested resources get their own rules).
 */
import { z } from 'zod';
import type { Processor } from './types.ts';

export const keepProcessor: Processor<Record<string, never>> = {
  method: 'keep',
  options: z.strictObject({}),
  scope: 'subtree',
  accepts: () => true,
  describeAccepted: () => 'any element',
  apply: (value) => value,
};
