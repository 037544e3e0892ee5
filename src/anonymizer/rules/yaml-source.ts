/**
 * YAML text -> plain data plus positions. Duplicate keys are errors (YAML would silently keep
 * one), and every later problem can be located at the line and column of the offending key or
 * value through `locate(path)`.
 */
import { LineCounter, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document, Node as YamlNode, Pair, YAMLMap } from 'yaml';
import { CFG_ERR_RULES_DUPLICATE_KEY, CFG_ERR_RULES_YAML } from '../../shared/errors/index.ts';
import type { RulesProblem } from './types.ts';

/** Path inside the document: keys and sequence indices. */
export type DocPath = readonly (string | number)[];

/** A parsed YAML text. */
export interface YamlSource {
  /** The data (undefined when the text could not be parsed at all). */
  readonly data: unknown;
  /** Syntax and duplicate-key problems. */
  readonly problems: readonly RulesProblem[];
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
 * @returns data, problems and a locator.
 */
export function parseYamlSource(text: string): YamlSource {
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
  const problems: RulesProblem[] = found.map((e) => {
    const pos = lineCounter.linePos(e.offset);
    const def = e.duplicate ? CFG_ERR_RULES_DUPLICATE_KEY : CFG_ERR_RULES_YAML;
    const detail = e.duplicate ? duplicateKeyName(e.offset, keyIndex) : firstLine(e.message);
    return { code: def.code, message: def.create(detail).message, line: pos.line, column: pos.col, path: '' };
  });
  let data: unknown;
  if (problems.length === 0) {
    try {
      data = doc.toJS({ maxAliasCount: 50 }) as unknown;
    } catch (err) {
      // Alias errors surface only when resolving (an alias before its anchor, alias bombs).
      const message = err instanceof Error ? firstLine(err.message) : 'unreadable document';
      problems.push({
        code: CFG_ERR_RULES_YAML.code,
        message: CFG_ERR_RULES_YAML.create(message).message,
        line: 1,
        column: 1,
        path: '',
      });
    }
  }
  const locate = (path: DocPath, onKey = false): { line: number; column: number } => {
    const offset = offsetOf(doc, path, onKey);
    const p = lineCounter.linePos(offset);
    return { line: p.line, column: p.col };
  };
  return { data, problems, locate };
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
