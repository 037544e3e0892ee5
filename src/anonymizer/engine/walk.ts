/**
 * The walker: one pass over a resource, guided by the plan graph, building the de-identified
 * copy (the input is never modified). At each element the first rule in file order that
 * matches it or an ancestor decides it; `remove`/`redact` drop a whole subtree when no earlier
 * rule decides something inside, `keep` keeps what no earlier rule decides, value methods
 * transform the element as a whole. Elements no rule decides are kept (or dropped in
 * allow-list mode). Every element is checked against the FHIR type: an unknown element or a
 * value of the wrong shape fails the resource (fail closed), it is never passed through.
 * Nested resources (contained, Bundle entries) are walked with the plan of their own type.
 */
import {
  DEID_ERR_INVALID_VALUE,
  DEID_ERR_METHOD_NOT_APPLICABLE,
  DEID_ERR_NOT_A_RESOURCE,
  DEID_ERR_UNKNOWN_ELEMENT,
  DEID_ERR_UNKNOWN_RESOURCE_TYPE,
} from '../../shared/errors/index.ts';
import { NO_RULE } from '../plan/graph.ts';
import type { PlanGraph, PlanNode, WalkState } from '../plan/graph.ts';
import { DATA_ABSENT_MASKED } from '../processors/redact.ts';
import { REDACT, REMOVE, SecurityLabel } from '../processors/types.ts';
import type { Processor, Target } from '../processors/types.ts';
import type { Rule } from '../rules/types.ts';
import type { PathTrie, ReportBuilder } from './report.ts';
import { ResourceScope } from './scope.ts';
import type { BatchEnv, ResourceKind } from './scope.ts';

/** A rule with its processor, ready to apply. */
export interface RuntimeRule {
  readonly rule: Rule;
  readonly processor: Processor;
  readonly options: unknown;
  /** keep/remove/redact: decide what is below. */
  readonly subtree: boolean;
  /** remove or redact: may drop a whole subtree at once. */
  readonly drops: boolean;
}

/** Marks a resource once it is walked (security labels, tags). */
export type Marker = (out: Record<string, unknown>, labels: ReadonlySet<SecurityLabel>) => Record<string, unknown>;

/** Everything the walker needs besides the resource. */
export interface WalkEnv {
  readonly graph: PlanGraph;
  /** Runtime rules by rule index. */
  readonly rules: readonly RuntimeRule[];
  readonly batch: BatchEnv;
  readonly report: ReportBuilder;
  readonly mark: Marker;
  /** Questionnaire item codes by canonical and linkId. */
  itemCodes(questionnaire: string | undefined, linkId: string): ReadonlySet<string> | undefined;
}

const DAR = (): Record<string, unknown> => ({ extension: [{ ...DATA_ABSENT_MASKED }] });

function isPrimitiveJson(v: unknown): boolean {
  const t = typeof v;
  return t === 'string' || t === 'number' || t === 'boolean';
}

