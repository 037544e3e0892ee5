/**
 * The loss-free core shared by every feed kind, independent of HTTP.
 *
 * Readers turn server answers into *chunks*: changes in position order plus a claim "every
 * change below position `below` that was committed when I read has been handed over (in this
 * chunk or an earlier one)". The {@link Tracker} combines those claims with the settle
 * *horizon* (positions below it can no longer receive late commits) into the cursor:
 * `lo = min(claim, horizon)` never decreases, and `seen` remembers what was delivered at or
 * above `lo` so the overlap re-read of the next poll drops it (dedupe by id + version).
 * {@link assemble} groups chunks into pages of at most `pageSize` changes and computes each
 * page's cursor only from what that page and earlier ones contain, so committing a page's
 * cursor never skips a change that is still in a later page.
 */
import { createHash, createHmac } from 'node:crypto';
import type { Change, ChangePage, Cursor } from './types.ts';
import { encodeCursor, type CursorState, type Mark } from './cursor.ts';

/** A change with its position and its dedupe key (undefined: cannot be deduped, always passed on). */
export interface Item {
  readonly change: Change;
  readonly pos: number;
  readonly key: string | undefined;
}

/** Changes in position order, and optionally how far the reader now knows it is complete. */
export interface Chunk {
  readonly items: readonly Item[];
  readonly below?: number;
}

/**
 * The dedupe key of a change: id plus version, else id plus kind plus timestamp, else none.
 * @param change - the change.
 * @returns the key, or undefined when nothing identifies the version.
 */
export function changeKey(change: Change): string | undefined {
  if (change.versionId) {
    return `${change.id}|v${change.versionId}`;
  }
  if (change.lastUpdated) {
    return `${change.id}|${change.kind === 'deletion' ? 'd' : 'r'}${change.lastUpdated}`;
  }
  return undefined;
}

/**
 * How keys are kept in cursors. Resource ids can be identifying (the global side only ever
 * sees pseudonyms), and cursors are stored outside the process, so a cursor holds a digest of
 * each key, never the id: HMAC-SHA-256 when a secret is configured, else SHA-256, cut to 96
 * bits (collisions are negligible at a few thousand keys; one would only drop a duplicate check).
 * @param secret - optional HMAC key.
 * @returns the digest function.
 */
export function keyDigest(secret?: string): (key: string) => string {
  return (key) =>
    (secret ? createHmac('sha256', secret) : createHash('sha256')).update(key).digest('base64url').slice(0, 16);
}

/** Cursor state of one run of a feed. */
export class Tracker {
  private readonly family: CursorState['family'];
  private lo: number;
  private horizon: number;
  private readonly seen: Map<string, number>;
  private marks: readonly Mark[];
  private readonly maxKeys: number;
  private readonly digest: (key: string) => string;
  private lastCompact: Cursor;

  constructor(state: CursorState, maxKeys: number, digest: (key: string) => string = keyDigest()) {
    this.digest = digest;
    this.family = state.family;
    this.lo = state.lo;
    this.horizon = state.lo;
    this.seen = new Map(state.seen);
    this.marks = state.marks;
    this.maxKeys = maxKeys;
    this.lastCompact = encodeCursor(state);
  }

  /** Where the next read starts (inclusive). */
  get position(): number {
    return this.lo;
  }

  /** True when the cursor would hold more keys than allowed. */
  get overfull(): boolean {
    return this.seen.size > this.maxKeys;
  }

  /** True when everything below the horizon is done: what is left is inside the settle window. */
  get settled(): boolean {
    return this.lo >= this.horizon;
  }

  get currentMarks(): readonly Mark[] {
    return this.marks;
  }

  has(key: string): boolean {
    return this.seen.has(this.digest(key));
  }

  /** Remembers a delivered change (only if at or above `lo`, where re-reads can meet it again). */
  record(item: Item): void {
    if (item.key !== undefined && item.pos >= this.lo) {
      this.seen.set(this.digest(item.key), item.pos);
    }
  }

  /** Positions below `h` can no longer receive changes. */
  raiseHorizon(h: number): void {
    this.horizon = Math.max(this.horizon, h);
  }

  /** The reader is complete below `below` (as of a read made after the horizon was fixed). */
  complete(below: number): void {
    const next = Math.min(below, this.horizon);
    if (next <= this.lo) {
      return;
    }
    this.lo = next;
    for (const [key, pos] of this.seen) {
      if (pos < next) {
        this.seen.delete(key);
      }
    }
  }

  setMarks(marks: readonly Mark[]): void {
    this.marks = marks;
  }

  /** The cursor for what was delivered so far; the last one that fitted when too many keys. */
  cursor(): Cursor {
    if (!this.overfull) {
      this.lastCompact = encodeCursor({ family: this.family, lo: this.lo, seen: this.seen, marks: this.marks });
    }
    return this.lastCompact;
  }
}

/**
 * Groups chunks into pages, drops changes already delivered, and attaches safe cursors.
 * Inside a tie larger than `maxCursorKeys`, pages carry the last cursor that fitted (safe; a
 * restart re-reads the tie). Inside the settle window, a page whose keys would not fit is held
 * back and the poll ends: it comes once older changes have settled.
 * @param chunks - the reader's output.
 * @param tracker - the run's cursor state.
 * @param pageSize - most changes per page.
 * @param startCursor - the cursor the run started from (an unchanged cursor is not re-emitted).
 * @returns the pages.
 */
export async function* assemble(
  chunks: AsyncIterable<Chunk>,
  tracker: Tracker,
  pageSize: number,
  startCursor: Cursor | undefined,
): AsyncGenerator<ChangePage> {
  let buffer: Item[] = [];
  let bufferKeys = new Set<string>();
  let claim: number | undefined;

  // Returns undefined when the page must be held back: inside the settle window its keys would
  // not fit in the cursor, so it is left for a later poll instead of being delivered twice.
  const flush = (): ChangePage | undefined => {
    for (const item of buffer) {
      tracker.record(item);
    }
    if (claim !== undefined) {
      tracker.complete(claim);
    }
    if (tracker.overfull && tracker.settled) {
      return undefined;
    }
    const page = { changes: buffer.map((i) => i.change), cursor: tracker.cursor() };
    buffer = [];
    bufferKeys = new Set();
    return page;
  };

  let last = startCursor;
  for await (const chunk of chunks) {
    const fresh = unseen(chunk.items, (key) => tracker.has(key) || bufferKeys.has(key));
    if (buffer.length > 0 && buffer.length + fresh.length > pageSize) {
      const page = flush();
      if (!page) {
        return;
      }
      last = page.cursor;
      yield page;
    }
    for (const item of fresh) {
      buffer.push(item);
      if (item.key !== undefined) {
        bufferKeys.add(item.key);
      }
    }
    claim = chunk.below ?? claim;
    if (buffer.length >= pageSize) {
      const page = flush();
      if (!page) {
        return;
      }
      last = page.cursor;
      yield page;
    }
  }
  const page = flush();
  if (page && (page.changes.length > 0 || page.cursor !== last)) {
    yield page;
  }
}

/** Items whose key is neither known nor repeated earlier in the same list. */
function unseen(items: readonly Item[], known: (key: string) => boolean): Item[] {
  const here = new Set<string>();
  return items.filter((i) => {
    if (i.key === undefined) {
      return true;
    }
    if (known(i.key) || here.has(i.key)) {
      return false;
    }
    here.add(i.key);
    return true;
  });
}
