/**
 * The cursor's format, owned here alone (made, read, summarised, started at an instant). A
 * cursor is a small JSON string:
 * - `lo`: every change at a position below it has been delivered and has settled, so the next
 *   read starts there (inclusive);
 * - `seen`: (id, version) keys of changes already delivered at positions >= `lo` (ties on the
 *   `lo` instant, and changes inside the settle window), so re-reading them is a no-op;
 * - `marks` (Aidbox only): head versions with the local time they were seen, which settle
 *   once the settle window has passed.
 * Positions are integers: epoch milliseconds of `lastUpdated` for the timestamp feeds (family
 * `ts`, shared by `fhir-history` and `search-lastupdated`, so `auto` may switch between them),
 * the Aidbox version (txid) for `aidbox-changes` (family `ver`).
 */
import { FEED_ERR_CURSOR_INVALID } from '../shared/errors/index.ts';
import type { Cursor } from './types.ts';

export type CursorFamily = 'ts' | 'ver';

export interface CursorState {
  readonly family: CursorFamily;
  /** Positions below this are done. */
  readonly lo: number;
  /** key -> position, for delivered changes at positions >= lo. */
  readonly seen: ReadonlyMap<string, number>;
  /** `ver` only: [head version, local epoch ms when seen]. */
  readonly marks: readonly Mark[];
}

export type Mark = readonly [version: number, seenAtMs: number];

const FORMAT = 1;
/** The latest instant a JavaScript Date can hold. */
const MAX_INSTANT_MS = 8.64e15;
/** Aidbox versions start above 0; timestamps at the epoch. */
const START: Record<CursorFamily, number> = { ts: 0, ver: 1 };

/**
 * The state a feed starts from when there is no cursor yet.
 * @param family - which kind of positions.
 * @returns an empty state reading from the beginning.
 */
export function initialState(family: CursorFamily): CursorState {
  return { family, lo: START[family], seen: new Map(), marks: [] };
}

/**
 * Serialises a state.
 * @param state - the state.
 * @param lo - the position to write in place of the state's own.
 * @returns the cursor string.
 */
export function encodeCursor(state: CursorState, lo: number = state.lo): Cursor {
  const groups = new Map<number, string[]>();
  for (const [key, pos] of state.seen) {
    const group = groups.get(pos);
    if (group) {
      group.push(key);
    } else {
      groups.set(pos, [key]);
    }
  }
  const seen = [...groups].sort((a, b) => a[0] - b[0]).map(([pos, keys]) => [pos, keys.sort()]);
  if (state.family === 'ts') {
    return JSON.stringify({ c: FORMAT, f: 'ts', lo: new Date(Math.min(lo, MAX_INSTANT_MS)).toISOString(), seen });
  }
  return JSON.stringify({ c: FORMAT, f: 'ver', after: lo - 1, seen, marks: state.marks });
}

/**
 * Parses a cursor made by {@link encodeCursor}.
 * @param cursor - the cursor, or undefined to start from the beginning.
 * @param family - the family the calling feed reads.
 * @param feed - the feed kind, for messages.
 * @returns the state.
 */
export function decodeCursor(cursor: Cursor | undefined, family: CursorFamily, feed: string): CursorState {
  if (cursor === undefined) {
    return initialState(family);
  }
  const fail = (why: string): never => {
    throw FEED_ERR_CURSOR_INVALID.create(feed, why);
  };
  let raw: unknown;
  try {
    raw = JSON.parse(cursor);
  } catch {
    return fail('not JSON');
  }
  const obj = (typeof raw === 'object' && raw !== null ? raw : fail('not an object')) as Record<string, unknown>;
  if (obj.c !== FORMAT) {
    fail('unknown cursor format');
  }
  if (obj.f !== family) {
    fail(`made by a feed of family "${String(obj.f).slice(0, 10)}", this feed reads "${family}"`);
  }
  const lo = family === 'ts' ? parseInstant(obj.lo, fail) : parseVersion(obj.after, fail) + 1;
  return {
    family,
    lo,
    seen: parseSeen(obj.seen, lo, fail),
    marks: family === 'ver' ? parseMarks(obj.marks, fail) : [],
  };
}

