/**
 * `search-lastupdated`: for servers without type-level history (Medplum):
 * `GET [base]/<Type>?_lastUpdated=ge<t>&_sort=_lastUpdated&_count=<n>`.
 *
 * Pages are read as *keyset* queries, each one fresh from the last timestamp seen (`ge`, not
 * `gt`, because of ties; changes already delivered on that instant are dropped by their keys).
 * Following `next` links instead would be offset paging on some servers, where a resource
 * updated during the walk leaves its slot and shifts the rest one place back, so one change is
 * skipped for good. Links are followed only when a whole page shares one timestamp (a big
 * transaction) and keyset cannot move on; HAPI pages searches from a stored snapshot and
 * Medplum uses keyset cursors there, so nothing is skipped inside a tie.
 *
 * Limits (documented, not fixable by a client): search returns current versions only, so
 * intermediate versions between two polls are not seen; deletions are invisible unless the
 * server lists them (Medplum: `_deleted=true`, configured as `deletionsQuery`), which is read
 * as a second keyset stream merged by position.
 */
import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import type { MedplumClient } from '@medplum/core';
import { FEED_ERR_BAD_RESPONSE, FEED_ERR_SERVER, FEED_ERR_TIE_TOO_LARGE } from '../shared/errors/index.ts';
import { urlPath } from '../shared/fhir-client.ts';
import { asBundle, getJson, hasNextLink, instantMs, nextLink } from '../shared/fhir-http.ts';
import { changeKey, type Chunk, type Item } from './tracker.ts';
import type { Change } from './types.ts';

export interface SearchDeps {
  readonly client: MedplumClient;
  readonly resourceType: string;
  readonly signal: AbortSignal | undefined;
  readonly clock: () => number;
  readonly onServerTime: (ms: number) => void;
  readonly pageSize: number;
  readonly deletionsQuery: string | undefined;
}

/** One keyset stream: yields its chunks and tells how far it has got. */
interface Stream {
  readonly chunks: AsyncGenerator<Chunk>;
  progress: number;
}

/**
 * Reads resources (and deletion stubs when configured) changed at or after `start`.
 * @param deps - client, type, paging and the deletions query.
 * @param start - first position (epoch ms, inclusive).
 * @returns chunks; `below` is the least progress of the streams.
 */
export async function* searchChunks(deps: SearchDeps, start: number): AsyncGenerator<Chunk> {
  const streams: Stream[] = [{ chunks: keyset(deps, start, 'resource'), progress: start }];
  if (deps.deletionsQuery) {
    streams.push({ chunks: keyset(deps, start, 'deletion'), progress: start });
  }
  for (;;) {
    // Advance the stream that is behind, so the two stay within about a page of each other.
    const open = streams.filter((s) => Number.isFinite(s.progress));
    if (open.length === 0) {
      yield { items: [], below: Number.POSITIVE_INFINITY };
      return;
    }
    const stream = open.reduce((x, y) => (y.progress < x.progress ? y : x));
    const next = await stream.chunks.next();
    stream.progress = next.done ? Number.POSITIVE_INFINITY : (next.value.below ?? stream.progress);
    const below = Math.min(...streams.map((s) => s.progress));
    if (!next.done) {
      yield { items: next.value.items, below };
    }
  }
}

async function* keyset(deps: SearchDeps, start: number, kind: Change['kind']): AsyncGenerator<Chunk> {
  const base = deps.client.fhirUrl(deps.resourceType).toString();
  const extra = kind === 'deletion' ? `&${deps.deletionsQuery}` : '';
  let t = start;
  let stalled = false;
  for (;;) {
    const url = `${base}?_lastUpdated=ge${new Date(t).toISOString()}&_sort=_lastUpdated&_count=${deps.pageSize}${extra}`;
    const page = await fetchOrdered(deps, url, kind, stalled);
    if (page === undefined) {
      stalled = true; // a resource moved under the search: ask again once
      continue;
    }
    if (page.truncated) {
      // Cut before a resource that moved under the search: go on from the last entry kept.
      const last = page.items.at(-1)!.pos;
      if (last <= t && stalled) {
        throw FEED_ERR_BAD_RESPONSE.create(
          urlPath(url),
          'entries stay out of _lastUpdated order (the server ignored _sort)',
        );
      }
      stalled = last <= t;
      yield { items: page.items, below: last };
      t = last;
      continue;
    }
    stalled = false;
    if (!hasNextLink(page.bundle)) {
      yield { items: page.items, below: Number.POSITIVE_INFINITY };
      return;
    }
    const last = page.items.at(-1)?.pos ?? t;
    if (last > t) {
      yield { items: page.items, below: last };
      t = last;
      continue;
    }
    // The whole page sits on instant t: follow the server's links until the tie is passed.
    yield { items: page.items, below: t };
    // Only here is a server link followed (and checked): keyset pages build their own URLs.
    const passed = yield* followTie(deps, nextLink(page.bundle, deps.client.getBaseUrl(), page.url), t, kind);
    if (passed === undefined) {
      yield { items: [], below: Number.POSITIVE_INFINITY };
      return;
    }
    t = passed;
  }
}

/**
 * A keyset page, or undefined the first time its first entry is out of order (a resource that
 * moved under the search, or a server that ignored `_sort`: the second time, it is refused).
 */
async function fetchOrdered(
  deps: SearchDeps,
  url: string,
  kind: Change['kind'],
  retried: boolean,
): Promise<Awaited<ReturnType<typeof fetchSearch>> | undefined> {
  try {
    return await fetchSearch(deps, url, kind);
  } catch (err) {
    if (!retried && FEED_ERR_BAD_RESPONSE.is(err) && err.details.outOfOrder === true) {
      return undefined;
    }
    throw err;
  }
}

