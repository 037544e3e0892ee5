/**
 * Semantic checks of each rule and its compilation into the `Rule` form: FHIR types and
 * elements must exist, JSONPaths must compile, the method must exist and accept its options,
 * and the method must be able to work on every element type the selector can reach.
 */
import {
  CFG_ERR_RULES_DUPLICATE_NAME,
  CFG_ERR_RULES_JSONPATH,
  CFG_ERR_RULES_METHOD_NOT_APPLICABLE,
  CFG_ERR_RULES_SCHEMA,
  CFG_ERR_RULES_UNKNOWN_ELEMENT,
  CFG_ERR_RULES_UNKNOWN_METHOD,
  CFG_ERR_RULES_UNKNOWN_TYPE,
} from '../../shared/errors/index.ts';
import type { ErrorFactory } from '../../shared/errors/index.ts';
import type { FhirSchema, TypeInfo } from '../fhir/schema.ts';
import type { ProcessorRegistry } from '../processors/registry.ts';
import { parseJsonPath } from './jsonpath.ts';
import { RULE_BASE_KEYS, ruleBaseSchema } from './schema.ts';
import type { SelectInput } from './schema.ts';
import type { PathSegment, Rule, RulesProblem, SafeHarborCategory, Selector } from './types.ts';
import type { DocPath, YamlSource } from './yaml-source.ts';
import { issueProblems } from './zod-problems.ts';

/** Collects problems with their positions. */
export interface ProblemSink {
  add(def: ErrorFactory, args: readonly (string | number)[], path: DocPath, onKey?: boolean): void;
  addRaw(problem: RulesProblem): void;
}

/**
 * Creates a sink that locates problems in the YAML source.
 * @param source - parsed YAML.
 * @param out - list to append to.
 * @returns the sink.
 */
export function problemSink(source: YamlSource, out: RulesProblem[]): ProblemSink {
  return {
    add(def, args, path, onKey = false) {
      const at = source.locate(path, onKey);
      out.push({
        code: def.code,
        message: def.create(...args).message,
        line: at.line,
        column: at.column,
        path: formatDocPath(path),
      });
    },
    addRaw: (p) => out.push(p),
  };
}

/**
 * `rules[3].select.path`
 * @param path - document path.
 * @returns the printable path.
 */
export function formatDocPath(path: DocPath): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/** Context of rule compilation. */
export interface CompileEnv {
  readonly schema: FhirSchema;
  readonly registry: ProcessorRegistry;
  readonly source: YamlSource;
  readonly sink: ProblemSink;
}

/**
 * Compiles every rule; problems go to the sink, valid rules are returned in file order.
 * @param raw - the `rules:` list as parsed.
 * @param env - schema, registry, source and sink.
 * @returns compiled rules (those without problems).
 */
export function compileRules(raw: readonly unknown[], env: CompileEnv): Rule[] {
  const out: Rule[] = [];
  const names = new Map<string, number>();
  raw.forEach((entry, i) => {
    const rule = compileRule(entry, i, env);
    if (!rule) {
      return;
    }
    if (names.has(rule.name)) {
      env.sink.add(CFG_ERR_RULES_DUPLICATE_NAME, [rule.name], ['rules', i, 'name']);
      return;
    }
    names.set(rule.name, i);
    out.push(rule);
  });
  return out;
}

function compileRule(entry: unknown, i: number, env: CompileEnv): Rule | undefined {
  const at: DocPath = ['rules', i];
  const base = ruleBaseSchema.safeParse(entry);
  if (!base.success) {
    issueProblems(base.error.issues, at, env.source).forEach((p) => env.sink.addRaw(p));
    return undefined;
  }
  const b = base.data;
  const processor = env.registry.get(b.method);
  if (!processor) {
    env.sink.add(CFG_ERR_RULES_UNKNOWN_METHOD, [b.method, env.registry.methods().join(', ')], [...at, 'method']);
  }
  const selector = compileSelector(b.select, [...at, 'select'], env);
  const optionInput = Object.fromEntries(
    Object.entries(entry as Record<string, unknown>).filter(([k]) => !RULE_BASE_KEYS.has(k)),
  );
  let options: unknown;
  if (processor) {
    const parsed = processor.options.safeParse(optionInput);
    if (!parsed.success) {
      issueProblems(parsed.error.issues, at, env.source).forEach((p) => env.sink.addRaw(p));
      return undefined;
    }
    options = parsed.data;
  }
  if (!processor || !selector) {
    return undefined;
  }
  const targets = targetTypes(selector.selector, env.schema);
  const refused = targets?.filter((t) => !processor.accepts(t, options));
  if (refused && refused.length > 0) {
    env.sink.add(
      CFG_ERR_RULES_METHOD_NOT_APPLICABLE,
      [b.method, `${refused.join(', ')} (it works on ${processor.describeAccepted(options)})`],
      [...at, 'method'],
    );
    return undefined;
  }
  const pos = env.source.locate(at);
  const categories = (
    b.category === undefined ? [] : Array.isArray(b.category) ? b.category : [b.category]
  ) as SafeHarborCategory[];
  return {
    index: i,
    name: b.name,
    ...(b.description === undefined ? {} : { description: b.description }),
    categories,
    method: b.method,
    options,
    selector: selector.selector,
    line: pos.line,
    column: pos.column,
  };
}

