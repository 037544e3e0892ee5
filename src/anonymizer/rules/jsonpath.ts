/**
 * JSONPath selectors: parsed and checked once at load, then compiled into automaton steps
 * (plan/graph.ts) so no JSONPath is evaluated per resource.
 *
 * Supported: `$`, `.name`, `['name']`, `[*]`, `.*`, `[n]`, `..name`, `..*`, `..[n]`. Filters,
 * scripts, slices, unions and the jsonpath-plus operators `^`, `~`, `@type()` are refused:
 * they cannot be compiled into a path matcher. Every accepted path is cross-checked with
 * jsonpath-plus's own parser, so the compiled matcher selects what jsonpath-plus would.
 */
import { JSONPath } from 'jsonpath-plus';
import type { PathSegment } from './types.ts';

/** Parse result: segments or the reason it was refused (with the character position). */
export type ParsedPath =
  { readonly ok: true; readonly segments: PathSegment[] } | { readonly ok: false; readonly reason: string };

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;
/**
 * Most steps a path may have: the plan graph numbers a step inside its rule with 6 bits
 * (plan/graph.ts, POS = 64), and no FHIR element sits that deep anyway (issue 10: a longer
 * path used to crash the compiler with a TypeError, a 500 at the API).
 */
export const MAX_PATH_STEPS = 63;

/**
 * Parses a JSONPath of the supported subset.
 * @param expr - the expression from the rules file.
 * @returns segments, or why it is refused.
 */
export function parseJsonPath(expr: string): ParsedPath {
  if (!expr.startsWith('$')) {
    return fail('it must start with $', 0);
  }
  const segments: PathSegment[] = [];
  let i = 1;
  while (i < expr.length) {
    const r = expr.startsWith('..', i)
      ? descendant(expr, i, segments)
      : expr[i] === '.'
        ? member(expr, i + 1, segments)
        : expr[i] === '['
          ? bracket(expr, i, segments)
          : fail(`unexpected '${expr[i]}'`, i);
    if (typeof r !== 'number') {
      return r;
    }
    if (segments.length > MAX_PATH_STEPS) {
      return fail(`it has more than ${MAX_PATH_STEPS} steps`, i);
    }
    i = r;
  }
  if (segments.length === 0) {
    return fail('it selects the whole resource; name an element', expr.length);
  }
  return crossCheck(expr, segments);
}

function descendant(expr: string, i: number, out: PathSegment[]): number | ParsedPath {
  out.push({ kind: 'descendant' });
  const j = i + 2;
  if (expr[j] === '[') {
    return bracket(expr, j, out);
  }
  if (j >= expr.length) {
    return fail("'..' must be followed by a name, * or [..]", j);
  }
  return member(expr, j, out);
}

function member(expr: string, i: number, out: PathSegment[]): number | ParsedPath {
  if (expr[i] === '*') {
    out.push({ kind: 'wildcard' });
    return i + 1;
  }
  const m = NAME.exec(expr.slice(i));
  if (!m) {
    return fail(unsupported(expr[i]) ?? 'expected an element name', i);
  }
  out.push({ kind: 'key', key: m[0] });
  return i + m[0].length;
}

function bracket(expr: string, i: number, out: PathSegment[]): number | ParsedPath {
  const close = expr.indexOf(']', i);
  if (close < 0) {
    return fail("missing ']'", i);
  }
  const inner = expr.slice(i + 1, close).trim();
  if (inner === '*') {
    out.push({ kind: 'wildcard' });
  } else if (/^\d+$/.test(inner)) {
    out.push({ kind: 'index', index: Number(inner) });
  } else if (/^'[A-Za-z_][A-Za-z0-9_]*'$|^"[A-Za-z_][A-Za-z0-9_]*"$/.test(inner)) {
    out.push({ kind: 'key', key: inner.slice(1, -1) });
  } else {
    return fail(
      unsupported(inner[0]) ??
        (/[:,]/.test(inner) ? 'slices and unions are not supported' : `'[${inner}]' is not supported`),
      i,
    );
  }
  return close + 1;
}

const UNSUPPORTED: Readonly<Record<string, string>> = {
  '?': 'filter expressions are not supported (use a type selector with where)',
  '(': 'script expressions are not supported',
  '^': "the '^' operator is not supported",
  '~': "the '~' operator is not supported",
  '@': 'type selectors (@string() ...) are not supported (use a type selector)',
};

function unsupported(ch: string | undefined): string | undefined {
  return ch === undefined ? undefined : UNSUPPORTED[ch];
}

/** jsonpath-plus must read the path into the same steps, or the matcher would differ from it. */
function crossCheck(expr: string, segments: PathSegment[]): ParsedPath {
  let theirs: string[];
  try {
    theirs = JSONPath.toPathArray(expr).slice(1);
  } catch (err) {
    return fail(`jsonpath-plus cannot parse it (${err instanceof Error ? err.message : 'error'})`, 0);
  }
  const ours = segments.map((s) =>
    s.kind === 'key' ? s.key : s.kind === 'index' ? String(s.index) : s.kind === 'wildcard' ? '*' : '..',
  );
  if (ours.length !== theirs.length || ours.some((s, k) => s !== theirs[k])) {
    return fail('jsonpath-plus reads it differently; simplify it', 0);
  }
  return { ok: true, segments };
}

function fail(reason: string, at: number): ParsedPath {
  return { ok: false, reason: `${reason} (at character ${at + 1})` };
}

/**
 * Writes segments back as a JSONPath (for messages and hashing).
 * @param segments - compiled segments.
 * @returns the canonical expression.
 */
export function formatJsonPath(segments: readonly PathSegment[]): string {
  let out = '$';
  let afterDescendant = false;
  for (const s of segments) {
    const dot = afterDescendant ? '' : '.';
    afterDescendant = false;
    switch (s.kind) {
      case 'key':
        out += dot + s.key;
        break;
      case 'index':
        out += `[${s.index}]`;
        break;
      case 'wildcard':
        out += dot === '' ? '*' : '[*]';
        break;
      case 'descendant':
        out += '..';
        afterDescendant = true;
        break;
    }
  }
  return out;
}
