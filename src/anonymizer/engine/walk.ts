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
import { DEID_ERR_INVALID_VALUE, DEID_ERR_METHOD_NOT_APPLICABLE, DEID_ERR_NOT_A_RESOURCE, DEID_ERR_UNKNOWN_ELEMENT, DEID_ERR_UNKNOWN_RESOURCE_TYPE } from '../../shared/errors/index.ts';
import { NO_RULE } from '../plan/graph.ts';
import type { PlanGraph, PlanNode, WalkState } from '../plan/graph.ts';
import { DATA_ABSENT_MASKED } from '../processors/redact.ts';
import { REDACT, REMOVE, SecurityLabel } from '../processors/types.ts';
import type { Processor, Target } from '../processors/types.ts';
import type { Rule } from '../rules/types.ts';
import { ResourceScope } from './scope.ts';
import type { BatchEnv, ResourceKind } from './scope.ts';

/** A rule with its processor, ready to apply. */
export interface RuntimeRule {
  readonly rule: Rule;
  readonly processor: Processor;
  readonly options: unknown;
  readonly subtree: boolean;
}

/** Receives what fired where. */
export interface FiringSink {
  fired(rule: RuntimeRule, path: string): void;
  allowListDrop(path: string): void;
  unknownDropped(path: string): void;
}

/** Marks a resource once it is walked (security labels, tags). */
export type Marker = (out: Record<string, unknown>, labels: ReadonlySet<SecurityLabel>) => Record<string, unknown>;

/** Everything the walker needs besides the resource. */
export interface WalkEnv {
  readonly graph: PlanGraph;
  /** Runtime rules by rule index. */
  readonly rules: readonly RuntimeRule[];
  readonly batch: BatchEnv;
  readonly sink: FiringSink;
  readonly mark: Marker;
  /** Questionnaire item codes by canonical and linkId. */
  itemCodes(questionnaire: string | undefined, linkId: string): ReadonlySet<string> | undefined;
}

const PRIMITIVE_JSON = new Set(['string', 'number', 'boolean']);

/** Walks resources of one input. */
export class Walker {
  readonly #env: WalkEnv;
  readonly #allowList: boolean;
  readonly #failUnknown: boolean;
  readonly #stack: (string | number)[] = [];
  readonly #walk: WalkState;
  #rootType = '';
  #scope: ResourceScope | undefined;
  #scopeBase = 0;

  constructor(env: WalkEnv) {
    this.#env = env;
    this.#allowList = env.batch.settings.allowListMode;
    this.#failUnknown = env.batch.settings.unknownElements === 'fail';
    const walk: WalkState = {
      qrItem: undefined,
      questionnaire: undefined,
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
    this.#rootType = typeof (resource as { resourceType?: unknown } | null)?.resourceType === 'string' ? (resource as { resourceType: string }).resourceType : 'Resource';
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

  /** `Type.a.b` of the element being walked, relative to its resource, without indices. */
  #path(): string {
    let out = this.#scope?.resourceType ?? this.#rootType;
    for (let i = this.#scopeBase; i < this.#stack.length; i++) {
      const s = this.#stack[i];
      if (typeof s === 'string') {
        out += '.' + s;
      }
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
    const outer = { scope: this.#scope, base: this.#scopeBase, questionnaire: this.#walk.questionnaire, item: this.#walk.qrItem };
    const res = value as Record<string, unknown>;
    this.#scope = new ResourceScope(this.#env.batch, res, kind, kind === 'contained' ? outer.scope : undefined, () => this.location());
    this.#scopeBase = this.#stack.length;
    this.#walk.questionnaire = type === 'QuestionnaireResponse' && typeof res.questionnaire === 'string' ? res.questionnaire : undefined;
    this.#walk.qrItem = undefined;
    try {
      const out = this.#complex(res, root, NO_RULE, false) as Record<string, unknown>;
      return kind === 'contained' ? out : this.#env.mark(out, this.#scope.labels);
    } finally {
      this.#scope = outer.scope;
      this.#scopeBase = outer.base;
      this.#walk.questionnaire = outer.questionnaire;
      this.#walk.qrItem = outer.item;
    }
  }

  /** First rule of `node` below `claim` whose condition holds, else `claim`. */
  #decide(node: PlanNode, value: unknown, claim: number): number {
    for (const pr of node.here) {
      if (pr.index >= claim) {
        break;
      }
      if (!pr.predicate || pr.predicate(value, this.#walk)) {
        return pr.index;
      }
    }
    return claim;
  }

  #fire(claim: number): RuntimeRule {
    const rr = this.#env.rules[claim] as RuntimeRule;
    this.#env.sink.fired(rr, this.#path());
    const label = rr.processor.label;
    if (label) {
      this.#scope?.labels.add(label);
    }
    return rr;
  }

  /** One (non-array) element. */
  #value(value: unknown, node: PlanNode, inherited: number, key: string, parent: Record<string, unknown>, parentType: string): unknown {
    if (value === null || value === undefined) {
      return REMOVE;
    }
    const claim = this.#decide(node, value, inherited);
    const here = claim !== inherited;
    const rr = claim === NO_RULE ? undefined : here ? this.#fire(claim) : (this.#env.rules[claim] as RuntimeRule);
    if (node.nested) {
      return rr?.rule.method === 'remove' ? REMOVE : this.#resource(value, key === 'contained' ? 'contained' : 'entry');
    }
    if (rr) {
      if (!rr.subtree) {
        return this.#apply(rr, value, node, key, parent, parentType);
      }
      if (rr.rule.method !== 'keep' && claim < node.minInside()) {
        return rr.rule.method === 'remove' || !here ? REMOVE : REDACT;
      }
    } else if (this.#allowList && node.minInside() === NO_RULE) {
      return this.#dropUnlisted();
    }
    if (node.primitive) {
      return this.#leaf(value, node, rr, here);
    }
    return this.#complex(value, node, claim, here && rr?.rule.method === 'redact');
  }

  #dropUnlisted(): typeof REMOVE {
    this.#env.sink.allowListDrop(this.#path());
    this.#scope?.labels.add(SecurityLabel.REDACTED);
    return REMOVE;
  }

