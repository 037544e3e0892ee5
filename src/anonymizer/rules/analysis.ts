/**
 * Finds rules that can never decide an element: either their selector matches nothing any
 * resource can contain, or every element they match (or an ancestor of it) is decided by an
 * earlier rule. Both are mistakes in a rules file (e.g. a `remove` written after a broader
 * `keep`), reported at load instead of discovered in the data.
 *
 * The analysis walks the plan graph of every resource type with the claim inherited from the
 * ancestors, exactly as the engine decides elements; conditional rules (`where`, linkId) may
 * fire but never claim, since they can fail at run time.
 */
import type { FhirSchema } from '../fhir/schema.ts';
import { NO_RULE, createPlanGraph, planEdges } from '../plan/graph.ts';
import type { PlanNode } from '../plan/graph.ts';
import { buildPredicates } from '../plan/predicates.ts';
import type { ProcessorRegistry } from '../processors/registry.ts';
import type { CompiledRules, Rule } from './types.ts';

/** A rule that cannot fire, and the earlier rules that take its elements (when known). */
export interface UnreachableRule {
  readonly rule: Rule;
  readonly kind: 'shadowed' | 'never';
  readonly by: readonly string[];
}

/**
 * Lists the rules that can never fire.
 * @param compiled - the rules (frozen or not).
 * @param schema - the R4 index.
 * @param registry - processors (their scope decides whether a claim covers the subtree).
 * @returns unreachable rules in file order.
 */
export function unreachableRules(
  compiled: CompiledRules,
  schema: FhirSchema,
  registry: ProcessorRegistry,
): UnreachableRule[] {
  const graph = createPlanGraph(compiled, schema, buildPredicates(compiled.rules));
  const byIndex = new Map(compiled.rules.map((r) => [r.index, r]));
  const fired = new Set<number>();
  const blockers = new Map<number, Set<number>>();
  const visited = new Set<string>();
  const stack: [PlanNode, number][] = [];
  for (const t of schema.resourceTypes()) {
    const root = graph.root(t);
    if (root) {
      root.minInside(); // materialises the reachable graph
      stack.push([root, NO_RULE]);
    }
  }
  while (stack.length > 0) {
    const [node, claim] = stack.pop() as [PlanNode, number];
    const key = `${node.id}:${claim}`;
    if (visited.has(key)) {
      continue;
    }
    visited.add(key);
    let eff = claim;
    for (const pr of node.here) {
      if (pr.index < eff) {
        fired.add(pr.index);
        if (!pr.predicate) {
          eff = pr.index;
        }
      } else {
        addTo(blockers, pr.index, eff);
      }
    }
    if (
      eff !== NO_RULE &&
      (registry.get(byIndex.get(eff)?.method ?? '')?.scope === 'value' || eff < node.minInside())
    ) {
      continue; // decided as a whole: nothing below can fire
    }
    for (const [, child] of planEdges(node)) {
      stack.push([child, eff]);
    }
  }
  const matched = new Set<number>();
  for (const n of graph.nodes()) {
    n.here.forEach((pr) => matched.add(pr.index));
  }
  return compiled.rules
    .filter((r) => !fired.has(r.index))
    .map((r) => ({
      rule: r,
      kind: matched.has(r.index) ? 'shadowed' : 'never',
      by: [...(blockers.get(r.index) ?? [])]
        .filter((b) => b !== NO_RULE)
        .sort((a, b) => a - b)
        .map((b) => byIndex.get(b)?.name ?? String(b)),
    }));
}

function addTo(map: Map<number, Set<number>>, key: number, value: number): void {
  let set = map.get(key);
  if (!set) {
    set = new Set();
    map.set(key, set);
  }
  set.add(value);
}
