/** Turning server answers into changes: HAPI history pages and search pages (shapes as HAPI 8.8 sends them). */
import type { Bundle } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { historyItems, parseVersionedRef } from '../../src/changes/history.ts';
import { nextLink } from '../../src/shared/fhir-http.ts';
import { searchItems } from '../../src/changes/search.ts';
import { FEED_ERR_BAD_RESPONSE, FEED_ERR_FOREIGN_LINK } from '../../src/shared/errors/index.ts';

const URL_ = 'http://127.0.0.1:8092/fhir/Basic/_history?_since=2026-01-01T00:00:00Z';

// The history of one resource as HAPI lists it: newest first; the DELETE entry has no
// resource and no timestamp, only `request.url` with the version and an ETag.
const history: Bundle = {
  resourceType: 'Bundle',
  type: 'history',
  entry: [
    {
      fullUrl: 'http://127.0.0.1:8092/fhir/Basic/p',
      request: { method: 'PUT', url: 'Basic/p/_history/4' },
      response: { status: '200 OK', etag: 'W/"4"' },
      resource: {
        resourceType: 'Basic',
        id: 'p',
        meta: { versionId: '4', lastUpdated: '2026-11-23T01:25:07.433+00:00' },
        code: {},
      },
    },
    {
      fullUrl: 'http://127.0.0.1:8092/fhir/Basic/p',
      request: { method: 'DELETE', url: 'Basic/p/_history/3' },
      response: { status: '200 OK', etag: 'W/"3"' },
    },
    {
      fullUrl: 'http://127.0.0.1:8092/fhir/Basic/p',
      request: { method: 'PUT', url: 'Basic/p/_history/2' },
      response: { status: '200 OK', etag: 'W/"2"' },
      resource: {
        resourceType: 'Basic',
        id: 'p',
        meta: { versionId: '2', lastUpdated: '2026-11-23T01:25:06.777+00:00' },
        code: {},
      },
    },
  ],
};

describe('historyItems', () => {
  it('lists oldest first and turns DELETE entries into deletions placed after their older neighbour', () => {
    const items = historyItems(history, 'Basic', URL_, 0);
    expect(items.map((i) => `${i.change.kind}:${i.change.versionId}`)).toEqual([
      'resource:2',
      'deletion:3',
      'resource:4',
    ]);
    expect(items[1]!.pos).toBe(Date.parse('2026-11-23T01:25:06.777Z'));
    expect(items[1]!.change).toEqual({ kind: 'deletion', resourceType: 'Basic', id: 'p', versionId: '3' });
    expect(items[1]!.key).toBe('p|v3');
  });

  it('places a DELETE with no older neighbour at the window start', () => {
    const onlyDelete: Bundle = { ...history, entry: [history.entry![1]!] };
    expect(historyItems(onlyDelete, 'Basic', URL_, 1234)[0]!.pos).toBe(1234);
  });

  it('rejects an entry of another type or without timestamp, naming the entry, not its content', () => {
    const wrong: Bundle = {
      ...history,
      entry: [{ ...history.entry![0]!, resource: { resourceType: 'Patient', id: 'p' } }],
    };
    expect(() => historyItems(wrong, 'Basic', URL_, 0)).toThrow(
      expect.objectContaining({ code: FEED_ERR_BAD_RESPONSE.code }),
    );
    const undated: Bundle = {
      ...history,
      entry: [{ request: { method: 'PUT', url: 'Basic/p' }, resource: { resourceType: 'Basic', id: 'p', code: {} } }],
    };
    let err: Error | undefined;
    try {
      historyItems(undated, 'Basic', URL_, 0);
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).toContain('Bundle.entry[0]');
    expect(err?.message).toContain('/fhir/Basic/_history');
    expect(err?.message).not.toContain('2026-01-01');
  });
});

describe('parseVersionedRef', () => {
  it.each([
    ['Basic/p/_history/3', { id: 'p', versionId: '3' }],
    ['http://h/fhir/Basic/p/_history/3', { id: 'p', versionId: '3' }],
    ['http://h/fhir/Basic/p', { id: 'p' }],
    ['nonsense', undefined],
  ])('%s', (ref, expected) => {
    expect(parseVersionedRef(ref)).toEqual(expected);
  });
});

