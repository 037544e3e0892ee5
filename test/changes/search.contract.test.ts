/**
 * search-lastupdated against a search stand-in over real HTTP: ties larger than a page,
 * updates during a walk, and Medplum-style deletion stubs (which HAPI cannot show live).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createChangeFeed, type ChangeFeedConfig } from '../../src/changes/index.ts';
import { createFhirClient } from '../../src/shared/fhir-client.ts';
import { FEED_ERR_CONFIG } from '../../src/shared/errors/index.ts';
import { collect, ids } from './support/items.ts';
import { sendJson, startServer } from './support/http-server.ts';
import { startSearchServer, type SearchStandIn } from './support/search-server.ts';

let server: SearchStandIn;
afterEach(async () => {
  await server.close();
});

const T0 = Date.parse('2025-01-01T00:00:00Z');

function feed(config: Partial<ChangeFeedConfig> = {}) {
  const client = createFhirClient({ baseUrl: server.url });
  return createChangeFeed({ kind: 'search-lastupdated', settleMs: 1000, pageSize: 10, ...config }, { client });
}

describe('search-lastupdated (contract)', () => {
  it('reads a tie larger than a page through the server links, once each, and resumes inside it', async () => {
    server = await startSearchServer();
    for (let i = 0; i < 25; i++) {
      server.put(`t${String(i).padStart(2, '0')}`, T0);
    }
    for (let i = 0; i < 5; i++) {
      server.put(`later${i}`, T0 + 1000 + i);
    }
    const pages = await collect(feed().pages('Basic', undefined));
    const all = ids(pages);
    expect(all).toHaveLength(30);
    expect(new Set(all).size).toBe(30);
    expect(all.slice(25)).toEqual(['later0/1', 'later1/1', 'later2/1', 'later3/1', 'later4/1']);
    expect(server.requests.some((r) => r.url.includes('_getpages='))).toBe(true);
    const mid = JSON.parse(pages[0]!.cursor) as { lo: string; seen: [number, string[]][] };
    expect(mid.lo).toBe('2025-01-01T00:00:00.000Z');
    expect(mid.seen[0]![1]).toHaveLength(10);
    const resumed = await collect(feed().pages('Basic', pages[0]!.cursor));
    expect(ids(resumed)).toEqual(all.slice(10));
  });

  it('loses nothing when a resource moves under a running search (its new lastUpdated in its old slot)', async () => {
    server = await startSearchServer();
    for (let i = 0; i < 8; i++) {
      server.put(`r${i}`, T0 + i * 10);
    }
    // The first query sorts r0..r7, then r2 is updated before its rows are loaded: the page says
    // r0, r1, r2 (now T0+500), r3... Passing r2's new time would skip r3..r7.
    server.duringSearch = (n) => {
      if (n === 1) {
        server.put('r2', T0 + 500);
      }
    };
    const all = ids(await collect(feed().pages('Basic', undefined)));
    expect(all).toEqual(['r0/1', 'r1/1', 'r3/1', 'r4/1', 'r5/1', 'r6/1', 'r7/1', 'r2/2']);
  });

  it('refuses a server that ignores _sort (the cursor would skip), after asking once more', async () => {
    // Every answer comes newest first, as if _sort were ignored.
    let queries = 0;
    server = Object.assign(
      await startServer((_req, res) => {
        queries++;
        const entry = [40, 30, 20, 10, 0].map((dt, i) => ({
          search: { mode: 'match' },
          resource: {
            resourceType: 'Basic',
            id: `r${i}`,
            meta: { versionId: '1', lastUpdated: new Date(T0 + dt).toISOString() },
          },
        }));
        sendJson(res, 200, { resourceType: 'Bundle', type: 'searchset', entry });
      }),
      { put: () => undefined, remove: () => undefined, afterAnswer: undefined, duringSearch: undefined },
    );
    await expect(collect(feed().pages('Basic', undefined))).rejects.toThrow(
      expect.objectContaining({ code: 'FEED_ERR_BAD_RESPONSE' }),
    );
    expect(queries).toBe(2);
  });

  it('reads through a server that names itself localhost while registered as 127.0.0.1 (Medplum)', async () => {
    // Keyset pages build their own URLs, so their next links are not checked at all; inside a
    // tie the link is followed at the registered address (loopback names are one host).
    server = await startSearchServer('Basic', 'snapshot', (host) => host.replace('127.0.0.1', 'localhost'));
    for (let i = 0; i < 25; i++) {
      server.put(`t${String(i).padStart(2, '0')}`, T0);
    }
    for (let i = 0; i < 25; i++) {
      server.put(`later${String(i).padStart(2, '0')}`, T0 + 1000 + i);
    }
    const all = ids(await collect(feed().pages('Basic', undefined)));
    expect(all).toHaveLength(50);
    expect(new Set(all).size).toBe(50);
    expect(server.requests.some((r) => r.url.includes('_getpages='))).toBe(true);
    expect(server.requests.every((r) => r.headers.host?.startsWith('127.0.0.1'))).toBe(true);
  });

  it('refuses to follow a tie link to another host, saying what to configure', async () => {
    server = await startSearchServer('Basic', 'snapshot', () => 'fhir.elsewhere.example');
    for (let i = 0; i < 25; i++) {
      server.put(`t${String(i).padStart(2, '0')}`, T0);
    }
    await expect(collect(feed().pages('Basic', undefined))).rejects.toThrow(
      expect.objectContaining({
        code: 'FEED_ERR_FOREIGN_LINK',
        message: expect.stringContaining('http://fhir.elsewhere.example') as unknown,
      }),
    );
  });

  it('reads a tie through a server whose paging links fail on it (Medplum: "Cursor fails to make progress")', async () => {
    server = await startSearchServer('Basic', 'snapshot', undefined, true);
    for (let i = 0; i < 25; i++) {
      server.put(`t${String(i).padStart(2, '0')}`, T0);
    }
    for (let i = 0; i < 5; i++) {
      server.put(`later${i}`, T0 + 1000 + i);
    }
    const all = ids(await collect(feed().pages('Basic', undefined)));
    expect(new Set(all).size).toBe(30);
    expect(all).toHaveLength(30);
    // The instant was read whole, once, after the link failed.
    expect(server.requests.filter((r) => r.url.includes('_lastUpdated=lt')).length).toBe(1);
  });

  it('says clearly when a tie is larger than any page and the links fail', async () => {
    server = await startSearchServer('Basic', 'snapshot', undefined, true);
    for (let i = 0; i < 1001; i++) {
      server.put(`t${String(i).padStart(4, '0')}`, T0);
    }
    await expect(collect(feed().pages('Basic', undefined))).rejects.toThrow(
      expect.objectContaining({ code: 'FEED_ERR_TIE_TOO_LARGE' }),
    );
  });

  it('loses nothing when a resource is updated between two page reads (server with live offset links)', async () => {
    server = await startSearchServer('Basic', 'offset');
    for (let i = 0; i < 30; i++) {
      server.put(`r${String(i).padStart(2, '0')}`, T0 + i * 10);
    }
    server.afterAnswer = (n) => {
      if (n === 1) {
        server.put('r02', T0 + 10_000); // r02 leaves page 1's slot: offset paging would now skip r10
      }
    };
    const pages = await collect(feed().pages('Basic', undefined));
    const got = ids(pages);
    for (let i = 0; i < 30; i++) {
      expect(got).toContain(`r${String(i).padStart(2, '0')}/1`);
    }
    expect(got.at(-1)).toBe('r02/2');
  });

  it('merges deletion stubs from the deletions query (Medplum _deleted=true)', async () => {
    server = await startSearchServer();
    server.put('a', T0);
    server.put('b', T0 + 1);
    server.remove('b', T0 + 2);
    server.put('c', T0 + 3);
    const withDeletes = await collect(feed({ deletionsQuery: '_deleted=true' }).pages('Basic', undefined));
    const changes = withDeletes.flatMap((p) => p.changes.map((c) => `${c.kind}:${c.id}`));
    expect(changes.sort()).toEqual(['deletion:b', 'resource:a', 'resource:c']);
    expect(server.requests.some((r) => r.url.includes('_deleted=true'))).toBe(true);
    const without = await collect(feed().pages('Basic', undefined));
    expect(without.flatMap((p) => p.changes.map((c) => c.kind))).not.toContain('deletion');
  });

  it.each([
    [{ deletionsQuery: '_deleted=true&_sort=-_id' }, 'deletionsQuery'],
    [{ deletionsQuery: 'not a query' }, 'deletionsQuery'],
    [{ pageSize: 0 }, 'pageSize'],
    [{ settleMs: -1 }, 'settleMs'],
    [{ kind: 'rss' as never }, 'kind'],
  ])('rejects bad configuration %j at creation', async (config, field) => {
    server = await startSearchServer();
    expect(() => feed(config)).toThrow(
      expect.objectContaining({ code: FEED_ERR_CONFIG.code, message: expect.stringContaining(field) }),
    );
  });
});