const list = <T>(v: T | readonly T[] | undefined): T[] =>
  v === undefined ? [] : Array.isArray(v) ? [...(v as T[])] : [v as T];

function compileSelector(s: SelectInput, at: DocPath, env: CompileEnv): { selector: Selector } | undefined {
  const qrKeys = (['questionnaire', 'linkId', 'itemCode', 'answerType', 'target'] as const).filter(
    (k) => s[k] !== undefined,
  );
  const kinds = [
    s.type !== undefined ? 'type' : '',
    s.path !== undefined ? 'path' : '',
    qrKeys.length > 0 ? 'questionnaire' : '',
  ].filter((k) => k !== '');
  if (kinds.length !== 1) {
    env.sink.add(
      CFG_ERR_RULES_SCHEMA,
      [
        `select needs exactly one of type, path, or questionnaire keys (questionnaire, linkId, itemCode, answerType, target); found ${kinds.join(' + ') || 'none'}`,
      ],
      at,
      true,
    );
    return undefined;
  }
  const misplaced = (keys: readonly (keyof SelectInput)[], kind: string): boolean => {
    const bad = keys.filter((k) => s[k] !== undefined);
    bad.forEach((k) =>
      env.sink.add(CFG_ERR_RULES_SCHEMA, [`${k} cannot be used in a ${kind} selector`], [...at, k], true),
    );
    return bad.length > 0;
  };
  if (kinds[0] === 'type') {
    return misplaced(['path'], 'type') ? undefined : typeSelector(s, at, env);
  }
  if (kinds[0] === 'path') {
    return misplaced(['element'], 'path') ? undefined : pathSelector(s, at, env);
  }
  return misplaced(['element', 'where', 'in'], 'questionnaire') ? undefined : questionnaireSelector(s, at, env);
}

function resourceTypesOf(s: SelectInput, at: DocPath, env: CompileEnv): string[] | undefined {
  const types = list(s.in);
  const bad = types.filter((t) => !env.schema.isResourceType(t));
  bad.forEach((t) => env.sink.add(CFG_ERR_RULES_UNKNOWN_TYPE, [`${t} (in: names resource types)`], [...at, 'in']));
  return bad.length > 0 ? undefined : types;
}

function typeSelector(s: SelectInput, at: DocPath, env: CompileEnv): { selector: Selector } | undefined {
  const names = list(s.type);
  const types: string[] = [];
  const anchors: TypeInfo[] = [];
  for (const name of names) {
    const resolved = resolveTypeName(name, env.schema);
    if ('problem' in resolved) {
      env.sink.add(CFG_ERR_RULES_UNKNOWN_TYPE, [resolved.problem], [...at, 'type']);
      return undefined;
    }
    types.push(resolved.type);
    anchors.push(resolved.info);
  }
  const element = s.element === undefined ? [] : s.element.split('.');
  for (const [k, anchor] of anchors.entries()) {
    if (element.length > 0 && resolveElementPath(anchor, element, env.schema) === undefined) {
      env.sink.add(CFG_ERR_RULES_UNKNOWN_ELEMENT, [`${names[k] as string}.${s.element as string}`], [...at, 'element']);
      return undefined;
    }
  }
  const where: { path: string[]; values: string[] }[] = [];
  for (const [p, v] of Object.entries(s.where ?? {})) {
    const path = p.split('.');
    if (element.length > 0) {
      env.sink.add(
        CFG_ERR_RULES_SCHEMA,
        ['where tests the selected element itself; it cannot be combined with element'],
        [...at, 'where'],
        true,
      );
      return undefined;
    }
    const missing = anchors.findIndex((a) => resolveElementPath(a, path, env.schema, true) === undefined);
    if (missing >= 0) {
      env.sink.add(
        CFG_ERR_RULES_UNKNOWN_ELEMENT,
        [`${names[missing] as string}.${p} (in where)`],
        [...at, 'where', p],
        true,
      );
      return undefined;
    }
    where.push({ path, values: list(v).map(String) });
  }
  const inTypes = resourceTypesOf(s, at, env);
  return inTypes ? { selector: { kind: 'type', types, element, in: inTypes, where } } : undefined;
}

