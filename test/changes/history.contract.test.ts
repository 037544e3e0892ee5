/** fhir-history against stand-in servers for what HAPI itself cannot show. */
import { afterEach, describe, expect, it } from 'vitest';
import { createChangeFeed } from '../../src/changes/index.ts';
import { createFhirClient } from '../../src/shared/fhir-client.ts';
import { FEED_ERR_SERVER, FEED_ERR_UNSUPPORTED } from '../../src/shared/errors/index.ts';
import { sendJson, startServer, type TestServer } from './support/http-server.ts';
import { collect } from './support/items.ts';

let server: TestServer;
afterEach(async () => {
  await server.close();
});

const entry = (id: string, lastUpdated: string) => ({
  request: { method: 'PUT', url: `Basic/${id}/_history/1` },
  resource: { resourceType: 'Basic', id, meta: { versionId: '1', lastUpdated }, code: {} },
});

describe('fhir-history (stand-in servers)', () => {
  it('refuses a server that ignores the _since/_at window bounds', async () => {
    server = await startServer((_req, res) => {
      sendJson(res, 200, { resourceType: 'Bundle', type: 'history', entry: [entry('old', '2001-01-01T00:00:00Z')] });
    });
    const feed = createChangeFeed({ kind: 'fhir-history' }, { client: createFhirClient({ baseUrl: server.url }) });
    const cursor = JSON.stringify({ c: 1, f: 'ts', lo: '2025-01-01T00:00:00.000Z', seen: [] });
    await expect(collect(feed.pages('Basic', cursor))).rejects.toSatisfy((e: unknown) => FEED_ERR_UNSUPPORTED.is(e));
  });

  it('reports a 5xx on a next link with the path only, never the paging query', async () => {
    server = await startServer((req, res) => {
      if ((req.url ?? '').includes('_getpages')) {
        sendJson(res, 500, { resourceType: 'OperationOutcome', issue: [] });
        return;
      }
      // Three changes on one millisecond, more than a page of 2: the feed follows the link.
      const at = '2025-01-01T00:00:00.000Z';
      sendJson(res, 200, {
        resourceType: 'Bundle',
        type: 'history',
        link: [{ relation: 'next', url: `${server.url}fhir?_getpages=secret-token&_getpagesoffset=2` }],
        entry: [entry('a', at), entry('b', at), entry('c', at)],
      });
    });
    const feed = createChangeFeed(
      { kind: 'fhir-history', pageSize: 2 },
      { client: createFhirClient({ baseUrl: server.url }) },
    );
    const cursor = JSON.stringify({ c: 1, f: 'ts', lo: '2025-01-01T00:00:00.000Z', seen: [] });
    const err = await collect(feed.pages('Basic', cursor)).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(FEED_ERR_SERVER.is(err)).toBe(true);
    expect(err?.message).toBe('FHIR server answered 500 for GET /fhir');
  });
});
