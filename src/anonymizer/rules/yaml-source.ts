/**
 * YAML text -> plain data plus positions. Duplicate keys are errors (YAML would silently keep
 * one), and every later problem can be located at the line and column of the offending key or
 * value through `locate(path)`.
 */
import { LineCounter, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';
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
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, strict: true });
  const problems: RulesProblem[] = doc.errors.map((e) => {
    const pos = lineCounter.linePos(e.pos[0]);
    const duplicate = e.code === 'DUPLICATE_KEY';
    const def = duplicate ? CFG_ERR_RULES_DUPLICATE_KEY : CFG_ERR_RULES_YAML;
    const detail = duplicate ? duplicateKeyName(doc, e.pos[0]) : firstLine(e.message);
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

function duplicateKeyName(doc: Document, offset: number): string {
  // The parser reports the offset of the repeated key; name the key found there.
  const name = sourceAt(doc, offset);
  return name === '' ? '(key)' : name;
}

function sourceAt(doc: Document, offset: number): string {
  let found = '';
  const visit = (node: unknown): void => {
    if (found !== '' || node === null || typeof node !== 'object') {
      return;
    }
    if (isMap(node)) {
      for (const pair of node.items) {
        const k = pair.key as YamlNode | null;
        if (isScalar(k) && k.range && k.range[0] === offset) {
          found = String(k.value);
          return;
        }
        visit(pair.value);
      }
    } else if (isSeq(node)) {
      node.items.forEach(visit);
    }
  };
  visit(doc.contents);
  return found;
}

/** Offset of the node at `path`, falling back to the nearest existing ancestor. */
function offsetOf(doc: Document, path: DocPath, onKey: boolean): number {
  let node: unknown = doc.contents;
  let offset = doc.contents?.range?.[0] ?? 0;
  for (let i = 0; i < path.length; i++) {
    const step = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && p.key.value === step);
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