/**
 * A type selector's type: a data type, `Resource`, or a backbone element by its definition
 * path (`QuestionnaireResponse.item`). A path to a data-type element is refused: the selector
 * would match that data type everywhere, not only there.
 */
function resolveTypeName(name: string, schema: FhirSchema): { type: string; info: TypeInfo } | { problem: string } {
  if (name === 'Resource') {
    return { type: 'Resource', info: schema.type('DomainResource') as TypeInfo };
  }
  if (!name.includes('.')) {
    const info = schema.isDataType(name) ? schema.type(name) : undefined;
    if (info) {
      return { type: name, info };
    }
    const hint = schema.isResourceType(name)
      ? ` (${name} is a resource type: use path with in: ${name}, or type: Resource)`
      : '';
    return { problem: name + hint };
  }
  const [root, ...rest] = name.split('.');
  let info = schema.isResourceType(root as string) ? schema.type(root as string) : undefined;
  for (const step of rest) {
    const el = info?.elements.get(step);
    info = el ? schema.type(el.type) : undefined;
  }
  if (!info) {
    return { problem: name };
  }
  if (info.kind !== 'backbone') {
    return {
      problem: `${name} (it is a ${info.name}: use type: ${info.name} to match it everywhere, or path with in: ${root as string})`,
    };
  }
  return { type: info.name, info };
}

/** Type codes an element path ends on, or undefined when a step does not exist. */
function resolveElementPath(
  start: TypeInfo,
  path: readonly string[],
  schema: FhirSchema,
  jsonKeysOnly = false,
): string[] | undefined {
  let current: string[] = [start.name];
  for (const step of path) {
    const next: string[] = [];
    for (const t of current) {
      const info = schema.type(t);
      const byKey = info?.elements.get(step);
      const matches = byKey ? [byKey] : jsonKeysOnly ? [] : (info?.byName.get(step) ?? []);
      next.push(...matches.map((m) => m.type));
    }
    if (next.length === 0) {
      return undefined;
    }
    current = [...new Set(next)];
  }
  return current;
}

function pathSelector(s: SelectInput, at: DocPath, env: CompileEnv): { selector: Selector } | undefined {
  const expr = s.path as string;
  const parsed = parseJsonPath(expr);
  if (!parsed.ok) {
    env.sink.add(CFG_ERR_RULES_JSONPATH, [expr, parsed.reason], [...at, 'path']);
    return undefined;
  }
  const inTypes = resourceTypesOf(s, at, env);
  if (!inTypes) {
    return undefined;
  }
  for (const t of inTypes.length > 0 ? inTypes : ['DomainResource']) {
    const problem = checkPath(parsed.segments, t, env.schema);
    if (problem) {
      const args = problem.def === CFG_ERR_RULES_JSONPATH ? [expr, problem.message] : [problem.message];
      env.sink.add(problem.def, args, [...at, 'path']);
      return undefined;
    }
  }
  // where on a path selector tests the resource (the path starts at its root), e.g. a Location
  // whose physicalType is a house.
  const where: { path: string[]; values: string[] }[] = [];
  for (const [p, v] of Object.entries(s.where ?? {})) {
    const path = p.split('.');
    const missing = (inTypes.length > 0 ? inTypes : ['DomainResource']).find((t) => {
      const info = env.schema.type(t);
      return info === undefined || resolveElementPath(info, path, env.schema, true) === undefined;
    });
    if (missing !== undefined) {
      env.sink.add(CFG_ERR_RULES_UNKNOWN_ELEMENT, [`${missing}.${p} (in where)`], [...at, 'where', p], true);
      return undefined;
    }
    where.push({ path, values: list(v).map(String) });
  }
  return { selector: { kind: 'path', path: expr, segments: parsed.segments, in: inTypes, where } };
}

