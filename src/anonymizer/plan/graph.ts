/**
 * The compiled form of the rules: a graph of plan nodes, one per distinct "matching state".
 *
 * A state is what decides which rules can match an element: the FHIR type of the element,
 * whether it is an array or one value, its role (resource root, QR answer value), the scope
 * class (resource types some rule names explicitly) and the partial matches in progress
 * (element paths below a data type, JSONPath automata). Many positions share a state (every
 * `Coding` outside an active partial match), so the graph is small, built lazily once, and a
 * resource is walked without looking at any rule that cannot match: each node lists the rules
 * matching it (`here`, in file order) and the lowest rule index that can match strictly below
 * it (`minInside`), which lets the walker decide a whole subtree at once.
 */
import type { FhirSchema, ElementInfo } from '../fhir/schema.ts';
import type { CompiledRules, PathSegment, Rule } from '../rules/types.ts';

/** Nothing claims the element. */
export const NO_RULE = Number.POSITIVE_INFINITY;

/** Run-time predicate of a conditional rule (`where`, QR linkId, ...). */
export type RulePredicate = (value: unknown, walk: WalkState) => boolean;

/** What predicates may read while a resource is walked. */
export interface WalkState {
  /** The QuestionnaireResponse item enclosing the current element. */
  qrItem: Readonly<Record<string, unknown>> | undefined;
  /** QuestionnaireResponse.questionnaire of the resource being walked. */
  questionnaire: string | undefined;
  /** The resource being walked (path selectors' `where` tests it). */
  resource: Readonly<Record<string, unknown>> | undefined;
  /** Codes (`system|code` and `*|code`) of the Questionnaire item with this linkId, when the Questionnaire is known. */
  itemCodes(linkId: string): ReadonlySet<string> | undefined;
}

/** A rule as a plan node sees it. */
export interface PlanRule {
  readonly rule: Rule;
  readonly index: number;
  readonly predicate?: RulePredicate;
}

/** One node of the plan graph. */
export interface PlanNode {
  readonly id: number;
  /** FHIR type of the element (`Resource` for a nested resource). */
  readonly type: string;
  /** The node is an array property; its items are `item(i)`. */
  readonly isArray: boolean;
  readonly primitive: boolean;
  /** A nested resource (contained, Bundle.entry.resource): walked with its own type's plan. */
  readonly nested: boolean;
  readonly root: boolean;
  /** The element is a QuestionnaireResponse item (predicates need it). */
  readonly qrItem: boolean;
  /** Rules matching this node, ascending index. */
  readonly here: readonly PlanRule[];
  /** Lowest index in `here`, NO_RULE if none. */
  readonly hereMin: number;
  /** Lowest index of any rule that can match strictly below; -1 when a nested resource is below. */
  minInside(): number;
  /**
   * Like minInside, but not looking through `extension`, `modifierExtension` and `_key`
   * companions (extensions can hold any type, so through them nearly every rule is "inside").
   * The walker copies such a subtree directly and walks only the extensions it finds.
   */
  minDirect(): number;
  /** Child node for a JSON key (value node or array node); undefined for a key the type lacks. */
  child(key: string): PlanNode | undefined;
  /** Child node with its element information (cached; the walker's hot path). */
  edge(key: string): PlanEdge | undefined;
  /** Element information of a child key. */
  element(key: string): ElementInfo | undefined;
  /** Item node of an array node. */
  item(index: number): PlanNode;
}

/** A child of a node with what the walker needs to know about the key. */
export interface PlanEdge {
  readonly node: PlanNode;
  readonly el: ElementInfo;
  /** `_key` of a primitive element; the primitive key of a `_key` companion. */
  readonly pairKey: string | undefined;
}

/** The plan graph of one rules file. */
export interface PlanGraph {
  /** Root node of a resource type; undefined for an unknown type. */
  root(resourceType: string): PlanNode | undefined;
  /** Number of nodes built so far (for tests and diagnostics). */
  size(): number;
  /** Every node built so far (static analysis materialises the graph first). */
  nodes(): readonly PlanNode[];
}

