/**
 * `createAnonymizer`: binds compiled rules and a key into an Anonymizer. The plan graph is
 * built once per anonymizer (lazily per resource type) and reused by every batch; a batch only
 * adds what is specific to it (Bundle fullUrls, the PHI dictionary for free text, the
 * Questionnaires it carries). The function is pure: no I/O, no clock, no randomness.
 */
import type { Questionnaire, QuestionnaireItem, Resource } from '@medplum/fhirtypes';
import { AppError, DEID_ERR_INTERNAL, DEID_ERR_TOO_DEEP } from '../../shared/errors/index.ts';
import { MAX_RESOURCE_DEPTH, nestsDeeperThan } from '../../shared/json-depth.ts';
import { fhirSchema } from '../fhir/schema.ts';
import type { FhirSchema } from '../fhir/schema.ts';
import { createPlanGraph } from '../plan/graph.ts';
import type { PlanGraph } from '../plan/graph.ts';
import { buildPredicates } from '../plan/predicates.ts';
import { PROCESSORS } from '../processors/registry.ts';
import type { ProcessorRegistry } from '../processors/registry.ts';
import type { CompiledRules } from '../rules/types.ts';
import type { Anonymizer, DeidContext, DeidOutcome, DeidReport } from '../types.ts';
import { collectPhi } from './free-text.ts';
import { makeKey } from './key.ts';
import type { DeidKey } from './key.ts';
import { createMarker } from './mark.ts';
import { createPseudonymizer } from './pseudonym.ts';
import type { Pseudonymizer } from './pseudonym.ts';
import { patientKey, pseudonymousId } from './references.ts';
import type { EntryTarget, ReferenceEnv } from './references.ts';
import { PathTries, ReportBuilder } from './report.ts';
import type { BatchEnv } from './scope.ts';
import { Walker } from './walk.ts';
import type { Marker, RuntimeRule } from './walk.ts';

/** Options of createAnonymizer. */
export interface AnonymizerOptions {
  /** Rules from loadRules / loadRulesFile. */
  readonly rules: CompiledRules;
  /** The HMAC key (deidKeyFrom). */
  readonly key: DeidKey;
  /** Questionnaires whose item codes `itemCode` selectors match (those in a batch are used too). */
  readonly questionnaires?: readonly Questionnaire[];
  /** Processor registry. @defaultValue the built-in methods */
  readonly registry?: ProcessorRegistry;
}

/** Item codes by questionnaire canonical (with and without `|version`) and linkId. */
type QuestionnaireIndex = Map<string, Map<string, Set<string>>>;

/**
 * Creates an anonymizer.
 * @param options - rules, key, questionnaires.
 * @returns the anonymizer.
 * @throws AppError DEID_ERR_KEY_INVALID for a key that is too short or badly named.
 */
export function createAnonymizer(options: AnonymizerOptions): Anonymizer {
  const key = makeKey(options.key.id, options.key.secret);
  const rules = options.rules;
  const schema = fhirSchema();
  const hmac = createPseudonymizer(key.secret);
  const graph = createPlanGraph(rules, schema, buildPredicates(rules.rules));
  const bound: BoundRules = {
    rules,
    schema,
    hmac,
    graph,
    runtime: runtimeRules(rules, options.registry ?? PROCESSORS),
    scrubs: rules.rules.some((r) => r.method === 'scrub'),
    exemptTypes: new Set(rules.settings.references.exemptTypes),
    baseQuestionnaires: indexQuestionnaires(options.questionnaires ?? []),
    mark: createMarker(rules.settings, rules.version, key.id),
    tries: new PathTries(),
  };
  return Object.freeze({
    rulesVersion: rules.version,
    keyId: key.id,
    deidentify: (resources: readonly Resource[], context: DeidContext) => deidentify(bound, resources, context),
    pseudonymousId: (instanceId: string, resourceType: string, id: string): string =>
      pseudonymousId(refsFor(bound, instanceId, new Map()), resourceType, id),
  });
}

/** What an anonymizer binds once and every batch reuses. */
interface BoundRules {
  readonly rules: CompiledRules;
  readonly schema: FhirSchema;
  readonly hmac: Pseudonymizer;
  readonly graph: PlanGraph;
  /** By rule index. */
  readonly runtime: readonly RuntimeRule[];
  /** Some rule scrubs free text: batches need the PHI dictionary. */
  readonly scrubs: boolean;
  readonly exemptTypes: ReadonlySet<string>;
  readonly baseQuestionnaires: QuestionnaireIndex;
  readonly mark: Marker;
  readonly tries: PathTries;
}