describe('searchItems', () => {
  const page = (...stamps: string[]): Bundle => ({
    resourceType: 'Bundle',
    type: 'searchset',
    entry: [
      ...stamps.map((s, i) => ({
        search: { mode: 'match' as const },
        resource: { resourceType: 'Basic' as const, id: `r${i}`, meta: { versionId: '1', lastUpdated: s }, code: {} },
      })),
      { search: { mode: 'include' as const }, resource: { resourceType: 'Patient' as const, id: 'inc' } },
    ],
  });

  it('keeps matches only, with their versions', () => {
    const items = searchItems(page('2026-01-01T00:00:00Z', '2026-01-01T00:00:01Z'), 'Basic', URL_, 'resource');
    expect(items.map((i) => i.key)).toEqual(['r0|v1', 'r1|v1']);
  });

  it('turns deletion stubs (id + lastUpdated only) into deletions', () => {
    const stubs: Bundle = {
      resourceType: 'Bundle',
      type: 'searchset',
      entry: [
        { resource: { resourceType: 'Basic', id: 'gone', meta: { lastUpdated: '2026-01-01T00:00:00Z' } } as never },
      ],
    };
    const [item] = searchItems(stubs, 'Basic', URL_, 'deletion');
    expect(item!.change).toEqual({
      kind: 'deletion',
      resourceType: 'Basic',
      id: 'gone',
      lastUpdated: '2026-01-01T00:00:00Z',
    });
    expect(item!.key).toBe('gone|d2026-01-01T00:00:00Z');
  });

  it('reads an empty page as no items', () => {
    expect(searchItems(page(), 'Basic', URL_, 'resource')).toEqual([]);
  });

  it('keeps a page up to a resource that moved under the search (later than an entry after it)', () => {
    const items = searchItems(
      page('2026-01-01T00:00:00Z', '2026-01-01T00:00:09Z', '2026-01-01T00:00:03Z', '2026-01-01T00:00:04Z'),
      'Basic',
      URL_,
      'resource',
    );
    expect(items.map((i) => i.change.id)).toEqual(['r0']);
  });

  it('refuses a page out of _lastUpdated order (a server that ignored _sort would make the cursor skip)', () => {
    expect(() => searchItems(page('2026-01-01T00:00:01Z', '2026-01-01T00:00:00Z'), 'Basic', URL_, 'resource')).toThrow(
      expect.objectContaining({ code: FEED_ERR_BAD_RESPONSE.code }),
    );
  });
});

describe('nextLink', () => {
  const bundle = (url: string): Bundle => ({
    resourceType: 'Bundle',
    type: 'searchset',
    link: [{ relation: 'next', url }],
  });

  it('follows links on the same origin and resolves relative ones', () => {
    expect(nextLink(bundle('http://127.0.0.1:8092/fhir?_getpages=x'), 'http://127.0.0.1:8092/', URL_)).toBe(
      'http://127.0.0.1:8092/fhir?_getpages=x',
    );
    expect(nextLink(bundle('/fhir?_getpages=y'), 'http://127.0.0.1:8092/', URL_)).toBe(
      'http://127.0.0.1:8092/fhir?_getpages=y',
    );
    expect(nextLink({ resourceType: 'Bundle', type: 'searchset' }, 'http://127.0.0.1:8092/', URL_)).toBeUndefined();
  });

  it('follows a loopback-named link at the registered address, and only on the same scheme and port', () => {
    expect(nextLink(bundle('http://localhost:8092/fhir?_getpages=x'), 'http://127.0.0.1:8092/', URL_)).toBe(
      'http://127.0.0.1:8092/fhir?_getpages=x',
    );
    for (const other of [
      'http://localhost:8093/fhir?x',
      'https://localhost:8092/fhir?x',
      'http://10.0.0.1:8092/fhir?x',
    ]) {
      expect(() => nextLink(bundle(other), 'http://127.0.0.1:8092/', URL_), other).toThrow(
        expect.objectContaining({ code: FEED_ERR_FOREIGN_LINK.code }),
      );
    }
  });

  it('refuses a link to another origin (credentials would follow it)', () => {
    expect(() => nextLink(bundle('http://elsewhere.example/fhir?_getpages=x'), 'http://127.0.0.1:8092/', URL_)).toThrow(
      expect.objectContaining({ code: FEED_ERR_FOREIGN_LINK.code }),
    );
  });
});