interface State {
  readonly scope: string;
  readonly role: string;
  readonly type: string;
  readonly isArray: boolean;
  /** Encoded partial matches: ruleIndex * POS + position. */
  readonly partials: readonly number[];
}

const POS = 64;

/**
 * Builds the (lazy) plan graph.
 * @param compiled - loaded rules.
 * @param schema - the R4 type index.
 * @param predicates - run-time predicates by rule index (rules without one match unconditionally).
 * @returns the graph.
 */
export function createPlanGraph(
  compiled: CompiledRules,
  schema: FhirSchema,
  predicates: ReadonlyMap<number, RulePredicate>,
): PlanGraph {
  return new Graph(compiled, schema, predicates);
}

class Graph implements PlanGraph {
  readonly #rules: readonly Rule[];
  readonly #schema: FhirSchema;
  readonly #predicates: ReadonlyMap<number, RulePredicate>;
  readonly #nodes = new Map<string, Node>();
  readonly #roots = new Map<string, Node | null>();
  readonly #scopedTypes: ReadonlySet<string>;
  readonly #hasQuestionnaireRules: boolean;
  #nextId = 0;

  constructor(compiled: CompiledRules, schema: FhirSchema, predicates: ReadonlyMap<number, RulePredicate>) {
    this.#rules = compiled.rules;
    this.#schema = schema;
    this.#predicates = predicates;
    const scoped = new Set<string>();
    for (const r of compiled.rules) {
      if (r.selector.kind !== 'questionnaire') {
        r.selector.in.forEach((t) => scoped.add(t));
      }
    }
    this.#hasQuestionnaireRules = compiled.rules.some((r) => r.selector.kind === 'questionnaire');
    if (this.#hasQuestionnaireRules) {
      scoped.add('QuestionnaireResponse');
    }
    // Path rules without `in` apply to every type, so they need no scope class of their own.
    this.#scopedTypes = scoped;
  }

  root(resourceType: string): PlanNode | undefined {
    let root = this.#roots.get(resourceType);
    if (root === undefined) {
      if (this.#schema.isResourceType(resourceType)) {
        const scope = this.#scopedTypes.has(resourceType) ? resourceType : '*';
        const partials = this.#anchored(resourceType, scope, true);
        root = this.node({ scope, role: 'root', type: resourceType, isArray: false, partials });
      } else {
        root = null;
      }
      this.#roots.set(resourceType, root);
    }
    return root ?? undefined;
  }

  size(): number {
    return this.#nodes.size;
  }