/** Each rule with its processor (throws for a method the registry lacks). */
function runtimeRules(rules: CompiledRules, registry: ProcessorRegistry): RuntimeRule[] {
  const runtime: RuntimeRule[] = [];
  for (const r of rules.rules) {
    const processor = registry.require(r.method);
    runtime[r.index] = {
      rule: r,
      processor,
      options: r.options,
      subtree: processor.scope === 'subtree',
      drops: r.method === 'remove' || r.method === 'redact',
    };
  }
  return runtime;
}

function refsFor(bound: BoundRules, instanceId: string, fullUrls: ReadonlyMap<string, EntryTarget>): ReferenceEnv {
  return {
    instanceId,
    hmac: bound.hmac,
    exemptTypes: bound.exemptTypes,
    fullUrls,
    isResourceType: (t) => bound.schema.isResourceType(t),
    cache: new Map(),
    identifiers: new Map(),
  };
}

/** A failed outcome: codes, types and a pseudonymous id only, never a value. */
function failure(bound: BoundRules, r: Resource, refs: ReferenceEnv, code: string, location: string): DeidOutcome {
  const sourceType = typeof r?.resourceType === 'string' ? r.resourceType : 'unknown';
  const id =
    typeof r?.id === 'string' && bound.schema.isResourceType(sourceType) ? pseudonymousId(refs, sourceType, r.id) : '';
  return { ok: false, sourceType, pseudonymousId: id, code, location };
}

function deidentify(
  bound: BoundRules,
  resources: readonly Resource[],
  context: DeidContext,
): { outcomes: DeidOutcome[]; report: DeidReport } {
  if (typeof context.instanceId !== 'string' || context.instanceId === '') {
    throw DEID_ERR_INTERNAL.create('context.instanceId');
  }
  const instanceId = context.instanceId;
  const report = new ReportBuilder(bound.runtime, bound.tries);
  // A resource nested past the cap is refused before anything recursive (the batch context
  // included) looks at it: thousands of levels would exhaust the stack and fail the batch.
  const deep = resources.map((r) => nestsDeeperThan(r, MAX_RESOURCE_DEPTH));
  const usable = resources.filter((_, i) => !deep[i]);
  const related = (context.related ?? []).filter((r) => !nestsDeeperThan(r, MAX_RESOURCE_DEPTH));
  let done: DeidOutcome[];
  try {
    done = runBatch(bound, usable, related, instanceId, report);
  } catch {
    done = runEachAlone(bound, usable, related, instanceId, report);
  }
  let next = 0;
  const outcomes = resources.map((r, i): DeidOutcome => {
    if (!deep[i]) {
      return done[next++]!;
    }
    report.discard(DEID_ERR_TOO_DEEP.code);
    const where = typeof r?.resourceType === 'string' ? r.resourceType : 'resource';
    return failure(bound, r, refsFor(bound, instanceId, new Map()), DEID_ERR_TOO_DEEP.code, where);
  });
  return { outcomes, report: report.build() };
}

/** The shared context itself failed: each resource alone, so one bad resource fails only itself. */
function runEachAlone(
  bound: BoundRules,
  usable: readonly Resource[],
  related: readonly Resource[],
  instanceId: string,
  report: ReportBuilder,
): DeidOutcome[] {
  return usable.map((r) => {
    try {
      return runBatch(bound, [r], related, instanceId, report)[0]!;
    } catch {
      report.discard(DEID_ERR_INTERNAL.code);
      return failure(bound, r, refsFor(bound, instanceId, new Map()), DEID_ERR_INTERNAL.code, 'batch context');
    }
  });
}

/** De-identifies resources that share one batch context (dictionary, offsets, bundle fullUrls). */
function runBatch(
  bound: BoundRules,
  resources: readonly Resource[],
  related: readonly Resource[],
  instanceId: string,
  report: ReportBuilder,
): DeidOutcome[] {
  const { rules, schema } = bound;
  const all = [...resources, ...related];
  const refs = refsFor(bound, instanceId, collectFullUrls(all));
  const batch: BatchEnv = {
    refs,
    settings: rules.settings,
    schema,
    dictionary: bound.scrubs ? collectPhi(all, rules.settings.freeText.minTermLength) : undefined,
    knownPatients: knownPatients(all, refs),
    offsets: new Map(),
    shifted: new Map(),
  };
  const questionnaires = withBatchQuestionnaires(bound.baseQuestionnaires, all);
  const walker = new Walker({
    graph: bound.graph,
    rules: bound.runtime,
    batch,
    report,
    mark: bound.mark,
    itemCodes: (q, linkId) => (q === undefined ? undefined : questionnaires.get(q)?.get(linkId)),
  });
  return resources.map((r) => walkOne(bound, walker, refs, report, r));
}

