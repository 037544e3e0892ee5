/**
 * `aidbox-changes`: the Aidbox Changes API, `GET /<Type>/$changes` on the Aidbox root (not
 * under `/fhir`). Contract-tested against the documented answers, not against a live Aidbox.
 *
 * Contract used (Aidbox docs, "Changes API"):
 * - `GET /<Type>/$changes` -> `{ "version": <head> }`;
 * - `version=<L>,<U>` -> changes with L < version <= U, as `{ version, changes: [{ event,
 *   resource }] }`; `_count`/`_page` page them; `fhir=true` gives FHIR-shaped resources;
 * - 304 when there is nothing.
 * The version is the Postgres txid, also the resources' `meta.versionId`. The feed reads the
 * head once per poll, then walks version ranges (lower, upper] that fit in one request
 * (windows.ts), so it neither depends on the order of `changes` nor holds more than a page.
 *
 * Late commits (docs, "Possible Race Condition"): txid 99 can commit after 100, and a poll in
 * between sees only 100. Versions become final ("settle") by either of:
 * - marks: a head H seen at local time T; every txid <= H was allocated before T, so after
 *   T + settleMs all of them have committed or rolled back;
 * - data: Aidbox stamps `meta.lastUpdated` with the transaction's start time; a change at
 *   version V stamped more than 2 x settleMs before the server's `Date` proves that every
 *   lower txid has finished (each was allocated before V's, and transactions last < settleMs).
 * The cursor never passes an unsettled version; until then changes above it are re-read every
 * poll and dropped by (id, versionId).
 */
import type { MedplumClient } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { FEED_ERR_BAD_RESPONSE, FEED_ERR_UNKNOWN_EVENT } from '../shared/errors/index.ts';
import { urlPath } from '../shared/fhir-client.ts';
import type { Mark } from './cursor.ts';
import { getJson, instantMs } from '../shared/fhir-http.ts';
import { changeKey, type Chunk, type Item, type Tracker } from './tracker.ts';
import type { Change } from './types.ts';
import { walkWindows, type Probe, type RangeSource } from './windows.ts';

export interface AidboxDeps {
  readonly client: MedplumClient;
  readonly resourceType: string;
  readonly signal: AbortSignal | undefined;
  readonly clock: () => number;
  readonly settleMs: number;
  readonly pageSize: number;
}

/** Most head marks a cursor keeps; more only delay settling, never lose anything. */
const MAX_MARKS = 16;

/**
 * Reads one poll's worth of changes after the tracker's position.
 * @param deps - client, type, clock and settings.
 * @param tracker - the run's cursor state (its horizon and marks are updated here).
 * @returns chunks for assemble().
 */
export async function* aidboxChunks(deps: AidboxDeps, tracker: Tracker): AsyncGenerator<Chunk> {
  const now = deps.clock();
  const endpoint = new URL(`${deps.resourceType}/$changes`, deps.client.getBaseUrl()).toString();
  const head = await getJson(deps.client, endpoint, deps.signal, deps.clock);
  const version = head.status === 304 ? undefined : headVersion(head.body, endpoint);
  const marks = nextMarks(tracker.currentMarks, version, now, tracker.position);
  tracker.setMarks(marks);
  const settled = marks.filter(([, at]) => at <= now - deps.settleMs).reduce((max, [v]) => Math.max(max, v), 0);
  tracker.raiseHorizon(settled + 1);
  if (version === undefined) {
    return;
  }
  const oldEnough = head.serverTime === undefined ? undefined : head.serverTime - 2 * deps.settleMs;
  const onItems = (items: readonly Item[]): void => {
    for (const item of items) {
      const stamped = instantMs(item.change.lastUpdated);
      if (
        oldEnough !== undefined &&
        stamped !== undefined &&
        stamped <= oldEnough &&
        item.change.versionId === String(item.pos)
      ) {
        tracker.raiseHorizon(item.pos + 1);
      }
    }
  };
  const source = aidboxSource(deps, endpoint, onItems);
  yield* walkWindows(source, {
    start: tracker.position,
    end: version + 1,
    openFrom: () => undefined,
    pageSize: deps.pageSize,
  });
}