/** Walks a JSONPath over the FHIR types; arrays must be stepped into with [*] or [n]. */
function checkPath(
  segments: readonly PathSegment[],
  rootType: string,
  schema: FhirSchema,
): { def: ErrorFactory; message: string } | undefined {
  let types: { type: string; isArray: boolean }[] = [{ type: rootType, isArray: false }];
  let trail = rootType === 'DomainResource' ? 'Resource' : rootType;
  for (const [k, seg] of segments.entries()) {
    if (seg.kind === 'descendant') {
      const next = segments[k + 1];
      if (next?.kind === 'key' && !schema.hasAnyKey(next.key)) {
        return { def: CFG_ERR_RULES_UNKNOWN_ELEMENT, message: `${next.key} (no FHIR type has it)` };
      }
      return undefined; // below `..` the type is not known statically
    }
    const next: { type: string; isArray: boolean }[] = [];
    for (const t of types) {
      if (t.isArray) {
        if (seg.kind === 'key') {
          return {
            def: CFG_ERR_RULES_JSONPATH,
            message: `${trail} is a list: step into it with [*] or [n] before .${seg.key}`,
          };
        }
        next.push({ type: t.type, isArray: false });
        continue;
      }
      if (seg.kind === 'index') {
        return { def: CFG_ERR_RULES_JSONPATH, message: `${trail} is not a list: [${seg.index}] cannot apply` };
      }
      const info = schema.type(t.type);
      const elements =
        seg.kind === 'wildcard'
          ? [...(info?.elements.values() ?? [])]
          : [info?.elements.get(seg.key)].filter((e) => e !== undefined);
      next.push(...elements.map((e) => ({ type: e.type, isArray: e.isArray })));
    }
    if (next.length === 0) {
      return { def: CFG_ERR_RULES_UNKNOWN_ELEMENT, message: `${trail}.${seg.kind === 'key' ? seg.key : '*'}` };
    }
    trail += seg.kind === 'key' ? `.${seg.key}` : seg.kind === 'index' ? `[${seg.index}]` : '[*]';
    types = next;
  }
  return undefined;
}

function questionnaireSelector(s: SelectInput, at: DocPath, env: CompileEnv): { selector: Selector } | undefined {
  const answer = env.schema.type('QuestionnaireResponseItemAnswer');
  const answerTypes = list(s.answerType);
  const bad = answerTypes.filter((t) => !t.startsWith('value') || !answer?.elements.has(t));
  bad.forEach((t) =>
    env.sink.add(CFG_ERR_RULES_UNKNOWN_ELEMENT, [`QuestionnaireResponse.item.answer.${t}`], [...at, 'answerType']),
  );
  const target = s.target ?? 'answer';
  if (target === 'item' && answerTypes.length > 0) {
    env.sink.add(
      CFG_ERR_RULES_SCHEMA,
      ['answerType selects answer values; it cannot be combined with target: item'],
      [...at, 'answerType'],
      true,
    );
    return undefined;
  }
  if (bad.length > 0) {
    return undefined;
  }
  const selector: Selector = {
    kind: 'questionnaire',
    ...(s.questionnaire === undefined ? {} : { questionnaire: s.questionnaire }),
    linkIds: list(s.linkId),
    itemCodes: list(s.itemCode).map((c) => `${c.system ?? '*'}|${c.code}`),
    answerTypes,
    target,
  };
  return { selector };
}

/**
 * FHIR types a selector's elements can have (undefined when unknown until run time).
 * @param sel - compiled selector.
 * @param schema - R4 index.
 * @returns the type codes.
 */
export function targetTypes(sel: Selector, schema: FhirSchema): string[] | undefined {
  switch (sel.kind) {
    case 'type': {
      if (sel.element.length === 0) {
        return [...sel.types];
      }
      const out = new Set<string>();
      for (const t of sel.types) {
        const anchor = schema.type(t === 'Resource' ? 'DomainResource' : t);
        const ends = anchor ? resolveElementPath(anchor, sel.element, schema) : undefined;
        if (!ends) {
          return undefined;
        }
        ends.forEach((e) => out.add(e));
      }
      return [...out];
    }
    case 'path':
      return pathTargets(sel.segments, sel.in.length > 0 ? sel.in : ['DomainResource'], schema);
    case 'questionnaire': {
      if (sel.target === 'item') {
        return ['QuestionnaireResponseItem'];
      }
      const answer = schema.type('QuestionnaireResponseItemAnswer');
      const keys =
        sel.answerTypes.length > 0
          ? sel.answerTypes
          : [...(answer?.elements.keys() ?? [])].filter((k) => k.startsWith('value'));
      return [...new Set(keys.map((k) => answer?.elements.get(k)?.type).filter((t): t is string => t !== undefined))];
    }
  }
}

function pathTargets(
  segments: readonly PathSegment[],
  roots: readonly string[],
  schema: FhirSchema,
): string[] | undefined {
  if (segments.some((s) => s.kind === 'descendant')) {
    return undefined;
  }
  const out = new Set<string>();
  for (const root of roots) {
    let types: { type: string; isArray: boolean }[] = [{ type: root, isArray: false }];
    for (const seg of segments) {
      types = types.flatMap((t) => {
        if (t.isArray) {
          return [{ type: t.type, isArray: false }];
        }
        const info = schema.type(t.type);
        const els =
          seg.kind === 'wildcard'
            ? [...(info?.elements.values() ?? [])]
            : seg.kind === 'key'
              ? [info?.elements.get(seg.key)].filter((e) => e !== undefined)
              : [];
        return els.map((e) => ({ type: e.type, isArray: e.isArray }));
      });
    }
    // A path ending on a list selects the list: value methods then work item by item.
    types.forEach((t) => out.add(t.type));
  }
  return [...out];
}