async function* followTie(
  deps: SearchDeps,
  first: string | undefined,
  t: number,
  kind: Change['kind'],
): AsyncGenerator<Chunk, number | undefined> {
  let url: string | undefined = first;
  while (url) {
    let page: Awaited<ReturnType<typeof fetchSearch>>;
    try {
      page = await fetchSearch(deps, url, kind);
    } catch (err) {
      if (!FEED_ERR_SERVER.is(err)) {
        throw err;
      }
      // Some servers cannot page through more resources sharing one lastUpdated than a page
      // holds (Medplum: 500 "Cursor fails to make progress", again on every retry): read
      // that one instant whole instead.
      return yield* readInstant(deps, t, kind);
    }
    if (page.truncated) {
      // A resource moved under the search: following the link would pass what was cut.
      return yield* readInstant(deps, t, kind);
    }
    const last = page.items.at(-1)?.pos ?? t;
    yield { items: page.items, below: last };
    if (last > t) {
      return last;
    }
    url = nextLink(page.bundle, deps.client.getBaseUrl(), page.url);
  }
  return undefined;
}

/** Largest page asked for when one instant is read whole. */
const INSTANT_PAGE = 1000;

async function* readInstant(deps: SearchDeps, t: number, kind: Change['kind']): AsyncGenerator<Chunk, number> {
  const at = (ms: number): string => new Date(ms).toISOString();
  const extra = kind === 'deletion' ? `&${deps.deletionsQuery}` : '';
  const url =
    `${deps.client.fhirUrl(deps.resourceType).toString()}?_lastUpdated=ge${at(t)}&_lastUpdated=lt${at(t + 1)}` +
    `&_sort=_lastUpdated&_count=${INSTANT_PAGE}${extra}`;
  const page = await fetchSearch(deps, url, kind);
  if (hasNextLink(page.bundle) || page.items.length >= INSTANT_PAGE) {
    throw FEED_ERR_TIE_TOO_LARGE.create(deps.resourceType, at(t), INSTANT_PAGE);
  }
  if (page.truncated) {
    // Claiming all of t read would pass what was cut: refuse; the pass runs again later.
    throw FEED_ERR_BAD_RESPONSE.create(urlPath(url), 'entries out of _lastUpdated order within one instant');
  }
  // Everything at t has been read: the walk goes on just after it.
  yield { items: page.items, below: t + 1 };
  return t + 1;
}

async function fetchSearch(
  deps: SearchDeps,
  url: string,
  kind: Change['kind'],
): Promise<{ items: Item[]; bundle: Bundle; url: string; truncated: boolean }> {
  const answer = await getJson(deps.client, url, deps.signal, deps.clock);
  if (answer.serverTime !== undefined) {
    deps.onServerTime(answer.serverTime);
  }
  const bundle = asBundle(answer.body, 'searchset', url);
  const items = searchItems(bundle, deps.resourceType, url, kind);
  const matches = (bundle.entry ?? []).filter((e) => e.search?.mode === undefined || e.search.mode === 'match');
  return { items, bundle, url, truncated: items.length < matches.length };
}

/**
 * Turns a search page into items (matches only, in the server's `_lastUpdated` order).
 * @param bundle - a searchset bundle.
 * @param resourceType - the type searched.
 * @param url - where it came from, for messages.
 * @param kind - `deletion` for a deletions query (stubs with id and lastUpdated).
 * @returns the items.
 */
export function searchItems(bundle: Bundle, resourceType: string, url: string, kind: Change['kind']): Item[] {
  const items: Item[] = [];
  (bundle.entry ?? []).forEach((entry: BundleEntry, i) => {
    if (entry.search?.mode !== undefined && entry.search.mode !== 'match') {
      return;
    }
    const bad = (what: string): never => {
      throw FEED_ERR_BAD_RESPONSE.create(urlPath(url), `Bundle.entry[${i}] ${what}`);
    };
    const resource = entry.resource ?? bad('has no resource');
    if (resource.resourceType !== resourceType) {
      bad('holds another resource type');
    }
    const id = resource.id ?? bad('has a resource without id');
    const lastUpdated = resource.meta?.lastUpdated ?? bad('has no meta.lastUpdated');
    const pos = instantMs(lastUpdated) ?? bad('has a malformed meta.lastUpdated');
    const versionId = resource.meta?.versionId;
    const change: Change =
      kind === 'deletion'
        ? { kind, resourceType, id, lastUpdated, ...(versionId ? { versionId } : {}) }
        : { kind, resourceType, id, lastUpdated, resource, ...(versionId ? { versionId } : {}) };
    items.push({ change, pos, key: changeKey(change) });
  });
  return inOrderPrefix(items, url);
}

/**
 * The page up to its first entry that is later than one after it. A resource updated while the
 * server ran the search comes back in its old slot with its new lastUpdated (HAPI sorts the ids,
 * then loads current versions): every entry before it is in order and no later than anything
 * after, so the cursor may pass them; the moved one and the rest are read again by the next
 * keyset query, the moved one at its new place. Disorder from the first entry on cannot be
 * told from a server that ignored `_sort`: refused.
 */
function inOrderPrefix(items: Item[], url: string): Item[] {
  let cut = items.length;
  let min = Number.POSITIVE_INFINITY;
  for (let i = items.length - 1; i >= 0; i--) {
    const pos = items[i]!.pos;
    if (pos > min) {
      cut = i;
    }
    min = Math.min(min, pos);
  }
  if (cut === 0 && items.length > 0) {
    throw FEED_ERR_BAD_RESPONSE.createWith({ outOfOrder: true }, [
      urlPath(url),
      'Bundle.entry[0] is out of _lastUpdated order (the server ignored _sort)',
    ]);
  }
  return cut === items.length ? items : items.slice(0, cut);
}
