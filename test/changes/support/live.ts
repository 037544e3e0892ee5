/** Helpers for live tests against the HAPI test servers: writes by plain HTTP, feeds via the module. */
import { randomUUID } from 'node:crypto';
import {
  createChangeFeed,
  type ChangeFeed,
  type ChangeFeedConfig,
  type ChangePage,
  type Cursor,
} from '../../../src/changes/index.ts';
import { encodeCursor } from '../../../src/changes/cursor.ts';
import { createFhirClient } from '../../../src/shared/fhir-client.ts';

/** Splits `http://host:port/fhir` into the client's baseUrl and fhirPath. */
export function connectionFor(fhirBase: string): { baseUrl: string; fhirPath: string } {
  const u = new URL(fhirBase);
  const path = u.pathname.replace(/^\/|\/$/g, '');
  u.pathname = '/';
  return { baseUrl: u.toString(), fhirPath: path };
}

export function liveFeed(fhirBase: string, config: ChangeFeedConfig): ChangeFeed {
  return createChangeFeed(config, { client: createFhirClient(connectionFor(fhirBase)) });
}

export function uniquePrefix(tag: string): string {
  return `${tag}-${randomUUID().slice(0, 8)}`;
}

export interface Written {
  readonly id: string;
  readonly versionId: string;
  readonly lastUpdated: string;
  readonly deleted: boolean;
}

async function send(url: string, init: RequestInit): Promise<Response> {
  const res = await fetch(url, {
    ...init,
    headers: { 'Content-Type': 'application/fhir+json', Accept: 'application/fhir+json' },
  });
  if (!res.ok) {
    throw new Error(
      `${init.method ?? 'GET'} ${new URL(url).pathname} -> ${res.status}: ${(await res.text()).slice(0, 300)}`,
    );
  }
  return res;
}

export async function put(fhirBase: string, type: string, id: string, text = 'x'): Promise<Written> {
  const res = await send(`${fhirBase}/${type}/${id}`, {
    method: 'PUT',
    body: JSON.stringify({ resourceType: type, id, code: { text } }),
  });
  const body = (await res.json()) as { meta: { versionId: string; lastUpdated: string } };
  return { id, versionId: body.meta.versionId, lastUpdated: body.meta.lastUpdated, deleted: false };
}

export async function remove(fhirBase: string, type: string, id: string): Promise<void> {
  await send(`${fhirBase}/${type}/${id}`, { method: 'DELETE' });
}

/** PUTs many resources in one transaction; returns what the server says it wrote. */
export async function transaction(
  fhirBase: string,
  type: string,
  ids: readonly string[],
  text = 'tx',
): Promise<Written[]> {
  const bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: ids.map((id) => ({
      resource: { resourceType: type, id, code: { text } },
      request: { method: 'PUT', url: `${type}/${id}` },
    })),
  };
  const res = await send(fhirBase, { method: 'POST', body: JSON.stringify(bundle) });
  const body = (await res.json()) as { entry: { response: { location: string; lastModified: string } }[] };
  return body.entry.map((e, i) => ({
    id: ids[i]!,
    versionId: /_history\/([^/]+)$/.exec(e.response.location)?.[1] ?? '?',
    lastUpdated: e.response.lastModified,
    deleted: false,
  }));
}

/** A cursor starting shortly before the server's current time (so a test reads only its own era). */
export async function cursorAtServerNow(fhirBase: string, backMs = 1000): Promise<Cursor> {
  const res = await fetch(`${fhirBase}/metadata?_summary=true`);
  await res.body?.cancel();
  const now = Date.parse(res.headers.get('date') ?? '');
  return encodeCursor({ family: 'ts', lo: now - backMs, seen: new Map(), marks: [] });
}

/** Runs one poll: collects pages (only changes whose id starts with prefix) and the last cursor. */
export async function poll(
  feed: ChangeFeed,
  type: string,
  cursor: Cursor,
  prefix: string,
  pageSize?: number,
): Promise<{ pages: ChangePage[]; mine: ChangePage['changes'][number][]; cursor: Cursor }> {
  const pages: ChangePage[] = [];
  let last = cursor;
  for await (const page of feed.pages(type, cursor, pageSize ? { pageSize } : {})) {
    pages.push(page);
    last = page.cursor;
  }
  const mine = pages.flatMap((p) => p.changes.filter((c) => c.id.startsWith(prefix)));
  return { pages, mine, cursor: last };
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