function nextMarks(previous: readonly Mark[], head: number | undefined, now: number, lo: number): Mark[] {
  const marks = previous.filter(([v]) => v >= lo);
  if (head !== undefined && !marks.some(([v]) => v === head)) {
    marks.push([head, now]);
  }
  marks.sort((x, y) => x[1] - y[1]);
  // Keep the oldest marks (they settle first) and the newest; drop from the middle.
  while (marks.length > MAX_MARKS) {
    marks.splice(marks.length - 2, 1);
  }
  return marks;
}

function headVersion(body: unknown, url: string): number {
  const v = (body as { version?: unknown } | undefined)?.version;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw FEED_ERR_BAD_RESPONSE.create(urlPath(url), '"version" is not a non-negative integer');
  }
  return n;
}

function aidboxSource(deps: AidboxDeps, endpoint: string, onItems: (items: readonly Item[]) => void): RangeSource {
  const read = async (
    after: number,
    upTo: number,
    count: number,
    page: number,
  ): Promise<{ items: Item[]; raw: number }> => {
    const url = `${endpoint}?version=${after},${upTo}&_count=${count}&_page=${page}&fhir=true`;
    const answer = await getJson(deps.client, url, deps.signal, deps.clock);
    if (answer.status === 304) {
      return { items: [], raw: 0 };
    }
    const changes = changesOf(answer.body, url);
    const items = changes.map((c, i) => aidboxItem(c, i, deps.resourceType, url, upTo)).sort((x, y) => x.pos - y.pos);
    onItems(items);
    return { items, raw: changes.length };
  };
  return {
    async probe(a: number, b: number | undefined, limit: number): Promise<Probe> {
      // Window [a, b) of versions is Aidbox's (a - 1, b - 1].
      const { items, raw } = await read(a - 1, (b ?? Number.MAX_SAFE_INTEGER) - 1, limit + 1, 1);
      return { items, overflow: raw > limit };
    },
    async *streamPosition(p: number, limit: number): AsyncGenerator<readonly Item[]> {
      for (let page = 1; ; page++) {
        const { items, raw } = await read(p - 1, p, limit, page);
        yield items;
        if (raw < limit) {
          return;
        }
      }
    },
  };
}

function changesOf(body: unknown, url: string): unknown[] {
  const changes = (body as { changes?: unknown } | undefined)?.changes;
  if (changes === undefined) {
    return [];
  }
  if (!Array.isArray(changes)) {
    throw FEED_ERR_BAD_RESPONSE.create(urlPath(url), '"changes" is not a list');
  }
  return changes;
}

const RESOURCE_EVENTS = new Set(['created', 'updated', 'recreated']);

function aidboxItem(raw: unknown, i: number, resourceType: string, url: string, upTo: number): Item {
  const where = `changes[${i}]`;
  const bad = (what: string): never => {
    throw FEED_ERR_BAD_RESPONSE.create(urlPath(url), `${where} ${what}`);
  };
  const { event, resource } = (typeof raw === 'object' && raw !== null ? raw : bad('is not an object')) as {
    event?: unknown;
    resource?: Resource;
  };
  if (typeof event !== 'string') {
    return bad('has no event');
  }
  if (!resource || typeof resource !== 'object') {
    return bad('has no resource');
  }
  if (resource.resourceType !== undefined && resource.resourceType !== resourceType) {
    bad('holds another resource type');
  }
  const id = typeof resource.id === 'string' && resource.id !== '' ? resource.id : bad('has a resource without id');
  const versionId = resource.meta?.versionId;
  const lastUpdated = resource.meta?.lastUpdated;
  const base = { resourceType, id, ...(versionId ? { versionId } : {}), ...(lastUpdated ? { lastUpdated } : {}) };
  let change: Change;
  if (event === 'deleted') {
    change = { kind: 'deletion', ...base };
  } else if (RESOURCE_EVENTS.has(event)) {
    change = { kind: 'resource', ...base, resource: { ...resource, resourceType } as Resource };
  } else {
    throw FEED_ERR_UNKNOWN_EVENT.create(
      urlPath(url),
      `${where} has event "${event.replace(/[^a-z-]/gi, '').slice(0, 20)}"`,
    );
  }
  // Without a numeric versionId the change is placed at the window's upper bound: it is kept in the
  // dedupe set a little longer, never dropped early.
  const pos = versionId && /^\d+$/.test(versionId) ? Number(versionId) : upTo;
  return { change, pos, key: changeKey(change) };
}
