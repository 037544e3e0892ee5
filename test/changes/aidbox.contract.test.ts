/**
 * aidbox-changes against the documented Changes API contract (no Aidbox can run here):
 * responses are shaped as the Aidbox docs show, served over real HTTP by ./support/aidbox-server.ts.
 */
import type { Resource } from '@medplum/fhirtypes';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createChangeFeed, type ChangeFeedConfig, type ChangePage, type Cursor } from '../../src/changes/index.ts';
import { createFhirClient } from '../../src/shared/fhir-client.ts';
import {
  FEED_ERR_RATE_LIMITED,
  FEED_ERR_REJECTED,
  FEED_ERR_SERVER,
  FEED_ERR_UNKNOWN_EVENT,
} from '../../src/shared/errors/index.ts';
import { startAidbox, type AidboxOptions, type AidboxStandIn } from './support/aidbox-server.ts';
import { collect, ids } from './support/items.ts';

const basic = (id: string, text = id): Resource => ({ resourceType: 'Basic', id, code: { text } });

let aidbox: AidboxStandIn;
let now = 1_700_000_000_000;
const clock = (): number => now;

async function setup(options: AidboxOptions = {}): Promise<void> {
  aidbox = await startAidbox(options);
}

function feed(config: Partial<ChangeFeedConfig> = {}) {
  const client = createFhirClient({ baseUrl: aidbox.url });
  return createChangeFeed({ kind: 'aidbox-changes', settleMs: 60_000, pageSize: 100, ...config }, { client, clock });
}

async function poll(
  config: Partial<ChangeFeedConfig>,
  cursor: Cursor | undefined,
): Promise<{ pages: ChangePage[]; cursor: Cursor | undefined }> {
  const pages = await collect(feed(config).pages('Basic', cursor));
  return { pages, cursor: pages.at(-1)?.cursor ?? cursor };
}

beforeEach(() => {
  now = 1_700_000_000_000;
});
afterEach(async () => {
  await aidbox.close();
});