  nodes(): readonly PlanNode[] {
    return [...this.#nodes.values()];
  }

  node(state: State): Node {
    const key = `${state.scope}|${state.role}|${state.type}|${state.isArray ? 1 : 0}|${state.partials.join(',')}`;
    let n = this.#nodes.get(key);
    if (!n) {
      n = new Node(this, this.#nextId++, state, this.#here(state));
      this.#nodes.set(key, n);
    }
    return n;
  }

  typeInfo(type: string): ReturnType<FhirSchema['type']> {
    return this.#schema.type(type);
  }

  /** State of the child reached through `el` from a value node. */
  childState(parent: State, el: ElementInfo): State {
    const partials = this.#advance(parent.partials, { key: el.key, name: el.name });
    const role = parent.type === 'QuestionnaireResponseItemAnswer' && el.key.startsWith('value') ? 'qa:' + el.key : '';
    if (el.isArray) {
      return { scope: parent.scope, role, type: el.type, isArray: true, partials };
    }
    return {
      scope: parent.scope,
      role,
      type: el.type,
      isArray: false,
      partials: this.#withAnchored(partials, el.type, parent.scope),
    };
  }

  /** State of an item of an array node. */
  itemState(parent: State, index: number | undefined): State {
    const partials = this.#advance(parent.partials, { index });
    return {
      scope: parent.scope,
      role: parent.role,
      type: parent.type,
      isArray: false,
      partials: this.#withAnchored(partials, parent.type, parent.scope),
    };
  }

  /** Array indices some active JSONPath looks at (others share one item node). */
  indicesOf(state: State): readonly number[] {
    const out: number[] = [];
    for (const p of state.partials) {
      const segs = this.#segments(p);
      const pos = p % POS;
      const seg = segs?.[pos];
      const next = seg?.kind === 'descendant' ? segs?.[pos + 1] : seg;
      if (next?.kind === 'index') {
        out.push(next.index);
      }
    }
    return out;
  }

  #segments(partial: number): readonly PathSegment[] | undefined {
    const sel = this.#rules[Math.floor(partial / POS)]?.selector;
    return sel?.kind === 'path' ? sel.segments : undefined;
  }

  #inScope(rule: Rule, scope: string): boolean {
    const sel = rule.selector;
    if (sel.kind === 'questionnaire') {
      return scope === 'QuestionnaireResponse';
    }
    return sel.in.length === 0 || sel.in.includes(scope);
  }

  /** Partial matches that start at a value node of `type` (and at resource roots). */
  #anchored(type: string, scope: string, root: boolean): number[] {
    const out: number[] = [];
    for (const r of this.#rules) {
      const sel = r.selector;
      if (!this.#inScope(r, scope)) {
        continue;
      }
      if (
        sel.kind === 'type' &&
        sel.element.length > 0 &&
        (sel.types.includes(type) || (root && sel.types.includes('Resource')))
      ) {
        out.push(r.index * POS);
      } else if (sel.kind === 'path' && root) {
        out.push(r.index * POS);
      }
    }
    return out;
  }

  #withAnchored(partials: readonly number[], type: string, scope: string): number[] {
    const anchored = this.#anchored(type, scope, false);
    return anchored.length === 0 ? [...partials] : normalize([...partials, ...anchored]);
  }

  /** Advances partial matches over one step: a JSON key, or an array index. */
  #advance(partials: readonly number[], token: { key?: string; name?: string; index?: number }): number[] {
    const out: number[] = [];
    for (const p of partials) {
      const rule = this.#rules[Math.floor(p / POS)] as Rule;
      const pos = p % POS;
      const sel = rule.selector;
      if (sel.kind === 'type') {
        if (token.key === undefined) {
          if (pos < sel.element.length) {
            out.push(p); // element paths see through array levels; a completed one matched the whole array
          }
        } else if (pos < sel.element.length && (sel.element[pos] === token.name || sel.element[pos] === token.key)) {
          out.push(p + 1);
        }
      } else if (sel.kind === 'path') {
        stepPath(sel.segments, pos, token, (next) => out.push(rule.index * POS + next));
      }
    }
    return normalize(out);
  }

  /** Rules matching a node in this state, in file order. */
  #here(state: State): PlanRule[] {
    const hits: PlanRule[] = [];
    const add = (r: Rule): void => {
      const predicate = this.#predicates.get(r.index);
      hits.push(predicate ? { rule: r, index: r.index, predicate } : { rule: r, index: r.index });
    };
    for (const r of this.#rules) {
      if (!this.#inScope(r, state.scope)) {
        continue;
      }
      const sel = r.selector;
      if (sel.kind === 'type' && sel.element.length === 0) {
        if (
          !state.isArray &&
          (sel.types.includes(state.type) || (state.role === 'root' && sel.types.includes('Resource')))
        ) {
          add(r);
        }
      } else if (sel.kind === 'questionnaire') {
        if (sel.target === 'answer' && state.role.startsWith('qa:')) {
          if (sel.answerTypes.length === 0 || sel.answerTypes.includes(state.role.slice(3))) {
            add(r);
          }
        } else if (sel.target === 'item' && !state.isArray && state.type === 'QuestionnaireResponseItem') {
          add(r);
        }
      } else if (state.partials.some((p) => Math.floor(p / POS) === r.index && p % POS === selectorLength(r))) {
        add(r);
      }
    }
    return hits;
  }
}

