/**
 * An Aidbox Changes API stand-in, answering exactly as the Aidbox docs ("Changes API",
 * HealthSamurai/aidbox-docs docs/api/other/changes-api.md) describe:
 * - `GET /<Type>/$changes` -> 200 `{ version: <latest> }`
 * - `?version=V` -> changes with version > V; `?version=L,U` -> L < version <= U, body
 *   `{ version, changes: [{ event, resource }] }`; 304 with no body when there are none
 * - `_count`/`_page` paging, `fhir=true`, `omit-resources=true`
 * Versions come from one sequence shared by all types (Postgres txid) and only committed
 * versions are visible, so a test can commit 99 after 100 (the documented race).
 */
import type { Resource } from '@medplum/fhirtypes';
import { sendJson, startServer, type TestServer } from './http-server.ts';

/** 'created' | 'updated' | 'deleted' | 'recreated', or anything else to test unknown events. */
export type AidboxEvent = string;

interface Row {
  readonly type: string;
  readonly version: number;
  readonly event: AidboxEvent;
  readonly resource: Resource;
  readonly lastUpdated: string;
  committed: boolean;
}

export interface AidboxOptions {
  /** Put meta.versionId/lastUpdated on resources (Aidbox does; the doc examples omit it). */
  readonly meta?: boolean;
  /** Order of `changes` within an answer. */
  readonly order?: 'asc' | 'desc';
}

export interface AidboxStandIn extends TestServer {
  /** Adds a change; returns its version. `version` lets a test give several changes one txid. */
  add(
    type: string,
    event: AidboxEvent,
    resource: Resource,
    opts?: { committed?: boolean; version?: number; lastUpdated?: string },
  ): number;
  commit(version: number): void;
  /** Answers the next request whose URL contains `match` with this status (and an OperationOutcome body). */
  failNext(status: number, match?: string): void;
}

export async function startAidbox(options: AidboxOptions = {}): Promise<AidboxStandIn> {
  const rows: Row[] = [];
  let seq = 0;
  const failures: { status: number; match: string }[] = [];
  const server = await startServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const f = failures.findIndex((x) => (req.url ?? '').includes(x.match));
    if (f >= 0) {
      const [fail] = failures.splice(f, 1);
      sendJson(res, fail!.status, {
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'exception' }],
      });
      return;
    }
    const m = /^\/([A-Z][A-Za-z]+)\/\$changes$/.exec(url.pathname);
    if (!m) {
      sendJson(res, 404, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] });
      return;
    }
    const type = m[1]!;
    const visible = rows.filter((r) => r.type === type && r.committed);
    const latest = visible.reduce((max, r) => Math.max(max, r.version), 0);
    const version = url.searchParams.get('version');
    if (version === null) {
      sendJson(res, 200, { version: latest });
      return;
    }
    const [lower, upper] = version.split(',').map(Number) as [number, number | undefined];
    const hits = visible
      .filter((r) => r.version > lower && (upper === undefined || r.version <= upper))
      .sort((a, b) => (options.order === 'desc' ? b.version - a.version : a.version - b.version));
    if (hits.length === 0) {
      res.writeHead(304);
      res.end();
      return;
    }
    const count = Number(url.searchParams.get('_count') ?? '100');
    const page = Number(url.searchParams.get('_page') ?? '1');
    const slice = hits.slice((page - 1) * count, page * count);
    const omit = url.searchParams.get('omit-resources') === 'true';
    const changes = slice.map((r) => ({
      event: r.event,
      resource: omit ? { id: r.resource.id, resourceType: r.type } : shape(r, options.meta ?? true),
    }));
    sendJson(res, 200, { version: upper ?? latest, changes });
  });
  return Object.assign(server, {
    add(
      type: string,
      event: AidboxEvent,
      resource: Resource,
      opts: { committed?: boolean; version?: number; lastUpdated?: string } = {},
    ): number {
      const version = opts.version ?? ++seq;
      seq = Math.max(seq, version);
      rows.push({
        type,
        version,
        event,
        resource,
        lastUpdated: opts.lastUpdated ?? new Date().toISOString(),
        committed: opts.committed ?? true,
      });
      return version;
    },
    commit(version: number): void {
      rows.filter((r) => r.version === version).forEach((r) => (r.committed = true));
    },
    failNext(status: number, match = ''): void {
      failures.push({ status, match });
    },
  });
}

function shape(row: Row, meta: boolean): Resource {
  const body = { ...row.resource, resourceType: row.type } as Resource;
  return meta ? { ...body, meta: { versionId: String(row.version), lastUpdated: row.lastUpdated } } : body;
}
