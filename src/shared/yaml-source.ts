/**
 * YAML with positions, for every configuration file the service reads (the rules, the instance
 * registry): text -> plain data, the YAML document (edits that keep comments go through it),
 * syntax errors and repeated keys with their line and column, and `locate(path)` for any later
 * problem. Duplicate keys are errors (YAML would silently keep one). Everything here is linear
 * in the text: one walk with a Set per map for duplicates, an index per map for locating.
 * Callers turn the neutral problems into their own coded errors.
 */
import { LineCounter, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document, Node as YamlNode, Pair, YAMLMap } from 'yaml';

/** Path inside the document: keys and sequence indices. */
export type DocPath = readonly (string | number)[];

/** A syntax error or a repeated key, where it is. */
export interface YamlProblem {
  readonly kind: 'syntax' | 'duplicate-key';
  /** The parser's first line for syntax errors; the repeated key's name for duplicates. */
  readonly detail: string;
  readonly line: number;
  readonly column: number;
}

/** Options of {@link parseYamlSource}. */
export interface YamlSourceOptions {
  /**
   * Most alias expansions (0 refuses aliases); against alias bombs.
   * @defaultValue 50
   */
  readonly maxAliasCount?: number;
}

/** A parsed YAML text. */
export interface YamlSource {
  /** The data (undefined when the text has problems or could not be resolved). */
  readonly data: unknown;
  /** The document, for comment-preserving edits. */
  readonly document: Document;
  /** Syntax and duplicate-key problems, in text order. */
  readonly problems: readonly YamlProblem[];
  /**
   * Line and column of a value (or of the key itself with `onKey`).
   * @param path - document path.
   * @param onKey - point at the last key rather than its value.
   */
  locate(path: DocPath, onKey?: boolean): { line: number; column: number };
}

/**
 * Parses YAML, collecting syntax errors and duplicate keys with their positions.
 * @param text - the YAML text.
 * @param options - alias limit.
 * @returns data, document, problems and a locator.
 */
export function parseYamlSource(text: string, options: YamlSourceOptions = {}): YamlSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: false, prettyErrors: false, strict: true });
  // Duplicate keys are found here with one Set per map: the parser's own check (`uniqueKeys`)
  // compares each key with every earlier one, quadratic in a map's size (40,000 keys: 30 s).
  const duplicates = duplicateKeys(doc);
  let keys: ReadonlyMap<number, string> | undefined;
  const keyIndex = (): ReadonlyMap<number, string> => (keys ??= keyOffsets(doc));
  const found = [
    ...doc.errors.map((e) => ({ offset: e.pos[0], duplicate: e.code === 'DUPLICATE_KEY', message: e.message })),
    ...duplicates.map((offset) => ({ offset, duplicate: true, message: '' })),
  ].sort((a, b) => a.offset - b.offset);
  const problems: YamlProblem[] = found.map((e) => {
    const pos = lineCounter.linePos(e.offset);
    return e.duplicate
      ? { kind: 'duplicate-key', detail: duplicateKeyName(e.offset, keyIndex), line: pos.line, column: pos.col }
      : { kind: 'syntax', detail: firstLine(e.message), line: pos.line, column: pos.col };
  });
  let data: unknown;
  if (problems.length === 0) {
    try {
      data = doc.toJS({ maxAliasCount: options.maxAliasCount ?? 50 }) as unknown;
    } catch (err) {
      // Alias errors surface only when resolving (an alias before its anchor, alias bombs).
      const detail = err instanceof Error ? firstLine(err.message) : 'unreadable document';
      problems.push({ kind: 'syntax', detail, line: 1, column: 1 });
    }
  }
  const locate = (path: DocPath, onKey = false): { line: number; column: number } => {
    const offset = offsetOf(doc, path, onKey);
    const p = lineCounter.linePos(offset);
    return { line: p.line, column: p.col };
  };
  return { data, document: doc, problems, locate };
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}

function duplicateKeyName(offset: number, index: () => ReadonlyMap<number, string>): string {
  // The parser reports the offset of the repeated key; name the key found there.
  return index().get(offset) ?? '(key)';
}

/** Offsets of every repeated key (the second and later occurrences), in one walk. */
function duplicateKeys(doc: Document): number[] {
  const out: number[] = [];
  const stack: unknown[] = [doc.contents];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      const seen = new Set<unknown>();
      for (const pair of node.items) {
        const k = pair.key as YamlNode | null;
        const id = isScalar(k) ? k.value : String(k);
        if (seen.has(id)) {
          out.push(k?.range?.[0] ?? 0);
        }
        seen.add(id);
        stack.push(pair.value);
      }
    } else if (isSeq(node)) {
      stack.push(...node.items);
    }
  }
  return out;
}

/**
 * Offsets of every scalar map key, built once per document (a file with many duplicate keys
 * would otherwise walk the whole document per problem: quadratic).
 */
function keyOffsets(doc: Document): ReadonlyMap<number, string> {
  const found = new Map<number, string>();
  const stack: unknown[] = [doc.contents];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      for (const pair of node.items) {
        const k = pair.key as YamlNode | null;
        if (isScalar(k) && k.range && !found.has(k.range[0])) {
          found.set(k.range[0], String(k.value));
        }
        stack.push(pair.value);
      }
    } else if (isSeq(node)) {
      stack.push(...node.items);
    }
  }
  return found;
}

/** Pairs of a YAML map by scalar key, built once per map and kept while the document lives. */
const pairIndexes = new WeakMap<object, Map<unknown, Pair>>();

function pairByKey(map: YAMLMap, key: string | number): Pair | undefined {
  let index = pairIndexes.get(map);
  if (!index) {
    index = new Map();
    for (const pair of map.items) {
      if (isScalar(pair.key) && !index.has(pair.key.value)) {
        index.set(pair.key.value, pair);
      }
    }
    pairIndexes.set(map, index);
  }
  return index.get(key);
}

/** Offset of the node at `path`, falling back to the nearest existing ancestor. */
function offsetOf(doc: Document, path: DocPath, onKey: boolean): number {
  let node: unknown = doc.contents;
  let offset = doc.contents?.range?.[0] ?? 0;
  for (let i = 0; i < path.length; i++) {
    const step = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      // An index per map: locating one problem per key of a 40,000-key map must not be quadratic.
      const pair = step === undefined ? undefined : pairByKey(node, step);
      if (!pair) {
        return offset;
      }
      const key = pair.key as YamlNode;
      if (last && onKey) {
        return key.range?.[0] ?? offset;
      }
      node = pair.value;
      offset = (pair.value as YamlNode | null)?.range?.[0] ?? key.range?.[0] ?? offset;
    } else if (isSeq(node) && typeof step === 'number') {
      const item = node.items[step] as YamlNode | undefined;
      if (!item) {
        return offset;
      }
      node = item;
      offset = item.range?.[0] ?? offset;
    } else {
      return offset;
    }
  }
  return offset;
}
