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
  /** Number of this path in its PathTries (a dense index). */
  readonly id: number;
  /** Position of the path in the sorted order of all paths (see PathTries.ranked). */
  rank = 0;
  readonly #all: PathTries;
  #children: Map<string, PathTrie> | undefined;
  #path: string | undefined;

  constructor(key: string, parent: PathTrie | undefined, all: PathTries) {
    this.key = key;
    this.parent = parent;
    this.#all = all;
    this.id = all.register(this);
  }

  /**
   * The path one element name further down.
   * @param key - JSON key.
   */
  child(key: string): PathTrie {
    this.#children ??= new Map();
    let c = this.#children.get(key);
    if (!c) {
      c = new PathTrie(key, this, this.#all);
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
  readonly #all: PathTrie[] = [];
  /** Tries by rank; rebuilt when paths were added since. */
  #byRank: PathTrie[] = [];

  /**
   * Gives a new trie its id.
   * @param trie - the new trie.
   * @returns its id.
   */
  register(trie: PathTrie): number {
    this.#all.push(trie);
    return this.#all.length - 1;
  }

  /**
   * The trie with this id.
   * @param id - PathTrie.id.
   */
  byId(id: number): PathTrie {
    return this.#all[id] as PathTrie;
  }

  /**
   * Tries by rank (sorted by path), ranks up to date. Paths are only added, and after the first
   * batches rarely, so the report sorts numbers instead of strings.
   */
  ranked(): readonly PathTrie[] {
    if (this.#byRank.length !== this.#all.length) {
      this.#byRank = [...this.#all].sort((a, b) => (a.path() < b.path() ? -1 : a.path() > b.path() ? 1 : 0));
      this.#byRank.forEach((t, i) => {
        t.rank = i;
      });
    }
    return this.#byRank;
  }

  /**
   * The path trie of a resource type.
   * @param resourceType - type of the resource being walked.
   */
  root(resourceType: string): PathTrie {
    let r = this.#roots.get(resourceType);
    if (!r) {
      r = new PathTrie(resourceType, undefined, this);
      this.#roots.set(resourceType, r);
    }
    return r;
  }
}

/** Collects firings per resource and commits them when the resource succeeds. */
export class ReportBuilder {
  readonly #rules: readonly RuntimeRule[];
  readonly #tries: PathTries;
  /** Slots per path in the count keys: one per rule plus ALLOW_LIST and UNKNOWN. */
  readonly #stride: number;
  /** Counts by `trie.id * stride + rule + 2`. */
  readonly #counts = new Map<number, number>();
  readonly #failed = new Map<string, number>();
  #pending: (number | PathTrie)[] = [];

  constructor(rules: readonly RuntimeRule[], tries: PathTries) {
    this.#rules = rules;
    this.#tries = tries;
    this.#stride = rules.length + 2;
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
    const counts = this.#counts;
    const stride = this.#stride;
    for (let i = 0; i < p.length; i += 2) {
      const k = (p[i + 1] as PathTrie).id * stride + (p[i] as number) + 2;
      counts.set(k, (counts.get(k) ?? 0) + 1);
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
    const methodsByTrie = new Map<PathTrie, Set<string>>();
    const stride = this.#stride;
    for (const [k, n] of this.#counts) {
      const node = this.#tries.byId(Math.floor(k / stride));
      const index = (k % stride) - 2;
      let methods = methodsByTrie.get(node);
      if (!methods) {
        methods = new Set();
        methodsByTrie.set(node, methods);
      }
      const name =
        index === ALLOW_LIST
          ? ALLOW_LIST_RULE
          : index === UNKNOWN
            ? UNKNOWN_ELEMENT_RULE
            : (this.#rules[index]?.rule.name ?? String(index));
      ruleCounts.set(name, (ruleCounts.get(name) ?? 0) + n);
      methods.add(index < 0 ? 'remove' : (this.#rules[index]?.rule.method ?? '?'));
    }
    const byRank = this.#tries.ranked();
    const ranks = Int32Array.from(methodsByTrie.keys(), (t) => t.rank).sort();
    const paths: Record<string, string> = {};
    for (const r of ranks) {
      const node = byRank[r] as PathTrie;
      const methods = methodsByTrie.get(node) as Set<string>;
      paths[node.path()] =
        methods.size === 1 ? (methods.values().next().value as string) : [...methods].sort().join(',');
    }
    return { rules: sortedRecord(ruleCounts), paths, failed: sortedRecord(this.#failed) };
  }
}

function sortedRecord(map: ReadonlyMap<string, number>): Record<string, number> {
  return Object.fromEntries([...map.keys()].sort().map((k) => [k, map.get(k) as number]));
}