function selectorLength(r: Rule): number {
  const sel = r.selector;
  return sel.kind === 'type' ? sel.element.length : sel.kind === 'path' ? sel.segments.length : -1;
}

/** One NFA step of a JSONPath over a key or index token. */
function stepPath(
  segs: readonly PathSegment[],
  pos: number,
  token: { key?: string; index?: number },
  emit: (next: number) => void,
): void {
  const seg = segs[pos];
  if (!seg) {
    return;
  }
  if (seg.kind === 'descendant') {
    emit(pos); // `..` may swallow this step
    stepPath(segs, pos + 1, token, (next) => emit(next));
    return;
  }
  const matches =
    seg.kind === 'wildcard' ||
    (seg.kind === 'key' && token.key !== undefined && seg.key === token.key) ||
    (seg.kind === 'index' && token.index !== undefined && seg.index === token.index);
  if (matches) {
    emit(pos + 1);
  }
}

function normalize(list: number[]): number[] {
  return [...new Set(list)].sort((a, b) => a - b);
}

class Node implements PlanNode {
  readonly id: number;
  readonly type: string;
  readonly isArray: boolean;
  readonly primitive: boolean;
  readonly nested: boolean;
  readonly root: boolean;
  readonly qrItem: boolean;
  readonly here: readonly PlanRule[];
  readonly hereMin: number;
  readonly #graph: Graph;
  readonly #state: State;
  readonly #children = new Map<string, Node | null>();
  readonly #edges = new Map<string, PlanEdge | null>();
  readonly #items = new Map<number, Node>();
  #other: Node | undefined;
  #indices: readonly number[] | undefined;
  #minInside: number | undefined;
  #minDirect: number | undefined;

  constructor(graph: Graph, id: number, state: State, here: PlanRule[]) {
    this.#graph = graph;
    this.#state = state;
    this.id = id;
    this.type = state.type;
    this.isArray = state.isArray;
    this.root = state.role === 'root';
    this.nested = state.type === 'Resource' && !state.isArray;
    this.primitive = graph.typeInfo(state.type)?.kind === 'primitive';
    this.qrItem = state.type === 'QuestionnaireResponseItem' && !state.isArray;
    this.here = here;
    this.hereMin = here.length > 0 ? (here[0] as PlanRule).index : NO_RULE;
  }

  element(key: string): ElementInfo | undefined {
    if (this.isArray || this.nested) {
      return undefined;
    }
    return this.#graph.typeInfo(this.type)?.elements.get(key);
  }

  child(key: string): Node | undefined {
    let c = this.#children.get(key);
    if (c === undefined) {
      const el = this.element(key);
      c = el ? this.#graph.node(this.#graph.childState(this.#state, el)) : null;
      this.#children.set(key, c);
    }
    return c ?? undefined;
  }

  edge(key: string): PlanEdge | undefined {
    let e = this.#edges.get(key);
    if (e === undefined) {
      const el = this.element(key);
      const node = el ? this.child(key) : undefined;
      e = el && node ? { node, el, pairKey: el.companionOf ?? (el.primitive ? '_' + key : undefined) } : null;
      this.#edges.set(key, e);
    }
    return e ?? undefined;
  }

  item(index: number): Node {
    this.#indices ??= this.#graph.indicesOf(this.#state);
    if (this.#indices.length > 0 && this.#indices.includes(index)) {
      let n = this.#items.get(index);
      if (!n) {
        n = this.#graph.node(this.#graph.itemState(this.#state, index));
        this.#items.set(index, n);
      }
      return n;
    }
    this.#other ??= this.#graph.node(this.#graph.itemState(this.#state, undefined));
    return this.#other;
  }

