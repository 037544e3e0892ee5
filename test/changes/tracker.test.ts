import { describe, expect, it } from 'vitest';
import { decodeCursor, initialState } from '../../src/changes/cursor.ts';
import { assemble, keyDigest, Tracker, type Chunk, type Item } from '../../src/changes/tracker.ts';
import { collect, ids, res } from './support/items.ts';

async function* chunksOf(...chunks: Chunk[]): AsyncGenerator<Chunk> {
  for (const c of chunks) {
    yield await Promise.resolve(c);
  }
}

const FAR = 4_000_000_000_000; // a horizon in year 2096

function tracker(cursor?: string, maxKeys = 1000, horizon = FAR): Tracker {
  const t = new Tracker(decodeCursor(cursor, 'ts', 'test'), maxKeys);
  t.raiseHorizon(horizon);
  return t;
}

describe('assemble', () => {
  it('fills pages up to the page size and gives each page the claim of what it holds', async () => {
    const t = tracker();
    const pages = await collect(
      assemble(
        chunksOf(
          { items: [res('a', '1', 1), res('b', '1', 2)], below: 10 },
          { items: [res('c', '1', 11), res('d', '1', 12)], below: 20 },
          { items: [res('e', '1', 21)], below: 30 },
        ),
        t,
        3,
        undefined,
      ),
    );
    expect(pages.map((p) => p.changes.length)).toEqual([2, 3]);
    expect(decodeCursor(pages[0]!.cursor, 'ts', 'test').lo).toBe(10);
    expect(decodeCursor(pages[1]!.cursor, 'ts', 'test').lo).toBe(30);
  });

  it('never lets the cursor pass the settle horizon and remembers what it delivered above it', async () => {
    const t = tracker(undefined, 1000, 15);
    const [page] = await collect(
      assemble(
        chunksOf({ items: [res('a', '1', 5), res('b', '1', 16), res('c', '1', 17)], below: 100 }),
        t,
        10,
        undefined,
      ),
    );
    const state = decodeCursor(page!.cursor, 'ts', 'test');
    expect(state.lo).toBe(15);
    const digest = keyDigest();
    expect([...state.seen.keys()].sort()).toEqual([digest('b|v1'), digest('c|v1')].sort());
    expect(page!.cursor).not.toContain('b|v1'); // ids never appear in clear in a cursor
  });

  it('drops changes the cursor already delivered and duplicates inside a run', async () => {
    const first = await collect(
      assemble(chunksOf({ items: [res('a', '1', 10), res('b', '1', 10)], below: 10 }), tracker(), 10, undefined),
    );
    const again = await collect(
      assemble(
        chunksOf({ items: [res('a', '1', 10), res('b', '1', 10), res('c', '1', 10), res('c', '1', 10)], below: 11 }),
        tracker(first[0]!.cursor),
        10,
        first[0]!.cursor,
      ),
    );
    expect(ids(first)).toEqual(['a/1', 'b/1']);
    expect(ids(again)).toEqual(['c/1']);
    expect(decodeCursor(again[0]!.cursor, 'ts', 'test').seen.size).toBe(0);
  });

  it('emits an empty page when only the cursor moved, and nothing when nothing changed', async () => {
    const moved = await collect(assemble(chunksOf({ items: [], below: 50 }), tracker(), 10, undefined));
    expect(moved).toHaveLength(1);
    expect(moved[0]!.changes).toEqual([]);
    const still = await collect(
      assemble(chunksOf({ items: [], below: 50 }), tracker(moved[0]!.cursor), 10, moved[0]!.cursor),
    );
    expect(still).toEqual([]);
  });

  it('holds back a page whose keys would not fit while inside the settle window, and ends the poll', async () => {
    const t = tracker(undefined, 2, 100);
    let pulled = 0;
    async function* counting(): AsyncGenerator<Chunk> {
      for (let i = 0; i < 5; i++) {
        pulled++;
        yield await Promise.resolve({ items: [res(`x${i}`, '1', 100 + i)], below: 101 + i });
      }
    }
    const pages = await collect(assemble(counting(), t, 1, undefined));
    expect(ids(pages)).toEqual(['x0/1', 'x1/1']); // x2 would need a third key: left for a later poll
    expect(decodeCursor(pages[1]!.cursor, 'ts', 'test').seen.size).toBe(2);
    expect(pulled).toBe(3);
  });

  it('walks a tie larger than the key budget with the last cursor that fitted, then moves on', async () => {
    const t = tracker(undefined, 2);
    const tie = [0, 1, 2, 3, 4].map((i) => ({ items: [res(`t${i}`, '1', 10)], below: 10 }));
    const pages = await collect(
      assemble(chunksOf(...tie, { items: [res('after', '1', 11)], below: 12 }), t, 1, undefined),
    );
    expect(ids(pages)).toEqual(['t0/1', 't1/1', 't2/1', 't3/1', 't4/1', 'after/1']);
    expect(pages[2]!.cursor).toBe(pages[1]!.cursor);
    expect(pages[4]!.cursor).toBe(pages[1]!.cursor);
    expect(decodeCursor(pages[5]!.cursor, 'ts', 'test')).toMatchObject({ lo: 12 });
  });
});

