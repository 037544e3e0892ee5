import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor, initialState } from '../../src/changes/cursor.ts';
import { describeCursor } from '../../src/changes/index.ts';
import { FEED_ERR_CURSOR_INVALID } from '../../src/shared/errors/index.ts';

describe('cursor encoding', () => {
  it('round-trips a timestamp cursor with remembered keys grouped by position', () => {
    const state = {
      family: 'ts' as const,
      lo: Date.parse('2025-03-01T10:00:00.123Z'),
      seen: new Map([
        ['a|v1', Date.parse('2025-03-01T10:00:00.123Z')],
        ['b|v7', Date.parse('2025-03-01T10:00:05Z')],
      ]),
      marks: [],
    };
    const cursor = encodeCursor(state);
    expect(JSON.parse(cursor)).toMatchObject({ f: 'ts', lo: '2025-03-01T10:00:00.123Z' });
    expect(decodeCursor(cursor, 'ts', 'fhir-history')).toEqual(state);
    expect(describeCursor(cursor)).toEqual({
      family: 'ts',
      position: '2025-03-01T10:00:00.123Z',
      rememberedChanges: 2,
    });
  });

  it('round-trips a version cursor with head marks; `after` is exclusive like Aidbox', () => {
    const state = {
      family: 'ver' as const,
      lo: 42,
      seen: new Map([['p|v43', 43]]),
      marks: [[50, 1_700_000_000_000] as const],
    };
    const cursor = encodeCursor(state);
    expect(JSON.parse(cursor)).toMatchObject({ f: 'ver', after: 41 });
    expect(decodeCursor(cursor, 'ver', 'aidbox-changes')).toEqual(state);
  });

  it('starts from the beginning without a cursor', () => {
    expect(decodeCursor(undefined, 'ts', 'x')).toEqual(initialState('ts'));
    expect(decodeCursor(undefined, 'ver', 'x').lo).toBe(1);
  });

  it.each([
    ['not json', 'nope'],
    ['other family', encodeCursor(initialState('ver'))],
    ['bad lo', '{"c":1,"f":"ts","lo":"yesterday","seen":[]}'],
    ['seen below lo', '{"c":1,"f":"ts","lo":"2025-01-01T00:00:00Z","seen":[[5,["a|v1"]]]}'],
    ['future format', '{"c":2,"f":"ts","lo":"2025-01-01T00:00:00Z","seen":[]}'],
    ['bad key', '{"c":1,"f":"ts","lo":"2025-01-01T00:00:00Z","seen":[[1735689600000,[3]]]}'],
  ])('rejects a cursor with %s as FEED_ERR_CURSOR_INVALID (not retryable)', (_what, cursor) => {
    let err: unknown;
    try {
      decodeCursor(cursor, 'ts', 'fhir-history');
    } catch (e) {
      err = e;
    }
    expect(FEED_ERR_CURSOR_INVALID.is(err)).toBe(true);
    expect((err as { retryable: boolean }).retryable).toBe(false);
  });
});