/** Walks resources of one input. */
export class Walker {
  readonly #env: WalkEnv;
  readonly #rules: readonly RuntimeRule[];
  readonly #allowList: boolean;
  readonly #failUnknown: boolean;
  readonly #stack: (string | number)[] = [];
  readonly #walk: WalkState;
  #rootType = '';
  #scope: ResourceScope | undefined;
  #scopeBase = 0;
  #trie: PathTrie | undefined;
  readonly #target: { -readonly [K in keyof Target]: Target[K] } = {
    type: '',
    key: '',
    parentType: '',
    parent: {},
    isResourceId: false,
  };

  constructor(env: WalkEnv) {
    this.#env = env;
    this.#rules = env.rules;
    this.#allowList = env.batch.settings.allowListMode;
    this.#failUnknown = env.batch.settings.unknownElements === 'fail';
    const walk: WalkState = {
      qrItem: undefined,
      questionnaire: undefined,
      resource: undefined,
      itemCodes: (linkId: string) => env.itemCodes(walk.questionnaire, linkId),
    };
    this.#walk = walk;
  }

  /**
   * De-identifies one top-level resource.
   * @param resource - the input (not modified).
   * @returns the de-identified copy.
   */
  top(resource: unknown): Record<string, unknown> {
    this.#stack.length = 0;
    const type = (resource as { resourceType?: unknown } | null)?.resourceType;
    this.#rootType = typeof type === 'string' ? type : 'Resource';
    this.#scope = undefined;
    this.#scopeBase = 0;
    return this.#resource(resource, 'top');
  }

  /** FHIRPath-like location of the element being walked (indices, no values). */
  location(): string {
    let out = this.#rootType;
    for (const s of this.#stack) {
      out += typeof s === 'number' ? `[${s}]` : `.${s}`;
    }
    return out;
  }

  #resource(value: unknown, kind: ResourceKind): Record<string, unknown> {
    const type = (value as { resourceType?: unknown } | null)?.resourceType;
    if (typeof value !== 'object' || value === null || Array.isArray(value) || typeof type !== 'string') {
      throw DEID_ERR_NOT_A_RESOURCE.createWith({ location: this.location() }, [this.location()]);
    }
    const root = this.#env.graph.root(type);
    if (!root) {
      throw DEID_ERR_UNKNOWN_RESOURCE_TYPE.createWith({ location: this.location() }, [this.location()]);
    }
    // The enclosing resource's state, restored below (locals: no object per resource).
    const outerScope = this.#scope;
    const outerBase = this.#scopeBase;
    const outerTrie = this.#trie;
    const outerQuestionnaire = this.#walk.questionnaire;
    const outerItem = this.#walk.qrItem;
    const outerResource = this.#walk.resource;
    const res = value as Record<string, unknown>;
    this.#walk.resource = res;
    const scope = new ResourceScope(this.#env.batch, res, kind, kind === 'contained' ? outerScope : undefined, this);
    this.#scope = scope;
    this.#scopeBase = this.#stack.length;
    this.#trie = this.#env.report.root(type);
    this.#walk.questionnaire =
      type === 'QuestionnaireResponse' && typeof res.questionnaire === 'string' ? res.questionnaire : undefined;
    this.#walk.qrItem = undefined;
    try {
      const out = this.#complex(res, root, NO_RULE, false) as Record<string, unknown>;
      return kind === 'contained' ? out : this.#env.mark(out, scope.labels);
    } finally {
      this.#scope = outerScope;
      this.#scopeBase = outerBase;
      this.#trie = outerTrie;
      this.#walk.questionnaire = outerQuestionnaire;
      this.#walk.qrItem = outerItem;
      this.#walk.resource = outerResource;
    }
  }

  /** First rule of `node` below `claim` whose condition holds, else `claim`. */
  #decide(node: PlanNode, value: unknown, claim: number): number {
    const here = node.here;
    for (let i = 0; i < here.length; i++) {
      const pr = here[i] as PlanNode['here'][number];
      if (pr.index >= claim) {
        break;
      }
      if (!pr.predicate || pr.predicate(value, this.#walk)) {
        return pr.index;
      }
    }
    return claim;
  }

  /** Records a rule that matched the current element. */
  #fire(claim: number): RuntimeRule {
    const rr = this.#rules[claim] as RuntimeRule;
    this.#env.report.fired(claim, this.#trie as PathTrie);
    const label = rr.processor.label;
    if (label) {
      this.#scope?.labels.add(label);
    }
    return rr;
  }

  #dropUnlisted(): typeof REMOVE {
    this.#env.report.allowListDrop(this.#trie as PathTrie);
    this.#scope?.labels.add(SecurityLabel.REDACTED);
    return REMOVE;
  }

  /** One (non-array) element whose rule is already decided (`claim`). */
  #decided(
    value: unknown,
    node: PlanNode,
    inherited: number,
    claim: number,
    key: string,
    parent: Record<string, unknown>,
    parentType: string,
  ): unknown {
    const here = claim !== inherited;
    const rr = claim === NO_RULE ? undefined : here ? this.#fire(claim) : (this.#rules[claim] as RuntimeRule);
    if (node.nested) {
      return rr?.rule.method === 'remove' ? REMOVE : this.#resource(value, key === 'contained' ? 'contained' : 'entry');
    }
    if (rr) {
      if (!rr.subtree) {
        return this.#apply(rr, value, node, key, parent, parentType);
      }
      if (rr.drops) {
        if (claim < node.minInside()) {
          return rr.rule.method === 'remove' || !here ? REMOVE : REDACT;
        }
      } else if (claim < node.minDirect()) {
        return this.#copy(value, node, claim); // keep, and no earlier rule inside
      }
    } else if (this.#allowList) {
      if (node.minInside() === NO_RULE) {
        return this.#dropUnlisted();
      }
    } else if (node.minDirect() === NO_RULE) {
      return this.#copy(value, node, claim); // no rule inside
    }
    if (node.primitive) {
      if (!isPrimitiveJson(value)) {
        throw this.#invalid(node.type);
      }
      if (!rr) {
        return this.#allowList ? this.#dropUnlisted() : value;
      }
      return rr.rule.method === 'keep' ? value : rr.rule.method === 'redact' && here ? REDACT : REMOVE;
    }
    return this.#complex(value, node, claim, here && rr?.rule.method === 'redact');
  }

  #apply(
    rr: RuntimeRule,
    value: unknown,
    node: PlanNode,
    key: string,
    parent: Record<string, unknown>,
    parentType: string,
  ): unknown {
    if (!rr.processor.accepts(node.type, rr.options)) {
      const where = this.location();
      throw DEID_ERR_METHOD_NOT_APPLICABLE.createWith({ location: where }, [
        rr.rule.name,
        rr.rule.method,
        node.type,
        where,
      ]);
    }
    if (node.primitive && !isPrimitiveJson(value)) {
      throw this.#invalid(node.type);
    }
    // One target object, refilled per call: processors read it during apply and keep nothing.
    const target = this.#target;
    target.type = node.type;
    target.key = key;
    target.parentType = parentType;
    target.parent = parent;
    target.isResourceId = key === 'id' && this.#stack.length === this.#scopeBase + 1;
    return rr.processor.apply(value, target, rr.options, this.#scope as ResourceScope);
  }

  #invalid(expected: string): Error {
    const where = this.location();
    return DEID_ERR_INVALID_VALUE.createWith({ location: where }, [where, expected]);
  }

  /** An object: every key checked against the type, primitives walked with their `_key` companions. */
  #complex(value: unknown, node: PlanNode, claim: number, redactHere: boolean): unknown {
    const type = node.type;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw this.#invalid(type);
    }
    const obj = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    const outerItem = this.#walk.qrItem;
    if (node.qrItem) {
      this.#walk.qrItem = obj;
    }
    for (const key in obj) {
      const edge = node.edge(key);
      if (!edge) {
        if (node.root && key === 'resourceType') {
          out.resourceType = obj.resourceType;
        } else {
          this.#unknown(key);
        }
        continue;
      }
      const child = edge.node;
      const v = obj[key];
      if (edge.el.primitive) {
        const pair = edge.pairKey as string;
        // Hot path: a plain primitive no rule can reach.
        if (claim === NO_RULE && child.here.length === 0 && !child.isArray && !this.#allowList && !(pair in obj)) {
          if (isPrimitiveJson(v)) {
            out[key] = v;
            continue;
          }
          if (v === null) {
            continue;
          }
        }
        this.#primitive(obj, key, child, node.child(pair), claim, out, type);
      } else if (edge.el.companionOf !== undefined) {
        if (!(edge.el.companionOf in obj)) {
          this.#primitive(obj, edge.el.companionOf, node.child(edge.el.companionOf), child, claim, out, type);
        } // else written together with its primitive
      } else if (v !== null) {
        const trie = this.#trie as PathTrie;
        this.#trie = trie.child(key);
        this.#stack.push(key);
        const r = child.isArray
          ? this.#array(v, child, claim, key, obj, type)
          : this.#decided(
              v,
              child,
              claim,
              child.here.length === 0 ? claim : this.#decide(child, v, claim),
              key,
              obj,
              type,
            );
        this.#stack.pop();
        this.#trie = trie;
        if (r === REDACT) {
          out[key] = DAR();
        } else if (r !== REMOVE) {
          out[key] = r;
        }
      }
    }
    this.#walk.qrItem = outerItem;
    if (redactHere && node.element('extension')) {
      out.extension = [...((out.extension as unknown[] | undefined) ?? []), { ...DATA_ABSENT_MASKED }];
    }
    return !node.root && isEmptyElement(out, type) ? REMOVE : out;
  }

  #unknown(key: string): void {
    if (this.#failUnknown) {
      const where = `${this.location()}.${key}`;
      throw DEID_ERR_UNKNOWN_ELEMENT.createWith({ location: where }, [where]);
    }
    this.#env.report.unknownDropped((this.#trie as PathTrie).child(key));
  }

  /** A list of non-primitive values. */
  #array(
    value: unknown,
    node: PlanNode,
    inherited: number,
    key: string,
    parent: Record<string, unknown>,
    parentType: string,
  ): unknown {
    if (!Array.isArray(value)) {
      throw this.#invalid(`a list of ${node.type}`);
    }
    const claim = this.#decide(node, value, inherited);
    const rr =
      claim === NO_RULE ? undefined : claim !== inherited ? this.#fire(claim) : (this.#rules[claim] as RuntimeRule);
    if (rr?.drops && claim < node.minInside()) {
      return REMOVE;
    }
    if (!rr && this.#allowList && node.minInside() === NO_RULE) {
      return this.#dropUnlisted();
    }
    const out: unknown[] = [];
    for (let i = 0; i < value.length; i++) {
      this.#stack.push(i);
      const item = node.item(i);
      const v =
        value[i] === null
          ? REMOVE
          : this.#decided(value[i], item, claim, this.#decide(item, value[i], claim), key, parent, parentType);
      this.#stack.pop();
      if (v === REDACT) {
        out.push(DAR());
      } else if (v !== REMOVE) {
        out.push(v);
      }
    }
    return out.length === 0 ? REMOVE : out;
  }

  /**
   * A primitive element with its `_key` companion (id/extensions), single or list. The value's
   * rule decides the companion too when it removes or redacts; otherwise the companion's own
   * elements (extensions) are walked under the claim the value inherited.
   */
  #primitive(
    obj: Record<string, unknown>,
    key: string,
    valueNode: PlanNode | undefined,
    compNode: PlanNode | undefined,
    inherited: number,
    out: Record<string, unknown>,
    type: string,
  ): void {
    const node = valueNode ?? compNode;
    if (!node) {
      return;
    }
    const trie = this.#trie as PathTrie;
    this.#trie = trie.child(key);
    this.#stack.push(key);
    this.#pair(obj, key, valueNode, compNode, node, inherited, out, type);
    this.#stack.pop();
    this.#trie = trie;
  }

  #pair(
    obj: Record<string, unknown>,
    key: string,
    valueNode: PlanNode | undefined,
    compNode: PlanNode | undefined,
    node: PlanNode,
    inherited: number,
    out: Record<string, unknown>,
    type: string,
  ): void {
    const compKey = companionKey(key);
    {
      const rawValue = obj[key];
      const rawComp = obj[compKey];
      if (!node.isArray && rawComp === undefined && valueNode) {
        // A single primitive without companion (ids, dates, references): no pairing needed.
        if (rawValue !== null && rawValue !== undefined) {
          const v = this.#decided(
            rawValue,
            valueNode,
            inherited,
            this.#decide(valueNode, rawValue, inherited),
            key,
            obj,
            type,
          );
          if (v === REDACT) {
            out[compKey] = DAR();
          } else if (v !== REMOVE) {
            out[key] = v;
          }
        }
        return;
      }
      if (!node.isArray) {
        const [v, c] = this.#slot(rawValue, rawComp, valueNode, compNode, inherited, key, obj, type, undefined);
        assign(out, key, v);
        assign(out, compKey, c);
        return;
      }
      if (
        (rawValue !== undefined && !Array.isArray(rawValue)) ||
        (rawComp !== undefined && rawComp !== null && !Array.isArray(rawComp))
      ) {
        throw this.#invalid(`a list of ${node.type}`);
      }
      const values = (rawValue ?? []) as unknown[];
      const comps = (rawComp ?? []) as unknown[];
      const claim = valueNode ? this.#decide(valueNode, values, inherited) : inherited;
      const rr = claim !== inherited ? this.#fire(claim) : undefined;
      if (rr?.drops && claim < (valueNode as PlanNode).minInside()) {
        return;
      }
      const vs: unknown[] = [];
      const cs: unknown[] = [];
      let anyValue = false;
      let anyComp = false;
      for (let i = 0; i < Math.max(values.length, comps.length); i++) {
        this.#stack.push(i);
        const [v, c] = this.#slot(values[i], comps[i], valueNode?.item(i), compNode?.item(i), claim, key, obj, type, i);
        this.#stack.pop();
        if (v !== undefined || c !== undefined) {
          vs.push(v ?? null);
          cs.push(c ?? null);
          anyValue ||= v !== undefined;
          anyComp ||= c !== undefined;
        }
      }
      assign(out, key, anyValue ? vs : undefined);
      assign(out, compKey, anyComp ? cs : undefined);
    }
  }

  /**
   * Copies a subtree no rule reaches directly (checking every key against the type); only
   * its extensions and primitive companions, which can hold anything, are walked in full.
   */
  #copy(value: unknown, node: PlanNode, claim: number): unknown {
    if (node.primitive) {
      if (!isPrimitiveJson(value)) {
        throw this.#invalid(node.type);
      }
      return value;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw this.#invalid(node.type);
    }
    const obj = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const key in obj) {
      const v = obj[key];
      const edge = node.edge(key);
      if (!edge) {
        if (node.root && key === 'resourceType') {
          out.resourceType = v;
        } else {
          this.#trie = this.#trieHere();
          this.#unknown(key);
        }
        continue;
      }
      if (v === null) {
        continue;
      }
      const el = edge.el;
      if (el.companionOf !== undefined || (el.primitive && (edge.pairKey as string) in obj)) {
        if (el.companionOf === undefined || !(el.companionOf in obj)) {
          const base = el.companionOf ?? key;
          this.#trie = this.#trieHere();
          this.#primitive(obj, base, node.child(base), node.child(companionKey(base)), claim, out, node.type);
        }
        continue;
      }
      this.#stack.push(key);
      const r = this.#copyChild(v, edge.node, claim, key, obj, node.type);
      this.#stack.pop();
      if (r === REDACT) {
        out[key] = DAR();
      } else if (r !== REMOVE) {
        out[key] = r;
      }
    }
    return isEmptyElement(out, node.type) ? REMOVE : out;
  }

  #copyChild(
    v: unknown,
    child: PlanNode,
    claim: number,
    key: string,
    parent: Record<string, unknown>,
    parentType: string,
  ): unknown {
    if (key === 'extension' || key === 'modifierExtension') {
      const trie = this.#trieHere();
      this.#trie = trie;
      return this.#array(v, child, claim, key, parent, parentType);
    }
    if (!child.isArray) {
      return child.nested ? this.#resource(v, 'entry') : this.#copy(v, child, claim);
    }
    if (!Array.isArray(v)) {
      throw this.#invalid(`a list of ${child.type}`);
    }
    const items: unknown[] = [];
    for (let i = 0; i < v.length; i++) {
      if (v[i] === null) {
        continue;
      }
      this.#stack.push(i);
      const item = child.item(i);
      const r = item.nested
        ? this.#resource(v[i], key === 'contained' ? 'contained' : 'entry')
        : this.#copy(v[i], item, claim);
      this.#stack.pop();
      if (r !== REMOVE) {
        items.push(r);
      }
    }
    return items.length === 0 ? REMOVE : items;
  }

  /** The report path of the element the stack points at (copy mode does not track it). */
  #trieHere(): PathTrie {
    let t = this.#env.report.root((this.#scope as ResourceScope).resourceType);
    for (let i = this.#scopeBase; i < this.#stack.length; i++) {
      const s = this.#stack[i];
      if (typeof s === 'string') {
        t = t.child(s);
      }
    }
    return t;
  }

  /** One value + companion pair (stack and trie already at the element); undefined means absent. */
  #slot(
    value: unknown,
    comp: unknown,
    valueNode: PlanNode | undefined,
    compNode: PlanNode | undefined,
    inherited: number,
    key: string,
    obj: Record<string, unknown>,
    type: string,
    index: number | undefined,
  ): [unknown, unknown] {
    const present = value !== null && value !== undefined;
    const claim = valueNode ? this.#decide(valueNode, present ? value : undefined, inherited) : inherited;
    const rr = claim === NO_RULE ? undefined : (this.#rules[claim] as RuntimeRule);
    let v: unknown = REMOVE;
    if (present && valueNode) {
      v = this.#decided(value, valueNode, inherited, claim, key, obj, type);
    }
    if (rr?.rule.method === 'remove') {
      return [undefined, undefined];
    }
    if (v === REDACT || (!present && rr?.rule.method === 'redact')) {
      return [undefined, DAR()];
    }
    let c: unknown = REMOVE;
    if (compNode && comp !== null && comp !== undefined) {
      const top = this.#stack.length - (index === undefined ? 1 : 2);
      const compKey = companionKey(key);
      this.#stack[top] = compKey;
      const compClaim = rr?.subtree ? claim : inherited;
      c = this.#decided(comp, compNode, compClaim, this.#decide(compNode, comp, compClaim), compKey, obj, type);
      this.#stack[top] = key;
    }
    return [v === REMOVE ? undefined : v, c === REMOVE || c === REDACT ? undefined : c];
  }
}

function assign(out: Record<string, unknown>, key: string, value: unknown): void {
  if (value !== undefined) {
    out[key] = value;
  }
}

/** `_key` of a primitive key, one string per key (no string built per element). */
const COMPANION_KEYS = new Map<string, string>();

function companionKey(key: string): string {
  let c = COMPANION_KEYS.get(key);
  if (c === undefined) {
    c = '_' + key;
    COMPANION_KEYS.set(key, c);
  }
  return c;
}

/** Elements that would be invalid FHIR once their content is gone (ele-1, ext-1, Narrative.div). */
function isEmptyElement(out: Record<string, unknown>, type: string): boolean {
  if (type !== 'Extension') {
    for (const k in out) {
      if (k !== 'id') {
        return type === 'Narrative' && out.div === undefined;
      }
    }
    return true;
  }
  for (const k in out) {
    if (k !== 'id' && (k.startsWith('value') || k === 'extension')) {
      return false;
    }
  }
  return true;
}