  #leaf(value: unknown, node: PlanNode, rr: RuntimeRule | undefined, here: boolean): unknown {
    if (!PRIMITIVE_JSON.has(typeof value)) {
      throw this.#invalid(node.type);
    }
    if (!rr) {
      return this.#allowList ? this.#dropUnlisted() : value;
    }
    switch (rr.rule.method) {
      case 'keep':
        return value;
      case 'redact':
        return here ? REDACT : REMOVE;
      default:
        return REMOVE;
    }
  }

  #apply(rr: RuntimeRule, value: unknown, node: PlanNode, key: string, parent: Record<string, unknown>, parentType: string): unknown {
    if (!rr.processor.accepts(node.type, rr.options)) {
      const where = this.location();
      throw DEID_ERR_METHOD_NOT_APPLICABLE.createWith({ location: where }, [rr.rule.name, rr.rule.method, node.type, where]);
    }
    if (node.primitive && !PRIMITIVE_JSON.has(typeof value)) {
      throw this.#invalid(node.type);
    }
    const target: Target = { type: node.type, key, parentType, parent, isResourceId: key === 'id' && this.#stack.length === this.#scopeBase + 1 };
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
    for (const key of Object.keys(obj)) {
      if (node.root && key === 'resourceType') {
        out.resourceType = obj.resourceType;
        continue;
      }
      const child = node.child(key);
      if (!child) {
        this.#unknown(key);
        continue;
      }
      const el = node.element(key);
      if (el?.primitive) {
        this.#primitive(obj, key, child, node.child('_' + key), claim, out, type);
      } else if (el?.companionOf !== undefined) {
        if (!(el.companionOf in obj)) {
          this.#primitive(obj, el.companionOf, node.child(el.companionOf), child, claim, out, type);
        } // else written together with its primitive
      } else {
        this.#stack.push(key);
        const v = child.isArray ? this.#array(obj[key], child, claim, key, obj, type) : this.#value(obj[key], child, claim, key, obj, type);
        this.#stack.pop();
        if (v === REDACT) {
          out[key] = { extension: [{ ...DATA_ABSENT_MASKED }] };
        } else if (v !== REMOVE) {
          out[key] = v;
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
    this.#env.sink.unknownDropped(`${this.#path()}.${key}`);
  }

  /** A list of non-primitive values. */
  #array(value: unknown, node: PlanNode, inherited: number, key: string, parent: Record<string, unknown>, parentType: string): unknown {
    if (!Array.isArray(value)) {
      throw this.#invalid(`a list of ${node.type}`);
    }
    const claim = this.#decide(node, value, inherited);
    const here = claim !== inherited;
    const rr = claim === NO_RULE ? undefined : here ? this.#fire(claim) : (this.#env.rules[claim] as RuntimeRule);
    if (rr?.subtree && rr.rule.method !== 'keep' && claim < node.minInside()) {
      return REMOVE;
    }
    if (!rr && this.#allowList && node.minInside() === NO_RULE) {
      return this.#dropUnlisted();
    }
    const out: unknown[] = [];
    for (let i = 0; i < value.length; i++) {
      this.#stack.push(i);
      const v = this.#value(value[i], node.item(i), claim, key, parent, parentType);
      this.#stack.pop();
      if (v === REDACT) {
        out.push({ extension: [{ ...DATA_ABSENT_MASKED }] });
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
  #primitive(obj: Record<string, unknown>, key: string, valueNode: PlanNode | undefined, compNode: PlanNode | undefined, inherited: number, out: Record<string, unknown>, type: string): void {
    const compKey = '_' + key;
    const node = valueNode ?? compNode;
    if (!node) {
      return;
    }
    const rawValue = obj[key];
    const rawComp = obj[compKey];
    if (!node.isArray) {
      const [v, c] = this.#slot(rawValue, rawComp, valueNode, compNode, inherited, key, obj, type, undefined);
      assign(out, key, v);
      assign(out, compKey, c);
      return;
    }
    if ((rawValue !== undefined && !Array.isArray(rawValue)) || (rawComp !== undefined && rawComp !== null && !Array.isArray(rawComp))) {
      this.#stack.push(key);
      throw this.#invalid(`a list of ${node.type}`);
    }
    const values = (rawValue ?? []) as unknown[];
    const comps = (rawComp ?? []) as unknown[];
    this.#stack.push(key);
    const claim = valueNode ? this.#decide(valueNode, values, inherited) : inherited;
    const rr = claim !== inherited ? this.#fire(claim) : undefined;
    this.#stack.pop();
    if (rr?.subtree && rr.rule.method !== 'keep' && claim < (valueNode as PlanNode).minInside()) {
      return;
    }
    const vs: unknown[] = [];
    const cs: unknown[] = [];
    for (let i = 0; i < Math.max(values.length, comps.length); i++) {
      const [v, c] = this.#slot(values[i], comps[i], valueNode?.item(i), compNode?.item(i), claim, key, obj, type, i);
      if (v !== undefined || c !== undefined) {
        vs.push(v ?? null);
        cs.push(c ?? null);
      }
    }
    assign(out, key, vs.some((v) => v !== null) ? vs : undefined);
    assign(out, compKey, cs.some((c) => c !== null) ? cs : undefined);
  }

  /** One value + companion pair; undefined means absent. */
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
    const rr = claim === NO_RULE ? undefined : (this.#env.rules[claim] as RuntimeRule);
    let v: unknown = REMOVE;
    if (present && valueNode) {
      this.#push(key, index);
      v = this.#value(value, valueNode, inherited, key, obj, type);
      this.#pop(index);
    }
    if (rr?.rule.method === 'remove') {
      return [undefined, undefined];
    }
    if (v === REDACT || (!present && rr?.rule.method === 'redact')) {
      return [undefined, { extension: [{ ...DATA_ABSENT_MASKED }] }];
    }
    let c: unknown = REMOVE;
    if (compNode && comp !== null && comp !== undefined) {
      this.#push('_' + key, index);
      c = this.#value(comp, compNode, rr?.subtree ? claim : inherited, '_' + key, obj, type);
      this.#pop(index);
    }
    return [v === REMOVE ? undefined : v, c === REMOVE || c === REDACT ? undefined : c];
  }

  #push(key: string, index: number | undefined): void {
    this.#stack.push(key);
    if (index !== undefined) {
      this.#stack.push(index);
    }
  }

  #pop(index: number | undefined): void {
    this.#stack.pop();
    if (index !== undefined) {
      this.#stack.pop();
    }
  }
}

function assign(out: Record<string, unknown>, key: string, value: unknown): void {
  if (value !== undefined) {
    out[key] = value;
  }
}

/** Elements that would be invalid FHIR once their content is gone (ele-1, ext-1, Narrative.div). */
function isEmptyElement(out: Record<string, unknown>, type: string): boolean {
  let keys = 0;
  let hasValue = false;
  for (const k in out) {
    if (k !== 'id') {
      keys++;
      if (k.startsWith('value') || k === 'extension') {
        hasValue = true;
      }
    }
  }
  if (keys === 0) {
    return true;
  }
  if (type === 'Extension') {
    return !hasValue;
  }
  if (type === 'Narrative') {
    return out.div === undefined;
  }
  return false;
}
