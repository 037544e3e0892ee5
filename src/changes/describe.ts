/**
 * A readable summary of a cursor for status pages and logs: where the feed stands and how
 * many delivered changes it still remembers. Holds no ids.
 */
import type { Cursor } from './types.ts';

export interface CursorSummary {
  readonly family: 'ts' | 'ver';
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
  let raw: { f?: unknown; lo?: unknown; after?: unknown; seen?: unknown };
  try {
    raw = JSON.parse(cursor) as typeof raw;
  } catch {
    return undefined;
  }
  const seen = Array.isArray(raw.seen) ? (raw.seen as unknown[]) : [];
  const remembered = seen.reduce<number>((n, g) => n + (Array.isArray(g) && Array.isArray(g[1]) ? g[1].length : 0), 0);
  if (raw.f === 'ts' && typeof raw.lo === 'string') {
    return { family: 'ts', position: raw.lo, rememberedChanges: remembered };
  }
  if (raw.f === 'ver' && typeof raw.after === 'number') {
    return { family: 'ver', position: String(raw.after), rememberedChanges: remembered };
  }
  return undefined;
}
