/**
 * A FHIR search stand-in for `search-lastupdated` contract tests: `_lastUpdated=ge`,
 * `_sort=_lastUpdated`, `_count`, Medplum's `_deleted=true` stubs, and HAPI-style `next`
 * links (`?_getpages=<id>&_getpagesoffset=<n>`) over a snapshot of the matching ids that
 * return each resource's *current* version, as HAPI does.
 */
import type { Resource } from '@medplum/fhirtypes';
import { sendJson, startServer, type TestServer } from './http-server.ts';

interface Row {
  id: string;
  version: number;
  lastUpdated: number;
  deleted: boolean;
}

export interface SearchStandIn extends TestServer {
  put(id: string, at: number): void;
  remove(id: string, at: number): void;
  /** Called after each answer (to change data between two page reads). */
  afterAnswer: ((n: number) => void) | undefined;
  /**
   * Called once a query has sorted its ids and before it loads their rows (to update a resource
   * under a running search, as a write committed meanwhile does on HAPI).
   */
  duringSearch: ((n: number) => void) | undefined;
}

/**
 * @param type - the resource type served.
 * @param links - `snapshot`: HAPI `_getpages` over the ids matched by the first query;
 *   `offset`: `_offset` re-running the query on live data (Medplum without cursors), where an
 *   update between two reads shifts later rows back by one.
 * @param selfHost - the host the server names itself with in its links (Medplum behind
 *   127.0.0.1 says `localhost`); the requested host by default.
 * @param stuckCursor - answer a link whose previous page sat on one instant with 500 "Cursor
 *   fails to make progress", as Medplum does for ties larger than a page.
 */
export async function startSearchServer(
  type = 'Basic',
  links: 'snapshot' | 'offset' = 'snapshot',
  selfHost?: (requested: string) => string,
  stuckCursor = false,
): Promise<SearchStandIn> {
  const rows = new Map<string, Row>();
  const snapshots = new Map<string, { ids: string[]; deleted: boolean }>();
  let answers = 0;
  let searches = 0;
  const box: { self?: SearchStandIn } = {};
  const server = await startServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const host = req.headers.host ?? '';
    const base = `http://${selfHost === undefined ? host : selfHost(host)}/fhir`;
    const count = Number(url.searchParams.get('_count') ?? '20');
    let ids: string[];
    let offset: number;
    let deleted: boolean;
    let sid = url.searchParams.get('_getpages');
    if (sid) {
      const snap = snapshots.get(sid)!;
      ids = snap.ids;
      deleted = snap.deleted;
      offset = Number(url.searchParams.get('_getpagesoffset'));
      const before = ids.slice(Math.max(0, offset - count), offset).map((id) => rows.get(id)!.lastUpdated);
      if (stuckCursor && before.length > 0 && before.every((t) => t === before[0])) {
        sendJson(res, 500, {
          resourceType: 'OperationOutcome',
          issue: [{ severity: 'error', code: 'exception', details: { text: 'Cursor fails to make progress' } }],
        });
        return;
      }
    } else {
      if (url.pathname !== `/fhir/${type}` || url.searchParams.get('_sort') !== '_lastUpdated') {
        sendJson(res, 400, { resourceType: 'OperationOutcome', issue: [] });
        return;
      }
      const bounds = url.searchParams.getAll('_lastUpdated');
      const ge = Date.parse((bounds.find((b) => b.startsWith('ge')) ?? 'ge1970-01-01T00:00:00Z').slice(2));
      const lt = Date.parse((bounds.find((b) => b.startsWith('lt')) ?? 'lt9999-01-01T00:00:00Z').slice(2));
      deleted = url.searchParams.get('_deleted') === 'true';
      offset = Number(url.searchParams.get('_offset') ?? '0');
      ids = [...rows.values()]
        .filter((r) => r.deleted === deleted && r.lastUpdated >= ge && r.lastUpdated < lt)
        .sort((a, b) => a.lastUpdated - b.lastUpdated || a.id.localeCompare(b.id))
        .map((r) => r.id);
      sid = `s${snapshots.size}`;
      snapshots.set(sid, { ids, deleted });
    }
    searches++;
    box.self?.duringSearch?.(searches);
    const slice = ids.slice(offset, offset + count).map((id) => rows.get(id)!);
    const link = [{ relation: 'self', url: `${base}/${type}` }];
    if (offset + count < ids.length) {
      const query = new URLSearchParams(url.searchParams);
      query.set('_offset', String(offset + count));
      const next =
        links === 'snapshot'
          ? `${base}?_getpages=${sid}&_getpagesoffset=${offset + count}&_count=${count}`
          : `${base}/${type}?${query.toString()}`;
      link.push({ relation: 'next', url: next });
    }
    sendJson(res, 200, {
      resourceType: 'Bundle',
      type: 'searchset',
      link,
      entry: slice.map((r) => ({ search: { mode: 'match' }, resource: body(type, r, deleted) })),
    });
    box.self?.afterAnswer?.(++answers);
  });
  box.self = Object.assign(server, {
    afterAnswer: undefined as ((n: number) => void) | undefined,
    duringSearch: undefined as ((n: number) => void) | undefined,
    put(id: string, at: number): void {
      const old = rows.get(id);
      rows.set(id, { id, version: (old?.version ?? 0) + 1, lastUpdated: at, deleted: false });
    },
    remove(id: string, at: number): void {
      const old = rows.get(id)!;
      rows.set(id, { id, version: old.version + 1, lastUpdated: at, deleted: true });
    },
  });
  return box.self;
}

function body(type: string, r: Row, deleted: boolean): Resource {
  const lastUpdated = new Date(r.lastUpdated).toISOString();
  if (deleted) {
    return { resourceType: type, id: r.id, meta: { lastUpdated } } as Resource;
  }
  return {
    resourceType: type,
    id: r.id,
    meta: { versionId: String(r.version), lastUpdated },
    code: { text: 'x' },
  } as Resource;
}
