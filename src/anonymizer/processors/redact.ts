/**
 * `redact`: the element stays but is emptied. FHIR has no empty values, so the value is
 * replaced by the data-absent-reason extension with code `masked` (on a primitive it goes
 * into the `_element` companion): the receiver sees that something was withheld.
 * https://hl7.org/fhir/R4/extension-data-absent-reason.html
 */
import { z } from 'zod';
import { REDACT, SecurityLabel } from './types.ts';
import type { Processor } from './types.ts';

/** The data-absent-reason extension written in place of a redacted value. */
export const DATA_ABSENT_MASKED = Object.freeze({
  url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason',
  valueCode: 'masked',
});

export const redactProcessor: Processor<Record<string, never>> = {
  method: 'redact',
  options: z.strictObject({}),
  scope: 'subtree',
  label: SecurityLabel.REDACTED,
  accepts: () => true,
  describeAccepted: () => 'any element',
  apply: () => REDACT,
};
