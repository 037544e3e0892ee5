/**
 * Reads the problems out of a rules engine's refusal. The RulesEngine contract only says that
 * `load` throws a coded AppError whose details list every problem, so this accepts the lists
 * the catalogue uses (`items`, `problems`, `errors`, `issues`) and the field names engines
 * use for one problem. What comes out is the store's own RulesProblemItem; the HTTP layer
 * maps it to its problem shape, the CLI prints it.
 */
import type { AppError } from '../../shared/errors/index.ts';
import type { RulesProblemItem } from './types.ts';

/**
 * The problems a refusal carries, plus one from a top-level line/column when the details
 * hold no list; one item with the error's own message and code when they hold neither, so a
 * refusal is never shown without a reason.
 * @param err - what the engine threw.
 * @returns at least one problem item.
 */
export function refusalItems(err: AppError): RulesProblemItem[] {
  const items = detailItems(err);
  return items.length > 0 ? items : [{ message: err.message, code: err.code }];
}

/**
 * The per-item problems an error carries in its details (`items`, `problems`, `errors` or
 * `issues`), plus one from a top-level line/column when there is no list. The one reader of
 * problem lists: the HTTP layer maps its result to problem items.
 * @param err - any coded error.
 * @returns the items, possibly none.
 */
export function detailItems(err: AppError): RulesProblemItem[] {
  const d = err.details;
  const list = [d.items, d.problems, d.errors, d.issues].find(Array.isArray) as unknown[] | undefined;
  const items = (list ?? []).map(toItem).filter((i): i is RulesProblemItem => i !== undefined);
  if (items.length === 0 && (typeof d.line === 'number' || typeof d.column === 'number')) {
    const one = toItem({ ...d, message: err.message });
    return one === undefined ? [] : [one];
  }
  return items;
}

/** One problem as an engine gave it: a string, or an object with some of the usual fields. */
function toItem(raw: unknown): RulesProblemItem | undefined {
  if (typeof raw === 'string') {
    return { message: raw };
  }
  if (typeof raw !== 'object' || raw === null) {
    return undefined;
  }
  const r = raw as Record<string, unknown>;
  const text = (k: string): string | undefined => (typeof r[k] === 'string' ? r[k] : undefined);
  const int = (k: string): number | undefined => (Number.isInteger(r[k]) ? (r[k] as number) : undefined);
  const message = text('detail') ?? text('message') ?? text('code') ?? 'is not valid';
  const path = text('location') ?? text('path');
  const pointer = text('pointer');
  const line = int('line');
  const column = int('column') ?? int('col');
  const code = text('code');
  return {
    message,
    ...(line !== undefined ? { line } : {}),
    ...(column !== undefined ? { column } : {}),
    ...(path !== undefined ? { path } : {}),
    ...(pointer !== undefined ? { pointer } : {}),
    ...(code !== undefined ? { code } : {}),
  };
}
