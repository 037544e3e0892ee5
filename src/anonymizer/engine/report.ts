/**
 * The report of one batch: how many elements each rule decided and which method ran on which
 * element path (`Patient.name`, `Observation.subject.reference`); counts and paths, never
 * values. Firings of a resource that then fails are discarded with it.
 *
 * Paths are kept as a trie of element names that the walker descends along with the resource,
 * so a firing costs two array pushes and path strings are built once per distinct path, when
 * the report is built.
 */
import type { DeidReport } from '../types.ts';
import type { RuntimeRule } from './walk.ts';

/** Rule name used in the report for elements allow-list mode dropped. */
export const ALLOW_LIST_RULE = '(allowListMode)';
/** Rule name used in the report for unknown elements dropped (unknownElements: remove). */
export const UNKNOWN_ELEMENT_RULE = '(unknownElements)';

const ALLOW_LIST = -1;
const UNKNOWN = -2;

/** One element path (index-free) below a resource type. */
export class PathTrie {
  readonly key: string;
  readonly parent: PathTrie | undefined;
  #children: Map<string, PathTrie> | undefined;
  #path: string | undefined;

  constructor(key: string, parent: PathTrie | undefined) {
    this.key = key;
    this.parent = parent;
  }

  /**
   * The path one element name further down.
   * @param key - JSON key.
   */
  child(key: string): PathTrie {
    this.#children ??= new Map();
    let c = this.#children.get(key);
    if (!c) {
      c = new PathTrie(key, this);
      this.#children.set(key, c);
    }
    return c;
  }

  /** `Type.a.b` (built once). */
  path(): string {
    this.#path ??= this.parent ? `${this.parent.path()}.${this.key}` : this.key;
    return this.#path;
  }
}

/** The path tries of every resource type; shared by the batches of one anonymizer. */
export class PathTries {
  readonly #roots = new Map<string, PathTrie>();

  /**
   * The path trie of a resource type.
   * @param resourceType - type of the resource being walked.
   */
  root(resourceType: string): PathTrie {
    let r = this.#roots.get(resourceType);
    if (!r) {
      r = new PathTrie(resourceType, undefined);
      this.#roots.set(resourceType, r);
    }
    return r;
  }
}

/** Collects firings per resource and commits them when the resource succeeds. */
export class ReportBuilder {
  readonly #rules: readonly RuntimeRule[];
  readonly #tries: PathTries;
  readonly #counts = new Map<PathTrie, Map<number, number>>();
  readonly #failed = new Map<string, number>();
  #pending: (number | PathTrie)[] = [];

  constructor(rules: readonly RuntimeRule[], tries: PathTries) {
    this.#rules = rules;
    this.#tries = tries;
  }

  /**
   * The path trie of a resource type.
   * @param resourceType - type of the resource being walked.
   */
  root(resourceType: string): PathTrie {
    return this.#tries.root(resourceType);
  }

  /**
   * A rule decided the element at `at`.
   * @param ruleIndex - the rule.
   * @param at - element path.
   */
  fired(ruleIndex: number, at: PathTrie): void {
    this.#pending.push(ruleIndex, at);
  }

  /** Allow-list mode dropped the element at `at`. */
  allowListDrop(at: PathTrie): void {
    this.#pending.push(ALLOW_LIST, at);
  }

  /** An unknown element was dropped (unknownElements: remove). */
  unknownDropped(at: PathTrie): void {
    this.#pending.push(UNKNOWN, at);
  }

  /** Keeps the firings of the resource just walked. */
  commit(): void {
    const p = this.#pending;
    for (let i = 0; i < p.length; i += 2) {
      const at = p[i + 1] as PathTrie;
      let counts = this.#counts.get(at);
      if (!counts) {
        counts = new Map();
        this.#counts.set(at, counts);
      }
      counts.set(p[i] as number, (counts.get(p[i] as number) ?? 0) + 1);
    }
    p.length = 0;
  }

  /**
   * Drops the firings of a resource that failed and counts the failure.
   * @param code - the error code.
   */
  discard(code: string): void {
    this.#pending.length = 0;
    this.#failed.set(code, (this.#failed.get(code) ?? 0) + 1);
  }

  /** The report, keys sorted (deterministic output). */
  build(): DeidReport {
    const ruleCounts = new Map<string, number>();
    const pathMethods = new Map<string, Set<string>>();
    for (const [node, counts] of this.#counts) {
      const path = node.path();
      let methods = pathMethods.get(path);
      if (!methods) {
        methods = new Set();
        pathMethods.set(path, methods);
      }
      for (const [index, n] of counts) {
        const name =
          index === ALLOW_LIST
            ? ALLOW_LIST_RULE
            : index === UNKNOWN
              ? UNKNOWN_ELEMENT_RULE
              : (this.#rules[index]?.rule.name ?? String(index));
        ruleCounts.set(name, (ruleCounts.get(name) ?? 0) + n);
        methods.add(index < 0 ? 'remove' : (this.#rules[index]?.rule.method ?? '?'));
      }
    }
    return {
      rules: sortedRecord(ruleCounts),
      paths: Object.fromEntries(
        [...pathMethods.keys()].sort().map((k) => [k, [...(pathMethods.get(k) as Set<string>)].sort().join(',')]),
      ),
      failed: sortedRecord(this.#failed),
    };
  }
}

function sortedRecord(map: ReadonlyMap<string, number>): Record<string, number> {
  return Object.fromEntries([...map.keys()].sort().map((k) => [k, map.get(k) as number]));
}
