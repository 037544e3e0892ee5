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
  /** `uncovered`: no rule; `conditional`: only rules with run-time conditions reach it. */
  readonly status: 'uncovered' | 'conditional';
}

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
  readonly conditional: Readonly<Record<string, Readonly<Partial<Record<SafeHarborCategory, readonly string[]>>>>>;
  readonly totals: {
    readonly uncovered: number;
    readonly conditional: number;
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
};

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
];
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
        walk(root, t, NO_RULE, false, [], new Set([t]), 0, found);
        extensionValues(root, t, found);
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

function walk(
  node: PlanNode,
  path: string,
  claim: number,
  conditional: boolean,
  categories: readonly SafeHarborCategory[],
  onPath: Set<string>,
  depth: number,
  out: CoverageEntry[],
): void {
  const { eff, cond } = claimAt(node, claim, conditional);
  if (eff !== NO_RULE || node.nested) {
    return; // decided here or above; nested resources are checked as their own type
  }
  if (node.isArray) {
    planEdges(node).forEach(([, item]) => walk(item, path, eff, cond, categories, onPath, depth, out));
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
    walk(child, `${path}.${key}`, eff, cond, cats, onPath, depth + 1, out);
    onPath.delete(child.type);
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
  const parts = SENSITIVE_PARTS[parent.type];
  if (parts) {
    // Inside a PHI-capable type only its sensitive parts inherit; other parts count by their own
    // type, except plain strings (state, country, system are not free text).
    return parts.includes(key) ? inherited : childType === 'string' ? [] : (BY_TYPE[childType] ?? []);
  }
  return BY_TYPE[childType] ?? (parent.type === 'Reference' && (key === 'reference' || key === 'display') ? ['R'] : []);
}

/** Extension values by data type, once per resource type. */
function extensionValues(root: PlanNode, type: string, out: CoverageEntry[]): void {
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
      walk(node, `${type}.extension.value[x]:${t}`, NO_RULE, atItem.cond, BY_TYPE[t] ?? ['R'], new Set([t]), 1, out);
    }
  }
}

function summarize(rules: CompiledRules, count: number, entries: ReadonlyMap<string, CoverageEntry[]>): CoverageReport {
  const uncovered: Record<string, Partial<Record<SafeHarborCategory, string[]>>> = {};
  const conditional: Record<string, Partial<Record<SafeHarborCategory, string[]>>> = {};
  const byCategory: Partial<Record<SafeHarborCategory, number>> = {};
  let u = 0;
  let c = 0;
  for (const type of [...entries.keys()].sort()) {
    for (const e of entries.get(type) ?? []) {
      const target = e.status === 'uncovered' ? uncovered : conditional;
      if (e.status === 'uncovered') {
        u++;
      } else {
        c++;
      }
      for (const cat of e.categories) {
        const perType = (target[type] ??= {});
        (perType[cat] ??= []).push(e.path);
        if (e.status === 'uncovered') {
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
    uncovered,
    conditional,
    totals: { uncovered: u, conditional: c, byCategory },
  };
}
