/**
 * Coverage: which PHI-capable elements of which resource types no rule decides, grouped by
 * Safe Harbor category. An element is PHI-capable by its FHIR type (HumanName, Address,
 * ContactPoint, Identifier, dates, Attachment, Reference, free text, ...) or by a known
 * position (Device serial numbers, Location.position, AuditEvent network address, meta.source).
 * The element tree comes from the R4 StructureDefinitions (via the plan graph, so the answer is
 * exactly what the engine would do): elements below a decided element are covered; elements
 * only conditional rules (`where`, linkId) reach are listed as `conditional`.
 *
 * Extensions can hold any data type; they are checked once per resource type, by value type
 * (`Patient.extension.value[x]:HumanName`), since data-type rules reach into them everywhere.
 *
 * "Covered" must mean safe, so two more lists (issue 12): `kept`, PHI-capable elements a `keep`
 * rule passes through as they are (except in the admin types the settings exempt), and
 * `scrubOnly`, elements that hold a structured identifier (a name part, a phone, a URL) that
 * only the free-text scrubber guards. uri/url/oid/uuid/id, base64Binary and whole-number
 * value[x] elements count as PHI-capable: they carry e-mail links, DICOM UIDs, photos and ages.
 */
import { fhirSchema } from './fhir/schema.ts';
import { NO_RULE, createPlanGraph, planEdges } from './plan/graph.ts';
import type { PlanNode } from './plan/graph.ts';
import { buildPredicates } from './plan/predicates.ts';
import type { CompiledRules, SafeHarborCategory } from './rules/types.ts';

/** The 18 identifiers of 45 CFR 164.514(b)(2)(i)(A)-(R). */
export const SAFE_HARBOR_CATEGORIES: Readonly<Record<SafeHarborCategory, string>> = {
  A: 'Names',
  B: 'Geographic subdivisions smaller than a state',
  C: 'Dates (except year) related to an individual; ages over 89',
  D: 'Telephone numbers',
  E: 'Fax numbers',
  F: 'Email addresses',
  G: 'Social security numbers',
  H: 'Medical record numbers',
  I: 'Health plan beneficiary numbers',
  J: 'Account numbers',
  K: 'Certificate/license numbers',
  L: 'Vehicle identifiers and serial numbers',
  M: 'Device identifiers and serial numbers',
  N: 'Web URLs',
  O: 'IP addresses',
  P: 'Biometric identifiers',
  Q: 'Full-face photographs and comparable images',
  R: 'Any other unique identifying number, characteristic, or code',
};

/** One PHI-capable element no rule decides. */
export interface CoverageEntry {
  /** Element path (`Patient.contact.name`, `Patient.extension.value[x]:HumanName`). */
  readonly path: string;
  readonly type: string;
  readonly categories: readonly SafeHarborCategory[];
  /**
   * `uncovered`: no rule; `conditional`: only rules with run-time conditions reach it; `kept`: a
   * keep rule passes it; `scrubOnly`: only the free-text scrubber guards a structured identifier.
   */
  readonly status: 'uncovered' | 'conditional' | 'kept' | 'scrubOnly';
  /** The deciding rule (kept, scrubOnly). */
  readonly rule?: string;
}

type ByTypeAndCategory = Readonly<Record<string, Readonly<Partial<Record<SafeHarborCategory, readonly string[]>>>>>;

/** The coverage of a rules file. */
export interface CoverageReport {
  readonly profile: string;
  readonly rulesVersion: string;
  /** In allow-list mode every undecided element is dropped, so nothing is uncovered. */
  readonly allowListMode: boolean;
  readonly resourceTypes: number;
  /** Resource type -> category -> element paths no rule covers. */
  readonly uncovered: Readonly<Record<string, Readonly<Partial<Record<SafeHarborCategory, readonly string[]>>>>>;
  /** Same shape, for elements only conditional rules reach. */
  readonly conditional: ByTypeAndCategory;
  /** Same shape, `path (rule)`: PHI-capable elements a keep rule passes as they are. */
  readonly kept: ByTypeAndCategory;
  /** Same shape, `path (rule)`: structured identifiers only the free-text scrubber guards. */
  readonly scrubOnly: ByTypeAndCategory;
  readonly totals: {
    readonly uncovered: number;
    readonly conditional: number;
    readonly kept: number;
    readonly scrubOnly: number;
    readonly byCategory: Readonly<Partial<Record<SafeHarborCategory, number>>>;
  };
}