describe('aidbox-changes (contract)', () => {
  it('reads created, updated, deleted and recreated events oldest first', async () => {
    await setup();
    aidbox.add('Basic', 'created', basic('a'));
    aidbox.add('Patient', 'created', { resourceType: 'Patient', id: 'other-type' });
    aidbox.add('Basic', 'updated', basic('a', 'a2'));
    aidbox.add('Basic', 'deleted', basic('a', 'a2'));
    aidbox.add('Basic', 'recreated', basic('a', 'a3'));
    const { pages } = await poll({}, undefined);
    const changes = pages.flatMap((p) => p.changes);
    expect(changes.map((c) => `${c.kind}:${c.id}/${c.versionId}`)).toEqual([
      'resource:a/1',
      'resource:a/3',
      'deletion:a/4',
      'resource:a/5',
    ]);
    expect(changes[3]).toMatchObject({ kind: 'resource', resource: { resourceType: 'Basic', code: { text: 'a3' } } });
    // Requests follow the documented shapes: head first, then ranges `version=L,U` with fhir=true.
    const urls = aidbox.requests.map((r) => r.url);
    expect(urls[0]).toBe('/Basic/$changes');
    expect(urls[1]).toMatch(/^\/Basic\/\$changes\?version=0,5&_count=101&_page=1&fhir=true$/);
  });

  it('answers nothing new with no page when the cursor has not moved (304 on the range)', async () => {
    await setup();
    aidbox.add('Basic', 'created', basic('a'), { lastUpdated: '2020-01-01T00:00:00Z' });
    const first = await poll({}, undefined);
    expect(ids(first.pages)).toEqual(['a/1']);
    const second = await poll({}, first.cursor);
    expect(second.pages).toEqual([]);
  });

  it('pages a backlog with at most one page per request, and resumes after any page', async () => {
    await setup();
    for (let i = 0; i < 250; i++) {
      aidbox.add('Basic', 'created', basic(`r${i}`), { lastUpdated: '2020-01-01T00:00:00Z' });
    }
    const { pages } = await poll({ pageSize: 40 }, undefined);
    expect(pages.every((p) => p.changes.length <= 40)).toBe(true);
    expect(ids(pages)).toEqual(Array.from({ length: 250 }, (_, i) => `r${i}/${i + 1}`));
    for (const r of aidbox.requests.slice(1)) {
      expect(Number(new URL(r.url, 'http://x').searchParams.get('_count'))).toBeLessThanOrEqual(41);
    }
    const resumed = await poll({ pageSize: 40 }, pages[2]!.cursor);
    expect(ids(resumed.pages)).toEqual(ids(pages.slice(3)));
  });

  it('does not lose a version committed after a higher one (documented race), and settles later', async () => {
    await setup();
    aidbox.add('Basic', 'created', basic('p1'));
    const late = aidbox.add('Basic', 'created', basic('p-late'), { committed: false }); // txid 2, still open
    aidbox.add('Basic', 'created', basic('p3')); // txid 3 commits first
    const first = await poll({}, undefined);
    expect(ids(first.pages)).toEqual(['p1/1', 'p3/3']);

    aidbox.commit(late);
    now += 10_000; // still inside the settle window
    const second = await poll({}, first.cursor);
    expect(ids(second.pages)).toEqual(['p-late/2']); // p1 and p3 are deduped, not re-delivered

    now += 60_000; // the head seen at the first poll has settled
    const third = await poll({}, second.cursor);
    expect(ids(third.pages)).toEqual([]);
    expect(JSON.parse(third.cursor!)).toMatchObject({ after: 3, seen: [] });
  });

  it('negative control: without a settle window the same race loses the late version', async () => {
    await setup();
    aidbox.add('Basic', 'created', basic('p1'));
    const late = aidbox.add('Basic', 'created', basic('p-late'), { committed: false });
    aidbox.add('Basic', 'created', basic('p3'));
    const first = await poll({ settleMs: 0 }, undefined);
    aidbox.commit(late);
    const second = await poll({ settleMs: 0 }, first.cursor);
    expect([...ids(first.pages), ...ids(second.pages)]).not.toContain('p-late/2');
  });

  it('settles at once on versions stamped long ago (lastUpdated is the transaction start)', async () => {
    await setup();
    aidbox.add('Basic', 'created', basic('old1'), { lastUpdated: '2020-01-01T00:00:00Z' });
    aidbox.add('Basic', 'created', basic('old2'), { lastUpdated: '2020-01-01T00:00:01Z' });
    const { cursor } = await poll({}, undefined);
    expect(JSON.parse(cursor!)).toMatchObject({ after: 2, seen: [] });
  });

  it('streams a transaction larger than a page (one version) and resumes inside it', async () => {
    await setup();
    for (let i = 0; i < 25; i++) {
      aidbox.add('Basic', 'created', basic(`t${i}`), { version: 7, lastUpdated: '2020-01-01T00:00:00Z' });
    }
    aidbox.add('Basic', 'created', basic('after'), { lastUpdated: '2020-01-01T00:00:00Z' });
    const { pages } = await poll({ pageSize: 10 }, undefined);
    expect(ids(pages)).toEqual([...Array.from({ length: 25 }, (_, i) => `t${i}/7`), 'after/8']);
    const mid = JSON.parse(pages[0]!.cursor) as { after: number; seen: [number, string[]][] };
    expect(mid.after).toBe(6);
    expect(mid.seen[0]![1]).toHaveLength(10);
    const resumed = await poll({ pageSize: 10 }, pages[0]!.cursor);
    expect(ids(resumed.pages)).toEqual(ids(pages).slice(10));
  });

  it('does not depend on the order of `changes` in an answer', async () => {
    await setup({ order: 'desc' });
    for (let i = 0; i < 30; i++) {
      aidbox.add('Basic', i % 3 === 2 ? 'updated' : 'created', basic(`d${i % 10}`), {
        lastUpdated: '2020-01-01T00:00:00Z',
      });
    }
    const { pages } = await poll({ pageSize: 8 }, undefined);
    const versions = pages.flatMap((p) => p.changes.map((c) => Number(c.versionId)));
    expect(versions).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });

  it('works with answers exactly as in the docs (resources without meta): nothing lost, duplicates possible', async () => {
    await setup({ meta: false });
    aidbox.add('Basic', 'created', basic('pt-1'));
    aidbox.add('Basic', 'created', basic('pt-2'));
    const first = await poll({}, undefined);
    expect(first.pages.flatMap((p) => p.changes.map((c) => c.id))).toEqual(['pt-1', 'pt-2']);
    expect(first.pages[0]!.changes[0]!.versionId).toBeUndefined();
    aidbox.add('Basic', 'created', basic('pt-3'));
    const second = await poll({}, first.cursor);
    expect(second.pages.flatMap((p) => p.changes.map((c) => c.id))).toContain('pt-3');
  });

  it.each([
    [500, FEED_ERR_SERVER, true],
    [503, FEED_ERR_SERVER, true],
    [429, FEED_ERR_RATE_LIMITED, true],
    [404, FEED_ERR_REJECTED, false],
    [400, FEED_ERR_REJECTED, false],
  ])(
    'turns HTTP %s on a range read into a typed error (retryable as the catalogue says), path only',
    async (status, factory, retryable) => {
      await setup();
      aidbox.add('Basic', 'created', basic('x'));
      aidbox.failNext(status, 'version=');
      const err = await collect(feed().pages('Basic', undefined)).then(
        () => undefined,
        (e: unknown) => e as Error & { code: string; retryable: boolean },
      );
      expect(factory.is(err)).toBe(true);
      expect(err?.retryable).toBe(retryable);
      expect(err?.message).toContain('/Basic/$changes');
      expect(err?.message).not.toMatch(/version|_count|\?/);
    },
  );

  it("stops with the caller's AbortError when the signal fires", async () => {
    await setup();
    aidbox.add('Basic', 'created', basic('x'));
    const controller = new AbortController();
    controller.abort();
    await expect(collect(feed().pages('Basic', undefined, { signal: controller.signal }))).rejects.toMatchObject({
      name: 'AbortError',
    });
  });

  it('refuses an unknown event rather than skipping a change', async () => {
    await setup();
    aidbox.add('Basic', 'archived', basic('x'));
    await expect(collect(feed().pages('Basic', undefined))).rejects.toSatisfy((e: unknown) =>
      FEED_ERR_UNKNOWN_EVENT.is(e),
    );
  });
});