describe('cursor safety under crashes (property)', () => {
  // A fixed server state; a reader that, from a cursor's lo, yields chunks with random
  // boundaries (ties split across chunks). Resuming from any page's cursor must deliver
  // everything not yet delivered, and nothing twice.
  function rng(seed: number): () => number {
    let s = seed;
    return () => {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      return s / 2 ** 31;
    };
  }

  function dataset(rand: () => number): Item[] {
    const items: Item[] = [];
    let pos = 1000;
    for (let i = 0; i < 120; i++) {
      pos += rand() < 0.5 ? 0 : Math.floor(rand() * 5) + 1;
      items.push(res(`r${i}`, '1', pos));
    }
    return items;
  }

  async function* reader(all: readonly Item[], lo: number, rand: () => number): AsyncGenerator<Chunk> {
    const rest = all.filter((i) => i.pos >= lo);
    let i = 0;
    while (i < rest.length) {
      const n = 1 + Math.floor(rand() * 7);
      const items = rest.slice(i, i + n);
      i += n;
      const next = rest[i];
      yield await Promise.resolve({ items, below: next ? next.pos : Number.POSITIVE_INFINITY });
    }
    yield { items: [], below: Number.POSITIVE_INFINITY };
  }

  for (const seed of [1, 7, 42, 99, 2024]) {
    it(`seed ${seed}: every crash point resumes without loss or duplicates`, async () => {
      const rand = rng(seed);
      const all = dataset(rand);
      const first = new Tracker(initialState('ts'), 10_000);
      first.raiseHorizon(FAR);
      const pages = await collect(assemble(reader(all, 0, rand), first, 9, undefined));
      expect(ids(pages)).toEqual(all.map((i) => `${i.change.id}/1`));
      for (let k = 0; k < pages.length; k++) {
        const before = ids(pages.slice(0, k + 1));
        const cursor = pages[k]!.cursor;
        const state = decodeCursor(cursor, 'ts', 'test');
        const t = new Tracker(state, 10_000);
        t.raiseHorizon(FAR);
        const after = ids(await collect(assemble(reader(all, state.lo, rand), t, 9, cursor)));
        expect([...before, ...after].sort()).toEqual(all.map((i) => `${i.change.id}/1`).sort());
      }
    });
  }
});

describe('keyDigest', () => {
  it('is stable, short, and keyed when a secret is given', () => {
    expect(keyDigest()('a|v1')).toBe(keyDigest()('a|v1'));
    expect(keyDigest()('a|v1')).toHaveLength(16);
    expect(keyDigest('k1')('a|v1')).not.toBe(keyDigest('k2')('a|v1'));
    expect(keyDigest('k1')('a|v1')).not.toBe(keyDigest()('a|v1'));
  });
});