const BY_TYPE: Readonly<Record<string, readonly SafeHarborCategory[]>> = {
  HumanName: ['A'],
  Address: ['B'],
  ContactPoint: ['D', 'E', 'F', 'N'],
  Identifier: ['G', 'H', 'I', 'J', 'K'],
  date: ['C'],
  dateTime: ['C'],
  instant: ['C'],
  Age: ['C'],
  Attachment: ['P', 'Q'],
  Narrative: ['R'],
  Annotation: ['R'],
  string: ['R'],
  markdown: ['R'],
  xhtml: ['R'],
  oid: ['R'],
  uuid: ['R'],
  base64Binary: ['P', 'Q', 'R'],
};

/** Whole numbers count as ages (C) as extension values (and at the positions in BY_POSITION). */
const AGE_NUMBER_TYPES: ReadonlySet<string> = new Set(['integer', 'positiveInt', 'unsignedInt']);

/** Elements of a PHI-capable type that carry none (a definition's canonical URL, a form's linkId). */
const NOT_PHI_POSITIONS: ReadonlySet<string> = new Set([
  'QuestionnaireResponseItem.linkId',
  'Extension.url',
  'Narrative.status',
]);

/** Categories whose values are structured identifiers, not prose: scrubbing alone is not enough. */
const STRUCTURED: ReadonlySet<SafeHarborCategory> = new Set([
  'A',
  'B',
  'C',
  'D',
  'E',
  'F',
  'G',
  'H',
  'I',
  'J',
  'K',
  'L',
  'M',
  'N',
  'O',
]);

const BY_POSITION: Readonly<Record<string, readonly SafeHarborCategory[]>> = {
  'Reference.reference': ['R'],
  'Reference.display': ['A'],
  'Meta.source': ['N', 'O'],
  'Attachment.url': ['N'],
  'Attachment.data': ['P', 'Q', 'R'],
  'Endpoint.address': ['N'],
  'AuditEventAgentNetwork.address': ['O'],
  'Location.position': ['B'],
  'Device.udiCarrier': ['M'],
  'Device.serialNumber': ['M'],
  'Device.lotNumber': ['M'],
  'Device.distinctIdentifier': ['M'],
  'Device.identifier': ['M'],
  'BundleEntry.fullUrl': ['N', 'R'],
  'BundleEntryRequest.url': ['R'],
  'BundleLink.url': ['N'],
  'Device.url': ['M', 'N'],
  // uri elements are mostly type names and definitions' URLs; these positions carry a site's or a person's
  'Identifier.system': ['N', 'R'],
  // whole numbers where a person's answers and findings are: an age is often one
  'Observation.valueInteger': ['C'],
  'ObservationComponent.valueInteger': ['C'],
  'QuestionnaireResponseItemAnswer.valueInteger': ['C'],
  'Condition.onsetRange': ['C'],
  'Condition.abatementRange': ['C'],
  'Signature.data': ['P', 'R'],
  'AuditEventEntity.query': ['A', 'C', 'R'],
  'ImagingStudySeries.uid': ['M', 'R'],
  'ImagingStudySeriesInstance.uid': ['M', 'R'],
};

/** The parts of a PHI-capable type that carry the PHI (use, system, state, ... do not). */
const SENSITIVE_PARTS: Readonly<Record<string, readonly string[]>> = {
  HumanName: ['family', 'given', 'text', 'prefix', 'suffix'],
  Address: ['line', 'city', 'district', 'postalCode', 'text'],
  ContactPoint: ['value'],
  Identifier: ['value'],
  Attachment: ['data', 'url', 'title', 'hash'],
  Annotation: ['text', 'authorString'],
  Narrative: ['div'],
};

/** Types whose content is codes and values, never PHI on its own. */
const NOT_PHI: ReadonlySet<string> = new Set([
  'Coding',
  'Quantity',
  'SimpleQuantity',
  'Duration',
  'Distance',
  'Count',
  'Money',
  'MoneyQuantity',
  'Ratio',
  'Range',
  'SampledData',
]);

