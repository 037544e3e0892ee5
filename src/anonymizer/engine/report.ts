/**
 * The report of one batch: how many elements each rule decided and which method ran on which
 * element path (`Patient.name`, `Observation.subject.reference`); counts and paths, never
 * values. Firings of a resource that then fails are discarded with it.
 */
import type { DeidReport } from '../types.ts';
import type { FiringSink, RuntimeRule } from './walk.ts';

/** Rule name used in the report for elements allow-list mode dropped. */
export const ALLOW_LIST_RULE = '(allowListMode)';
/** Rule name used in the report for unknown elements dropped (unknownElements: remove). */
export const UNKNOWN_ELEMENT_RULE = '(unknownElements)';

/** Collects firings per resource and commits them when the resource succeeds. */
export class ReportBuilder implements FiringSink {
  readonly #rules = new Map<string, number>();
  readonly #paths = new Map<string, Set<string>>();
  readonly #failed = new Map<string, number>();
  #pending: [string, string, string][] = [];

  fired(rule: RuntimeRule, path: string): void {
    this.#pending.push([rule.rule.name, rule.rule.method, path]);
  }

  allowListDrop(path: string): void {
    this.#pending.push([ALLOW_LIST_RULE, 'remove', path]);
  }

  unknownDropped(path: string): void {
    this.#pending.push([UNKNOWN_ELEMENT_RULE, 'remove', path]);
  }

  /** Keeps the firings of the resource just walked. */
  commit(): void {
    for (const [name, method, path] of this.#pending) {
      this.#rules.set(name, (this.#rules.get(name) ?? 0) + 1);
      let methods = this.#paths.get(path);
      if (!methods) {
        methods = new Set();
        this.#paths.set(path, methods);
      }
      methods.add(method);
    }
    this.#pending = [];
  }

  /**
   * Drops the firings of a resource that failed and counts the failure.
   * @param code - the error code.
   */
  discard(code: string): void {
    this.#pending = [];
    this.#failed.set(code, (this.#failed.get(code) ?? 0) + 1);
  }

  /** The report, keys sorted (deterministic output). */
  build(): DeidReport {
    const rules: Record<string, number> = {};
    for (const k of [...this.#rules.keys()].sort()) {
      rules[k] = this.#rules.get(k) as number;
    }
    const paths: Record<string, string> = {};
    for (const k of [...this.#paths.keys()].sort()) {
      paths[k] = [...(this.#paths.get(k) as Set<string>)].sort().join(',');
    }
    const failed: Record<string, number> = {};
    for (const k of [...this.#failed.keys()].sort()) {
      failed[k] = this.#failed.get(k) as number;
    }
    return { rules, paths, failed };
  }
}
