import { describe, expect, it } from 'vitest';
import type { Chunk, Item } from '../../src/changes/tracker.ts';
import { walkWindows, type Probe, type RangeSource } from '../../src/changes/windows.ts';
import { res } from './support/items.ts';

/** An in-memory server listing a window newest first (like HAPI _history), recording its answers. */
function newestFirst(all: readonly Item[]): RangeSource & { sizes: number[]; probes: number } {
  const state = { sizes: [] as number[], probes: 0 };
  const inWindow = (a: number, b: number | undefined): Item[] =>
    all.filter((i) => i.pos >= a && (b === undefined || i.pos < b)).sort((x, y) => y.pos - x.pos);
  return Object.assign(state, {
    probe(a: number, b: number | undefined, limit: number): Promise<Probe> {
      state.probes++;
      const hits = inWindow(a, b);
      const page = hits.slice(0, limit + 1);
      state.sizes.push(page.length);
      return Promise.resolve({
        items: [...page].reverse(),
        overflow: hits.length > limit,
        hint: page.length ? Math.min(...page.map((i) => i.pos)) : undefined,
      });
    },
    async *streamPosition(p: number, limit: number): AsyncGenerator<readonly Item[]> {
      const hits = inWindow(p, p + 1);
      for (let i = 0; i < hits.length; i += limit) {
        state.sizes.push(Math.min(limit, hits.length - i));
        yield hits.slice(i, i + limit);
        await Promise.resolve();
      }
    },
  });
}

function dataset(): Item[] {
  const items: Item[] = [];
  let n = 0;
  const at = (pos: number, count: number): void => {
    for (let i = 0; i < count; i++) {
      items.push(res(`r${n++}`, '1', pos));
    }
  };
  at(1_000, 3);
  at(1_001, 1);
  at(5_000, 25); // one transaction, bigger than a page
  for (let p = 9_000; p < 9_200; p += 7) {
    at(p, 1);
  }
  at(1_000_000, 12);
  return items;
}

async function drain(source: RangeSource, start: number, pageSize: number): Promise<Chunk[]> {
  const out: Chunk[] = [];
  for await (const c of walkWindows(source, {
    start,
    end: Number.POSITIVE_INFINITY,
    openFrom: () => 2_000_000,
    pageSize,
  })) {
    out.push(c);
  }
  return out;
}

describe('walkWindows over a newest-first server', () => {
  it('delivers every change once, oldest first, with at most a page per request', async () => {
    const all = dataset();
    const source = newestFirst(all);
    const chunks = await drain(source, 0, 10);
    const got = chunks.flatMap((c) => c.items);
    expect(got.map((i) => i.change.id).sort()).toEqual(all.map((i) => i.change.id).sort());
    expect(new Set(got.map((i) => i.change.id)).size).toBe(all.length);
    expect(got.map((i) => i.pos)).toEqual([...got.map((i) => i.pos)].sort((a, b) => a - b));
    expect(Math.max(...source.sizes)).toBeLessThanOrEqual(11);
  });

  it('only claims completeness for what it has handed over', async () => {
    const all = dataset();
    const chunks = await drain(newestFirst(all), 0, 10);
    const delivered = new Set<string>();
    for (const c of chunks) {
      c.items.forEach((i) => delivered.add(i.change.id));
      const below = c.below ?? Number.NEGATIVE_INFINITY;
      const missing = all.filter((i) => i.pos < below && !delivered.has(i.change.id));
      expect(missing).toEqual([]);
    }
    expect(chunks.at(-1)?.below).toBe(Number.POSITIVE_INFINITY);
  });

  it('streams a tie larger than the page at its single position', async () => {
    const chunks = await drain(newestFirst(dataset()), 4_999, 10);
    const tie = chunks.filter((c) => c.below === 5_000 && c.items.length > 0);
    expect(tie.map((c) => c.items.length)).toEqual([10, 10, 5]);
  });

  it('starts from the given position', async () => {
    const chunks = await drain(newestFirst(dataset()), 1_000_000, 10);
    expect(chunks.flatMap((c) => c.items)).toHaveLength(12);
  });

  it('reads an idle feed with one request', async () => {
    const source = newestFirst([]);
    const chunks = await drain(source, 123, 10);
    expect(source.probes).toBe(1);
    expect(chunks).toEqual([{ items: [], below: Number.POSITIVE_INFINITY }]);
  });
});