const EXTENSION_VALUE_TYPES = [
  'HumanName',
  'Address',
  'ContactPoint',
  'Identifier',
  'Attachment',
  'Reference',
  'Age',
  'date',
  'dateTime',
  'instant',
  'string',
  'markdown',
  'uri',
  'url',
  'oid',
  'uuid',
  'base64Binary',
  'integer',
];
/** Extension values of types that are not PHI-capable elsewhere (mailto:, home pages). */
const EXTENSION_CATEGORIES: Readonly<Record<string, readonly SafeHarborCategory[]>> = {
  uri: ['F', 'N', 'R'],
  url: ['N'],
};
const MAX_DEPTH = 10;

/** Options of coverage. */
export interface CoverageOptions {
  /** Resource types to check. @defaultValue every R4 resource type */
  readonly resourceTypes?: readonly string[];
}

/**
 * Lists the PHI-capable elements no rule covers, per resource type and Safe Harbor category.
 * @param rules - compiled rules.
 * @param options - which resource types.
 * @returns the report.
 */
export function coverage(rules: CompiledRules, options: CoverageOptions = {}): CoverageReport {
  const schema = fhirSchema();
  const types = options.resourceTypes ?? schema.resourceTypes();
  const entries = new Map<string, CoverageEntry[]>();
  if (!rules.settings.allowListMode) {
    const graph = createPlanGraph(rules, schema, buildPredicates(rules.rules));
    for (const t of types) {
      const root = graph.root(t);
      if (root) {
        const found: CoverageEntry[] = [];
        const ctx: WalkCtx = { rules, exempt: new Set(rules.settings.references.exemptTypes), resourceType: t };
        walk(root, t, NO_RULE, false, [], new Set([t]), 0, found, ctx);
        extensionValues(root, t, found, ctx);
        entries.set(t, found);
      }
    }
  }
  return summarize(rules, types.length, entries);
}

/** The static claim at a node and whether a conditional rule may decide it first. */
function claimAt(node: PlanNode, claim: number, conditional: boolean): { eff: number; cond: boolean } {
  let cond = conditional;
  for (const pr of node.here) {
    if (pr.index >= claim) {
      break;
    }
    if (!pr.predicate) {
      return { eff: pr.index, cond };
    }
    cond = true;
  }
  return { eff: claim, cond };
}

interface WalkCtx {
  readonly rules: CompiledRules;
  /** Admin types the settings exempt: their keeps are deliberate. */
  readonly exempt: ReadonlySet<string>;
  readonly resourceType: string;
}

function walk(
  node: PlanNode,
  path: string,
  claim: number,
  conditional: boolean,
  categories: readonly SafeHarborCategory[],
  onPath: Set<string>,
  depth: number,
  out: CoverageEntry[],
  ctx: WalkCtx,
): void {
  const { eff, cond } = claimAt(node, claim, conditional);
  if (node.nested) {
    return; // nested resources are checked as their own type
  }
  if (eff !== NO_RULE) {
    decided(node, path, eff, claim, categories, out, ctx);
    return;
  }
  if (node.isArray) {
    planEdges(node).forEach(([, item]) => walk(item, path, eff, cond, categories, onPath, depth, out, ctx));
    return;
  }
  const leaf = node.primitive || NOT_PHI.has(node.type) || node.type === 'Age' || depth >= MAX_DEPTH;
  if (categories.length > 0 && (leaf || node.minInside() === NO_RULE)) {
    out.push({ path, type: node.type, categories, status: cond ? 'conditional' : 'uncovered' });
    return;
  }
  if (leaf) {
    return;
  }
  for (const [key, child] of planEdges(node)) {
    if (key === 'extension' || key === 'modifierExtension' || key.startsWith('_') || (key === 'id' && !node.root)) {
      continue;
    }
    const cats = categoriesOf(node, key, child.type, categories);
    if (onPath.has(child.type) && !child.primitive) {
      continue; // recursion (Identifier.assigner.identifier, item.item) is reported at its first level
    }
    onPath.add(child.type);
    walk(child, `${path}.${key}`, eff, cond, cats, onPath, depth + 1, out, ctx);
    onPath.delete(child.type);
  }
}

/**
 * An element a rule decides: a keep of a PHI-capable element (outside the exempt admin types)
 * is listed as kept, a scrub of a structured identifier as scrubOnly. Only the element where the
 * rule first applies is listed (a kept subtree is one entry).
 */
