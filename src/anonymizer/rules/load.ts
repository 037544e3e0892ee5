/**
 * The rules load pipeline: YAML (duplicate keys rejected) -> strict schema -> semantic checks
 * (types, elements, JSONPaths, methods and their options, settings) -> defaults -> analysis
 * of rules that can never fire -> deep freeze. Every problem is collected with its line and
 * column and thrown at once as CFG_ERR_RULES_INVALID; nothing is half-loaded, so a broken
 * file can never replace rules in use.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  CFG_ERR_RULES_INVALID,
  CFG_ERR_RULES_NEVER_MATCHES,
  CFG_ERR_RULES_SETTING,
  CFG_ERR_RULES_SHADOWED,
  CFG_ERR_RULES_UNREADABLE,
} from '../../shared/errors/index.ts';
import type { AppError } from '../../shared/errors/index.ts';
import { fhirSchema } from '../fhir/schema.ts';
import type { FhirSchema } from '../fhir/schema.ts';
import { PROCESSORS } from '../processors/registry.ts';
import type { ProcessorRegistry } from '../processors/registry.ts';
import { unreachableRules } from './analysis.ts';
import { compileRules, problemSink } from './compile.ts';
import type { ProblemSink } from './compile.ts';
import { documentSchema, settingsSchema } from './schema.ts';
import type { CompiledRules, Rule, RulesProblem, RulesSettings } from './types.ts';
import { parseYamlSource } from './yaml-source.ts';
import { issueProblems } from './zod-problems.ts';
import { deepFreeze } from '../../shared/deep-freeze.ts';

/** Options of loadRules. */
export interface LoadRulesOptions {
  /** Name of the text's origin in messages (a file path). @defaultValue 'rules' */
  readonly source?: string;
  /** Processor registry. @defaultValue the built-in methods */
  readonly registry?: ProcessorRegistry;
}

/**
 * Loads a rules text.
 * @param text - YAML rules.
 * @param options - source name, registry.
 * @returns the compiled, deeply frozen rules.
 * @throws AppError CFG_ERR_RULES_INVALID with `details.problems` (every problem, line:column).
 */
export function loadRules(text: string, options: LoadRulesOptions = {}): CompiledRules {
  const source = options.source ?? 'rules';
  const registry = options.registry ?? PROCESSORS;
  const schema = fhirSchema();
  const problems: RulesProblem[] = [];
  const yaml = parseYamlSource(text);
  problems.push(...yaml.problems);
  if (problems.length > 0) {
    throw rulesInvalid(source, problems);
  }
  const sink = problemSink(yaml, problems);
  const doc = documentSchema.safeParse(yaml.data);
  if (!doc.success) {
    problems.push(...issueProblems(doc.error.issues, [], yaml));
  }
  const data = (typeof yaml.data === 'object' && yaml.data !== null ? yaml.data : {}) as { rules?: unknown };
  const rawRules = Array.isArray(data.rules) ? (data.rules as unknown[]) : [];
  const rules = compileRules(rawRules, { schema, registry, source: yaml, sink });
  if (!doc.success) {
    throw rulesInvalid(source, problems);
  }
  checkSettings(doc.data.settings, rules, schema, sink);
  if (problems.length > 0) {
    throw rulesInvalid(source, problems);
  }
  const compiled: CompiledRules = {
    source,
    version: rulesVersion(doc.data.profile, doc.data.settings, rules),
    profile: doc.data.profile,
    ...(doc.data.description === undefined ? {} : { description: doc.data.description }),
    settings: doc.data.settings,
    rules,
    warnings: [],
  };
  for (const u of unreachableRules(compiled, schema, registry)) {
    const def = u.kind === 'shadowed' ? CFG_ERR_RULES_SHADOWED : CFG_ERR_RULES_NEVER_MATCHES;
    const why =
      u.kind === 'never'
        ? 'no resource can contain such an element'
        : u.by.length > 0
          ? `earlier rule(s) ${u.by.join(', ')} decide every element it selects`
          : 'earlier rules decide every element it selects (or an element around it)';
    sink.add(def, [u.rule.name, why], ['rules', u.rule.index]);
  }
  if (problems.length > 0) {
    throw rulesInvalid(source, problems);
  }
  return deepFreeze(compiled);
}

/** Options of loadRulesFile. */
export interface LoadRulesFileOptions extends LoadRulesOptions {
  /** Reads the file. @defaultValue fs.readFileSync(path, 'utf8') */
  readonly readFile?: (path: string) => string;
}

/**
 * Reads and loads a rules file.
 * @param path - file path (also the source name in messages).
 * @param options - reader, registry.
 * @returns the compiled rules.
 * @throws AppError CFG_ERR_RULES_UNREADABLE or CFG_ERR_RULES_INVALID.
 */
export function loadRulesFile(path: string, options: LoadRulesFileOptions = {}): CompiledRules {
  const read = options.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  let text: string;
  try {
    text = read(path);
  } catch (err) {
    const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : 'read error';
    throw CFG_ERR_RULES_UNREADABLE.createWith({ location: path }, [path, code], { cause: err });
  }
  return loadRules(text, { ...options, source: options.source ?? path });
}

function checkSettings(settings: RulesSettings, rules: readonly Rule[], schema: FhirSchema, sink: ProblemSink): void {
  settings.references.exemptTypes.forEach((t, i) => {
    if (!schema.isResourceType(t)) {
      sink.add(CFG_ERR_RULES_SETTING, [`${t} is not a resource type`], ['settings', 'references', 'exemptTypes', i]);
    }
  });
  const needsReference = rules.find((r) => r.method === 'generalize' && (r.options as { to?: string }).to === 'year');
  if (needsReference && settings.ages.referenceDate === undefined) {
    sink.add(
      CFG_ERR_RULES_SETTING,
      [
        `rule ${needsReference.name} generalises dates to a year: settings.ages.referenceDate is required (ages are never computed against the clock)`,
      ],
      ['rules', needsReference.index],
    );
  }
  if (settings.ages.referenceDate !== undefined && Number.isNaN(Date.parse(settings.ages.referenceDate))) {
    sink.add(
      CFG_ERR_RULES_SETTING,
      ['settings.ages.referenceDate is not a calendar date'],
      ['settings', 'ages', 'referenceDate'],
    );
  }
}

/** Short hash of what changes behaviour (not comments or descriptions). */
function rulesVersion(profile: string, settings: RulesSettings, rules: readonly Rule[]): string {
  const canonical = JSON.stringify({
    profile,
    settings,
    rules: rules.map((r) => ({ name: r.name, method: r.method, options: r.options, selector: r.selector })),
  });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/**
 * The aggregate error: one message listing `source:line:column code message` per problem.
 * @param source - file name.
 * @param problems - every problem.
 * @returns the error to throw.
 */
export function rulesInvalid(source: string, problems: readonly RulesProblem[]): AppError {
  const sorted = [...problems].sort((a, b) => a.line - b.line || a.column - b.column);
  const lines = sorted.map((p) => `  ${source}:${p.line}:${p.column} ${p.code} ${p.message}`).join('\n');
  return CFG_ERR_RULES_INVALID.createWith({ location: source, problems: sorted }, [source, sorted.length, lines]);
}

// The schema's settings defaults are exported for callers building rules programmatically.
export const DEFAULT_SETTINGS: RulesSettings = deepFreeze(settingsSchema.parse({}));
