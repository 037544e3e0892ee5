/**
 * Run-time conditions of rules: `where` on a type selector, and questionnaire / linkId /
 * itemCode on QuestionnaireResponse selectors. Rules without conditions match from the plan
 * alone.
 */
import type { PathSelector, QuestionnaireSelector, Rule, TypeSelector } from '../rules/types.ts';
import type { RulePredicate, WalkState } from './graph.ts';

/**
 * Predicates of the conditional rules, by rule index.
 * @param rules - compiled rules.
 * @returns index -> predicate.
 */
export function buildPredicates(rules: readonly Rule[]): Map<number, RulePredicate> {
  const out = new Map<number, RulePredicate>();
  for (const r of rules) {
    const sel = r.selector;
    if (sel.kind === 'type' && sel.where.length > 0) {
      out.set(r.index, wherePredicate(sel));
    } else if (sel.kind === 'path' && sel.where.length > 0) {
      const test = wherePredicate(sel);
      out.set(r.index, (_value, walk) => test(walk.resource, walk));
    } else if (
      sel.kind === 'questionnaire' &&
      (sel.questionnaire !== undefined || sel.linkIds.length > 0 || sel.itemCodes.length > 0)
    ) {
      out.set(r.index, questionnairePredicate(sel));
    }
  }
  return out;
}

function wherePredicate(sel: TypeSelector | PathSelector): RulePredicate {
  const tests = sel.where.map((w) => ({ path: w.path, values: new Set(w.values) }));
  return (value) => tests.every((t) => valuesAt(value, t.path).some((v) => t.values.has(String(v))));
}

/** Values at a dotted path of JSON keys (arrays flattened). */
function valuesAt(value: unknown, path: readonly string[]): unknown[] {
  let current: unknown[] = [value];
  for (const key of path) {
    const next: unknown[] = [];
    for (const v of current) {
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
        const child = (v as Record<string, unknown>)[key];
        if (Array.isArray(child)) {
          next.push(...(child as unknown[]));
        } else if (child !== undefined) {
          next.push(child);
        }
      }
    }
    current = next;
  }
  return current.filter((v) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean');
}

function questionnairePredicate(sel: QuestionnaireSelector): RulePredicate {
  const linkIds = new Set(sel.linkIds);
  const canonical = sel.questionnaire;
  return (value: unknown, walk: WalkState): boolean => {
    if (canonical !== undefined && !sameCanonical(walk.questionnaire, canonical)) {
      return false;
    }
    const item = sel.target === 'item' ? (value as Record<string, unknown>) : walk.qrItem;
    const linkId = typeof item?.linkId === 'string' ? item.linkId : undefined;
    if (linkIds.size > 0 && (linkId === undefined || !linkIds.has(linkId))) {
      return false;
    }
    if (sel.itemCodes.length > 0) {
      const codes = linkId === undefined ? undefined : walk.itemCodes(linkId);
      return codes !== undefined && sel.itemCodes.some((c) => codes.has(c));
    }
    return true;
  };
}

/** `url` matches `url` and `url|version`; `url|version` only that version. */
function sameCanonical(actual: string | undefined, wanted: string): boolean {
  if (actual === undefined) {
    return false;
  }
  return wanted.includes('|') ? actual === wanted : actual === wanted || actual.startsWith(wanted + '|');
}