  /** Every child node (materialises the subgraph; used for minInside and static analysis). */
  allChildren(): Node[] {
    if (this.isArray) {
      this.#indices ??= this.#graph.indicesOf(this.#state);
      return [...this.#indices.map((i) => this.item(i)), this.item(-1)];
    }
    if (this.nested || this.primitive) {
      return [];
    }
    const info = this.#graph.typeInfo(this.type);
    const out: Node[] = [];
    for (const key of info?.elements.keys() ?? []) {
      const c = this.child(key);
      if (c) {
        out.push(c);
      }
    }
    return out;
  }

  /** Children by key, for static analysis (`[key, node]`; array items use `[]`). */
  edges(): [string, Node][] {
    if (this.isArray) {
      return this.allChildren().map((n) => ['[]', n]);
    }
    const info = this.#graph.typeInfo(this.type);
    const out: [string, Node][] = [];
    if (this.nested || this.primitive || !info) {
      return out;
    }
    for (const key of info.elements.keys()) {
      const c = this.child(key);
      if (c) {
        out.push([key, c]);
      }
    }
    return out;
  }

  minInside(): number {
    if (this.#minInside === undefined) {
      computeMinInside(this);
    }
    return this.#minInside as number;
  }

  minDirect(): number {
    if (this.#minDirect === undefined) {
      computeMinInside(this);
    }
    return this.#minDirect as number;
  }

  known(): [number, number] | undefined {
    return this.#minInside === undefined ? undefined : [this.#minInside, this.#minDirect as number];
  }

  setMins(all: number, direct: number): void {
    this.#minInside = all;
    this.#minDirect = direct;
  }
}

/** Keys whose subtrees the direct minimum does not look into. */
function indirect(key: string): boolean {
  return key === 'extension' || key === 'modifierExtension' || key.charCodeAt(0) === 95; // '_'
}

/** Fixpoint over the reachable subgraph (it has cycles: Extension.extension, QR item.item). */
function computeMinInside(start: Node): void {
  const list: Node[] = [];
  const seen = new Set<Node>();
  const stack: Node[] = [start];
  while (stack.length > 0) {
    const n = stack.pop() as Node;
    if (seen.has(n) || n.known() !== undefined) {
      continue;
    }
    seen.add(n);
    list.push(n);
    stack.push(...n.allChildren());
  }
  const all = new Map<Node, number>(list.map((n) => [n, NO_RULE]));
  const direct = new Map<Node, number>(list.map((n) => [n, NO_RULE]));
  const get = (m: Map<Node, number>, n: Node, k: 0 | 1): number => m.get(n) ?? n.known()?.[k] ?? NO_RULE;
  const edges = new Map<Node, [string, Node][]>(list.map((n) => [n, n.edges()]));
  let changed = true;
  while (changed) {
    changed = false;
    for (const n of list) {
      let a = get(all, n, 0);
      let d = get(direct, n, 1);
      for (const [key, c] of edges.get(n) as [string, Node][]) {
        const here = Math.min(c.hereMin, c.nested ? -1 : NO_RULE);
        a = Math.min(a, here, get(all, c, 0));
        if (!indirect(key)) {
          d = Math.min(d, here, get(direct, c, 1));
        }
      }
      if (a < get(all, n, 0) || d < get(direct, n, 1)) {
        all.set(n, a);
        direct.set(n, d);
        changed = true;
      }
    }
  }
  for (const n of list) {
    n.setMins(all.get(n) as number, direct.get(n) as number);
  }
}

/**
 * Static view of a node for analysis (shadowing, coverage): children with their keys.
 * @param node - a plan node.
 * @returns `[key, child]` pairs (`[]` for array items).
 */
export function planEdges(node: PlanNode): [string, PlanNode][] {
  return (node as Node).edges();
}