function decided(
  node: PlanNode,
  path: string,
  rule: number,
  inherited: number,
  categories: readonly SafeHarborCategory[],
  out: CoverageEntry[],
  ctx: WalkCtx,
): void {
  if (rule === inherited || categories.length === 0) {
    return;
  }
  const r = ctx.rules.rules[rule];
  if (!r) {
    return;
  }
  if (r.method === 'keep' && !ctx.exempt.has(ctx.resourceType)) {
    out.push({ path, type: node.type, categories, status: 'kept', rule: r.name });
  } else if (r.method === 'scrub' && categories.some((c) => STRUCTURED.has(c))) {
    out.push({ path, type: node.type, categories, status: 'scrubOnly', rule: r.name });
  }
}

function categoriesOf(
  parent: PlanNode,
  key: string,
  childType: string,
  inherited: readonly SafeHarborCategory[],
): readonly SafeHarborCategory[] {
  if (parent.root && key === 'id') {
    return ['R'];
  }
  const position = BY_POSITION[`${parent.type}.${key}`];
  if (position) {
    return position;
  }
  if (NOT_PHI_POSITIONS.has(`${parent.type}.${key}`) || (parent.root && ROOT_NOT_PHI.has(key))) {
    return [];
  }
  const parts = SENSITIVE_PARTS[parent.type];
  if (parts) {
    // Inside a PHI-capable type only its sensitive parts inherit; other parts count by their own
    // type, except plain strings (state, country, system are not free text).
    return parts.includes(key) ? inherited : childType === 'string' ? [] : (BY_TYPE[childType] ?? []);
  }
  return BY_TYPE[childType] ?? (parent.type === 'Reference' && (key === 'reference' || key === 'display') ? ['R'] : []);
}

/** Root elements of a PHI-capable type that name rules or definitions, not people. */
const ROOT_NOT_PHI: ReadonlySet<string> = new Set(['implicitRules', 'language', 'url']);

/** Extension values by data type, once per resource type. */
function extensionValues(root: PlanNode, type: string, out: CoverageEntry[], ctx: WalkCtx): void {
  const list = root.child('extension');
  const ext = list?.item(0);
  if (!list || !ext) {
    return;
  }
  const atList = claimAt(list, NO_RULE, false);
  const atItem = claimAt(ext, atList.eff, atList.cond);
  if (atItem.eff !== NO_RULE) {
    return;
  }
  for (const t of EXTENSION_VALUE_TYPES) {
    const node = ext.child('value' + t.charAt(0).toUpperCase() + t.slice(1));
    if (node) {
      const cats = EXTENSION_CATEGORIES[t] ?? BY_TYPE[t] ?? (AGE_NUMBER_TYPES.has(t) ? ['C'] : ['R']);
      walk(node, `${type}.extension.value[x]:${t}`, NO_RULE, atItem.cond, cats, new Set([t]), 1, out, ctx);
    }
  }
}

function summarize(rules: CompiledRules, count: number, entries: ReadonlyMap<string, CoverageEntry[]>): CoverageReport {
  type Section = Record<string, Partial<Record<SafeHarborCategory, string[]>>>;
  const sections: Record<CoverageEntry['status'], Section> = {
    uncovered: {},
    conditional: {},
    kept: {},
    scrubOnly: {},
  };
  const counts: Record<CoverageEntry['status'], number> = { uncovered: 0, conditional: 0, kept: 0, scrubOnly: 0 };
  const byCategory: Partial<Record<SafeHarborCategory, number>> = {};
  for (const type of [...entries.keys()].sort()) {
    for (const e of entries.get(type) ?? []) {
      const target = sections[e.status];
      counts[e.status]++;
      for (const cat of e.categories) {
        const perType = (target[type] ??= {});
        (perType[cat] ??= []).push(e.rule === undefined ? e.path : `${e.path} (${e.rule})`);
        if (e.status !== 'conditional') {
          byCategory[cat] = (byCategory[cat] ?? 0) + 1;
        }
      }
    }
  }
  return {
    profile: rules.profile,
    rulesVersion: rules.version,
    allowListMode: rules.settings.allowListMode,
    resourceTypes: count,
    uncovered: sections.uncovered,
    conditional: sections.conditional,
    kept: sections.kept,
    scrubOnly: sections.scrubOnly,
    totals: { ...counts, byCategory },
  };
}