/** One resource of a batch: its outcome, and its report entries kept or discarded with it. */
function walkOne(
  bound: BoundRules,
  walker: Walker,
  refs: ReferenceEnv,
  report: ReportBuilder,
  r: Resource,
): DeidOutcome {
  const sourceType = typeof r?.resourceType === 'string' ? r.resourceType : 'unknown';
  try {
    const out = walker.top(r);
    report.commit();
    return { ok: true, sourceType, resource: out as unknown as Resource };
  } catch (err) {
    const code = err instanceof AppError && err.code.startsWith('DEID_ERR_') ? err.code : DEID_ERR_INTERNAL.code;
    const location =
      err instanceof AppError && typeof err.details.location === 'string' ? err.details.location : walker.location();
    report.discard(code);
    return failure(bound, r, refs, code, location);
  }
}

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/**
 * fullUrl -> (type, id) of every Bundle entry in the input, nested bundles included; and
 * `urn:uuid:<id>` for top-level resources whose id is a UUID (entries of a transaction passed
 * one by one still resolve each other's `urn:uuid:` references, as they would in the Bundle).
 */
function collectFullUrls(resources: readonly unknown[]): Map<string, EntryTarget> {
  const out = new Map<string, EntryTarget>();
  for (const r of resources as ({ resourceType?: unknown; id?: unknown } | null)[]) {
    if (typeof r?.resourceType === 'string' && typeof r.id === 'string' && UUID.test(r.id)) {
      out.set(`urn:uuid:${r.id}`, { type: r.resourceType, id: r.id });
    }
  }
  const visit = (r: unknown): void => {
    const entries =
      (r as { resourceType?: unknown; entry?: unknown } | null)?.resourceType === 'Bundle'
        ? (r as { entry?: unknown }).entry
        : undefined;
    if (!Array.isArray(entries)) {
      return;
    }
    for (const e of entries as { fullUrl?: unknown; resource?: { resourceType?: unknown; id?: unknown } }[]) {
      const res = e?.resource;
      if (typeof e?.fullUrl === 'string' && typeof res?.resourceType === 'string') {
        out.set(
          e.fullUrl,
          typeof res.id === 'string' ? { type: res.resourceType, id: res.id } : { type: res.resourceType },
        );
      }
      visit(res);
    }
  };
  resources.forEach(visit);
  return out;
}

/** Patient keys of the Patients the input (and related resources) carry, in bundles too. */
function knownPatients(resources: readonly unknown[], refs: ReferenceEnv): Set<string> {
  const out = new Set<string>();
  const visit = (r: unknown): void => {
    const res = r as { resourceType?: unknown; id?: unknown; entry?: unknown } | null;
    if (res?.resourceType === 'Patient' && typeof res.id === 'string') {
      out.add(patientKey(refs, res.id));
    }
    if (res?.resourceType === 'Bundle' && Array.isArray(res.entry)) {
      (res.entry as { resource?: unknown }[]).forEach((e) => visit(e?.resource));
    }
  };
  resources.forEach(visit);
  return out;
}

function indexQuestionnaires(list: readonly unknown[]): QuestionnaireIndex {
  const index: QuestionnaireIndex = new Map();
  for (const q of list as Questionnaire[]) {
    if (q?.resourceType !== 'Questionnaire' || typeof q.url !== 'string') {
      continue;
    }
    const items = new Map<string, Set<string>>();
    const visit = (item: QuestionnaireItem): void => {
      const codes = new Set<string>();
      for (const c of item.code ?? []) {
        if (typeof c.code === 'string') {
          codes.add(`${c.system ?? ''}|${c.code}`);
          codes.add(`*|${c.code}`);
        }
      }
      if (codes.size > 0 && typeof item.linkId === 'string') {
        items.set(item.linkId, codes);
      }
      (item.item ?? []).forEach(visit);
    };
    (q.item ?? []).forEach(visit);
    index.set(q.version ? `${q.url}|${q.version}` : q.url, items);
    if (!index.has(q.url)) {
      index.set(q.url, items);
    }
    if (typeof q.id === 'string' && !index.has(`Questionnaire/${q.id}`)) {
      index.set(`Questionnaire/${q.id}`, items); // QRs written as a relative reference
    }
  }
  return index;
}

function withBatchQuestionnaires(base: QuestionnaireIndex, resources: readonly unknown[]): QuestionnaireIndex {
  const found: unknown[] = [];
  const visit = (r: unknown): void => {
    const res = r as { resourceType?: unknown; entry?: unknown } | null;
    if (res?.resourceType === 'Questionnaire') {
      found.push(res);
    } else if (res?.resourceType === 'Bundle' && Array.isArray(res.entry)) {
      (res.entry as { resource?: unknown }[]).forEach((e) => visit(e?.resource));
    }
  };
  resources.forEach(visit);
  if (found.length === 0) {
    return base;
  }
  const merged = new Map(base);
  for (const [k, v] of indexQuestionnaires(found)) {
    merged.set(k, v);
  }
  return merged;
}
