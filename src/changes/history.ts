/**
 * `fhir-history`: `GET [base]/<Type>/_history`, for servers with type-level history (HAPI).
 *
 * History is listed newest first and `_since` is inclusive (HAPI: `updated >= _since`, then
 * `updated DESC, id DESC`), so reading "everything since the cursor" and replaying it oldest
 * first would need the whole backlog in memory. Instead the feed walks time windows
 * `_at=ge<a>&_at=lt<b>` (HAPI accepts both bounds; it refuses `_since` together with `_at`)
 * that fit in one request, see windows.ts; the last window is open-ended (`_since=<a>`).
 * Windows are re-queried fresh, and `next` links are only followed inside a one-millisecond
 * window (one transaction's entries share one timestamp on HAPI), where new entries can only
 * shift offsets forward (duplicates, dropped by the dedupe), never skip one.
 *
 * DELETE entries carry no resource and, on HAPI, no timestamp: the version comes from
 * `request.url` (`Type/id/_history/n`) or the ETag, and the position is taken from the older
 * neighbour in the server's order (the list is sorted by time), so order is kept.
 */
import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import type { MedplumClient } from '@medplum/core';
import { FEED_ERR_BAD_RESPONSE, FEED_ERR_UNSUPPORTED } from '../shared/errors/index.ts';
import { urlPath } from '../shared/fhir-client.ts';
import { asBundle, getJson, hasNextLink, instantMs, nextLink } from '../shared/fhir-http.ts';
import { changeKey, type Item } from './tracker.ts';
import type { Probe, RangeSource } from './windows.ts';
import type { Change } from './types.ts';

export interface HistorySourceDeps {
  readonly client: MedplumClient;
  readonly resourceType: string;
  readonly signal: AbortSignal | undefined;
  readonly clock: () => number;
  /** Called with the server time of every answer. */
  readonly onServerTime: (ms: number) => void;
}

/**
 * The window source for one type's history.
 * @param deps - client, type, signal, clock and a server-time listener.
 * @returns the source for walkWindows.
 */
export function historySource(deps: HistorySourceDeps): RangeSource {
  const base = deps.client.fhirUrl(deps.resourceType, '_history').toString();
  const fetchPage = async (url: string): Promise<{ bundle: Bundle; url: string }> => {
    const answer = await getJson(deps.client, url, deps.signal, deps.clock);
    if (answer.serverTime !== undefined) {
      deps.onServerTime(answer.serverTime);
    }
    return { bundle: asBundle(answer.body, 'history', url), url };
  };
  const windowUrl = (a: number, b: number | undefined, count: number): string => {
    const range = b === undefined ? `_since=${iso(a)}` : `_at=ge${iso(a)}&_at=lt${iso(b)}`;
    return `${base}?${range}&_count=${count}`;
  };

  return {
    async probe(a: number, b: number | undefined, limit: number): Promise<Probe> {
      const { bundle, url } = await fetchPage(windowUrl(a, b, limit + 1));
      const items = historyItems(bundle, deps.resourceType, url, a);
      // (One second of slack below: some servers report lastUpdated truncated to the second.)
      if (items.some((i) => i.pos < a - 1000 || (b !== undefined && i.pos >= b))) {
        // Windows are the basis of every completeness claim: a server that ignores them is unusable here.
        throw FEED_ERR_UNSUPPORTED.create('fhir-history', deps.resourceType, 'the server ignores _since/_at bounds');
      }
      const more = hasNextLink(bundle) || items.length > limit;
      return { items, overflow: more, hint: oldestKnown(bundle) };
    },
    async *streamPosition(p: number, limit: number): AsyncGenerator<readonly Item[]> {
      let url: string | undefined = windowUrl(p, p + 1, limit);
      while (url) {
        const page = await fetchPage(url);
        yield historyItems(page.bundle, deps.resourceType, page.url, p);
        url = nextLink(page.bundle, deps.client.getBaseUrl(), page.url);
      }
    },
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * Turns a history page (newest first) into items, oldest first.
 * @param bundle - a history bundle.
 * @param resourceType - the type asked for.
 * @param url - where it came from, for messages.
 * @param floor - the window start: position of a DELETE with no older neighbour.
 * @returns items in ascending order.
 */
export function historyItems(bundle: Bundle, resourceType: string, url: string, floor: number): Item[] {
  const entries = bundle.entry ?? [];
  const items: Item[] = [];
  let pos = floor;
  for (let i = entries.length - 1; i >= 0; i--) {
    const where = `Bundle.entry[${i}]`;
    const { change, at } = historyChange(entries[i] as BundleEntry, resourceType, url, where);
    pos = at ?? pos;
    items.push({ change, pos, key: changeKey(change) });
  }
  return items;
}

function historyChange(
  entry: BundleEntry,
  resourceType: string,
  url: string,
  where: string,
): { change: Change; at: number | undefined } {
  const bad = (what: string): never => {
    throw FEED_ERR_BAD_RESPONSE.create(urlPath(url), `${where} ${what}`);
  };
  const resource = entry.resource;
  const ref = parseVersionedRef(entry.request?.url ?? '') ?? parseVersionedRef(entry.fullUrl ?? '');
  if (entry.request?.method === 'DELETE') {
    const id = resource?.id ?? ref?.id ?? bad('is a DELETE without a resource id');
    const versionId = resource?.meta?.versionId ?? ref?.versionId ?? etagVersion(entry.response?.etag);
    const lastUpdated = resource?.meta?.lastUpdated ?? entry.response?.lastModified;
    const change: Change = {
      kind: 'deletion',
      resourceType,
      id,
      ...opt('versionId', versionId),
      ...opt('lastUpdated', lastUpdated),
    };
    return { change, at: instantMs(lastUpdated) };
  }
  if (!resource) {
    return bad('has no resource');
  }
  if (resource.resourceType !== resourceType) {
    return bad('holds another resource type');
  }
  const id = resource.id ?? bad('has a resource without id');
  const lastUpdated = resource.meta?.lastUpdated ?? entry.response?.lastModified;
  const at = instantMs(lastUpdated) ?? bad('has no meta.lastUpdated');
  const versionId = resource.meta?.versionId ?? ref?.versionId ?? etagVersion(entry.response?.etag);
  const change: Change = {
    kind: 'resource',
    resourceType,
    id,
    ...opt('versionId', versionId),
    ...opt('lastUpdated', lastUpdated),
    resource,
  };
  return { change, at };
}

function oldestKnown(bundle: Bundle): number | undefined {
  let min: number | undefined;
  for (const e of bundle.entry ?? []) {
    const at = instantMs(e.resource?.meta?.lastUpdated ?? e.response?.lastModified);
    if (at !== undefined && (min === undefined || at < min)) {
      min = at;
    }
  }
  return min;
}

/**
 * Reads `Type/id/_history/v` (relative or absolute) into id and version.
 * @param ref - a request URL or fullUrl.
 * @returns id and version (version may be absent), or undefined.
 */
export function parseVersionedRef(ref: string): { id: string; versionId?: string } | undefined {
  const path = ref.split('?')[0] ?? '';
  const m = /(?:^|\/)[A-Z][A-Za-z]+\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/([A-Za-z0-9\-.]{1,64}))?\/?$/.exec(path);
  if (!m?.[1]) {
    return undefined;
  }
  return m[2] ? { id: m[1], versionId: m[2] } : { id: m[1] };
}

function etagVersion(etag: string | undefined): string | undefined {
  const m = etag ? /^(?:W\/)?"([^"]+)"$/.exec(etag) : null;
  return m?.[1];
}

function opt<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}