function parseInstant(value: unknown, fail: (why: string) => never): number {
  const ms = typeof value === 'string' ? Date.parse(value) : Number.NaN;
  return Number.isFinite(ms) && ms >= 0 ? ms : fail('"lo" is not an instant');
}

function parseVersion(value: unknown, fail: (why: string) => never): number {
  return Number.isSafeInteger(value) && (value as number) >= 0 ? (value as number) : fail('"after" is not a version');
}

function parseSeen(value: unknown, lo: number, fail: (why: string) => never): Map<string, number> {
  const seen = new Map<string, number>();
  if (!Array.isArray(value)) {
    return fail('"seen" is not a list');
  }
  for (const group of value as unknown[]) {
    if (!Array.isArray(group) || group.length !== 2 || !Number.isSafeInteger(group[0]) || !Array.isArray(group[1])) {
      return fail('"seen" group is malformed');
    }
    const pos = group[0] as number;
    if (pos < lo) {
      return fail('"seen" holds a position below "lo"');
    }
    for (const key of group[1] as unknown[]) {
      if (typeof key !== 'string' || key === '') {
        return fail('"seen" key is not a string');
      }
      seen.set(key, pos);
    }
  }
  return seen;
}

function parseMarks(value: unknown, fail: (why: string) => never): Mark[] {
  if (!Array.isArray(value)) {
    return fail('"marks" is not a list');
  }
  return (value as unknown[]).map((m) => {
    if (!Array.isArray(m) || m.length !== 2 || !Number.isSafeInteger(m[0]) || !Number.isSafeInteger(m[1])) {
      return fail('"marks" entry is malformed');
    }
    return [m[0] as number, m[1] as number] as const;
  });
}

/**
 * A cursor that starts at an instant with nothing remembered: where a backfill from a date
 * begins on a timestamp feed.
 * @param since - an ISO instant.
 * @returns the cursor, or undefined when `since` is not an instant at or after the epoch.
 */
export function cursorAt(since: string): Cursor | undefined {
  const ms = Date.parse(since);
  return Number.isFinite(ms) && ms >= 0 ? encodeCursor(initialState('ts'), ms) : undefined;
}

/** A readable summary of a cursor for status pages and logs. Holds no ids. */
export interface CursorSummary {
  readonly family: CursorFamily;
  /** ISO instant (timestamp feeds) or Aidbox version from which the next poll reads. */
  readonly position: string;
  /** Changes remembered for dedupe (ties and the settle window). */
  readonly rememberedChanges: number;
}

/**
 * Summarises a cursor made by a feed of this module.
 * @param cursor - the cursor.
 * @returns the summary, or undefined when it is not such a cursor.
 */
export function describeCursor(cursor: Cursor): CursorSummary | undefined {
  for (const family of ['ts', 'ver'] as const) {
    try {
      const state = decodeCursor(cursor, family, 'describe');
      const position = family === 'ts' ? new Date(state.lo).toISOString() : String(state.lo - 1);
      return { family, position, rememberedChanges: state.seen.size };
    } catch {
      // not of this family
    }
  }
  return undefined;
}

/**
 * The newest change a timestamp cursor has delivered (epoch ms): the newest remembered key, or
 * `lo` when none is remembered. What the lag is measured against: changes inside the settle
 * window are delivered (and remembered) even though `lo` has not passed them yet.
 * @param cursor - a cursor of this module.
 * @returns the instant, or undefined for version cursors and anything unreadable.
 */
export function deliveredUpTo(cursor: Cursor): number | undefined {
  let state: CursorState;
  try {
    state = decodeCursor(cursor, 'ts', 'lag');
  } catch {
    return undefined;
  }
  let newest = state.lo;
  for (const pos of state.seen.values()) {
    newest = Math.max(newest, pos);
  }
  return newest;
}
