/**
 * Oldest-first streaming over a server that cannot list oldest-first, with memory bounded by
 * one page: walk the position axis (epoch ms for `_history`, versions for Aidbox) in windows
 * [a, b) small enough that one request returns the whole window.
 *
 * A probe asks for `limit + 1` changes of a window. If they all came back, the window is
 * complete: its changes go out sorted, and the next window starts at `b` (twice as wide when
 * it was sparse). If not, the window shrinks: to the oldest position the (newest-first) server
 * returned, or to half, whichever is smaller. A window one position wide (many changes of one
 * transaction sharing one timestamp or version) cannot shrink; its pages are streamed as they
 * come, which is safe because they all sit at the same position: the cursor stays on that
 * position and remembers their keys until the position is done.
 * Cost: about log2(gap) small probes to find the next busy position; a probe that overflows
 * is thrown away (one page of waste).
 */
import type { Chunk, Item } from './tracker.ts';

export interface Probe {
  /** Changes of the window, oldest first (complete only when `overflow` is false). */
  readonly items: readonly Item[];
  /** More changes exist in the window than were returned. */
  readonly overflow: boolean;
  /** Oldest known position among the returned changes when the server returns newest first. */
  readonly hint?: number;
}

export interface RangeSource {
  /** Reads window [a, b) (b undefined: open-ended), at most `limit + 1` changes. */
  probe(a: number, b: number | undefined, limit: number): Promise<Probe>;
  /** Streams every change at position p, page by page. */
  streamPosition(p: number, limit: number): AsyncIterable<readonly Item[]>;
}

export interface WalkOptions {
  /** First position to read (inclusive). */
  readonly start: number;
  /** End of the axis (exclusive); Infinity when open-ended (timestamps). */
  readonly end: number;
  /** Windows reaching this position are read open-ended instead (no change can be newer than the server's now). */
  readonly openFrom: () => number | undefined;
  readonly pageSize: number;
}

/**
 * Walks the axis from `start` and yields complete windows as chunks.
 * @param source - the server access.
 * @param opts - where to start and end, and the page size.
 * @returns chunks whose `below` is the end of the window they complete.
 */
export async function* walkWindows(source: RangeSource, opts: WalkOptions): AsyncGenerator<Chunk> {
  let a = opts.start;
  let width = Number.POSITIVE_INFINITY;
  while (a < opts.end) {
    const b = windowEnd(a, width, opts);
    const probe = await source.probe(a, Number.isFinite(b) ? b : undefined, opts.pageSize);
    if (!probe.overflow) {
      yield { items: probe.items, below: b };
      if (b >= opts.end) {
        return;
      }
      width = probe.items.length * 2 <= opts.pageSize ? (b - a) * 2 : b - a;
      a = b;
    } else if (b - a <= 1) {
      for await (const items of source.streamPosition(a, opts.pageSize)) {
        yield { items, below: a };
      }
      yield { items: [], below: a + 1 };
      a += 1;
      width = 2;
    } else {
      width = shrink(a, b, probe.hint);
    }
  }
}

function windowEnd(a: number, width: number, opts: WalkOptions): number {
  const b = Math.min(opts.end, a + width);
  const open = opts.openFrom();
  return open !== undefined && b >= open ? opts.end : b;
}

function shrink(a: number, b: number, hint: number | undefined): number {
  const half = Number.isFinite(b) ? Math.floor((b - a) / 2) : Number.POSITIVE_INFINITY;
  if (hint !== undefined && hint <= a) {
    return 1;
  }
  const toHint = hint !== undefined ? hint - a : Number.POSITIVE_INFINITY;
  const next = Math.min(half, toHint);
  // Open window without a hint (an empty overflow page): fall back to one day.
  return Math.max(1, Number.isFinite(next) ? next : 86_400_000);
}
