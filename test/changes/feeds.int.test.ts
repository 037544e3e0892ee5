/**
 * fhir-history and search-lastupdated live against HAPI (local-b). Every test writes its own
 * ids (a fresh prefix) and only looks at those, since other tests share the server.
 */
import type { CapabilityStatement } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { createChangeFeed, pickKind, type Change } from '../../src/changes/index.ts';
import { latestPerResource } from '../../src/sync/index.ts';
import { createFhirClient } from '../../src/shared/fhir-client.ts';
import { fhirUrls } from '../servers/urls.ts';
import {
  connectionFor,
  cursorAtServerNow,
  liveFeed,
  poll,
  put,
  remove,
  sleep,
  transaction,
  uniquePrefix,
  type Written,
} from './support/live.ts';

const TYPE = 'Basic';
const label = (c: Change): string => `${c.kind === 'deletion' ? 'del:' : ''}${c.id}/${c.versionId ?? '?'}`;

describe.each(['fhir-history', 'search-lastupdated'] as const)('%s on HAPI', (kind) => {
  const base = (): string => fhirUrls().localB;
  const feed = (settleMs = 2000) => liveFeed(base(), { kind, settleMs, pageSize: 10 });

  it('reads creates, updates, a deletion and a resurrection in order', async () => {
    const p = uniquePrefix('life');
    const start = await cursorAtServerNow(base());
    await put(base(), TYPE, `${p}-a`, 'v1');
    await put(base(), TYPE, `${p}-a`, 'v2');
    await remove(base(), TYPE, `${p}-a`);
    await put(base(), TYPE, `${p}-b`, 'b');
    await put(base(), TYPE, `${p}-a`, 'v4');
    const { mine } = await poll(feed(), TYPE, start, p);
    if (kind === 'fhir-history') {
      expect(mine.map(label)).toEqual([`${p}-a/1`, `${p}-a/2`, `del:${p}-a/3`, `${p}-b/1`, `${p}-a/4`]);
    } else {
      // search sees current versions only
      expect(mine.map(label)).toEqual([`${p}-b/1`, `${p}-a/4`]);
    }
    const latest = latestPerResource(mine);
    expect(latest.find((c) => c.id === `${p}-a`)).toMatchObject({ kind: 'resource', versionId: '4' });
  });

  it('delivers a deletion that is the latest change', async () => {
    const p = uniquePrefix('del');
    const start = await cursorAtServerNow(base());
    await put(base(), TYPE, `${p}-gone`);
    await remove(base(), TYPE, `${p}-gone`);
    const { mine } = await poll(feed(), TYPE, start, p);
    if (kind === 'fhir-history') {
      expect(latestPerResource(mine).map(label)).toEqual([`del:${p}-gone/2`]);
    } else {
      expect(mine).toEqual([]); // documented limit: HAPI search cannot list deletions
    }
  });

  it('splits a transaction sharing one timestamp across pages without loss or repeats, and resumes inside it', async () => {
    const p = uniquePrefix('tie');
    const start = await cursorAtServerNow(base());
    const ids = Array.from({ length: 25 }, (_, i) => `${p}-${String(i).padStart(2, '0')}`);
    const written = await transaction(base(), TYPE, ids);
    expect(new Set(written.map((w) => w.lastUpdated)).size).toBe(1);
    const run = await poll(feed(), TYPE, start, p);
    expect(run.mine.map((c) => c.id).sort()).toEqual(ids);
    // Find the first page that holds part of the tie and resume from its cursor.
    const k = run.pages.findIndex((pg) => pg.changes.some((c) => c.id.startsWith(p)));
    const before = run.pages
      .slice(0, k + 1)
      .flatMap((pg) => pg.changes.filter((c) => c.id.startsWith(p)).map((c) => c.id));
    expect(before.length).toBeLessThan(25);
    const resumed = await poll(feed(), TYPE, run.pages[k]!.cursor, p);
    expect([...before, ...resumed.mine.map((c) => c.id)].sort()).toEqual(ids);
  });

  it('loses nothing written while polls run', async () => {
    const p = uniquePrefix('race');
    let cursor = await cursorAtServerNow(base());
    const written: Written[] = [];
    let writing = true;
    let pollsStarted = 0;
    const writer = (async () => {
      for (let round = 0; round < 12; round++) {
        const ids = Array.from({ length: 6 }, (_, i) => `${p}-${round}-${i}`);
        written.push(...(await transaction(base(), TYPE, ids, `r${round}`)));
        written.push(await put(base(), TYPE, `${p}-hot`, `h${round}`)); // one resource, many versions
        // Let a poll start before the next round, so reads and writes really interleave.
        const target = pollsStarted + 1;
        while (pollsStarted < target) {
          await sleep(5);
        }
      }
      writing = false;
    })();
    const delivered: Change[] = [];
    const f = feed(3000);
    let pollsWithNews = 0;
    while (writing) {
      pollsStarted++;
      const r = await poll(f, TYPE, cursor, p, 7);
      delivered.push(...r.mine);
      pollsWithNews += r.mine.length > 0 && writing ? 1 : 0;
      cursor = r.cursor;
    }
    await writer;
    await sleep(3200); // past the settle window
    const last = await poll(f, TYPE, cursor, p, 7);
    delivered.push(...last.mine);

    expect(pollsWithNews, 'polls must have interleaved with the writes').toBeGreaterThanOrEqual(2);
    const got = delivered.map(label);
    expect(new Set(got).size).toBe(got.length); // no version delivered twice
    if (kind === 'fhir-history') {
      expect(got.sort()).toEqual(written.map((w) => `${w.id}/${w.versionId}`).sort());
    } else {
      const finals = new Map(written.map((w) => [w.id, w.versionId]));
      for (const [id, v] of finals) {
        expect(got).toContain(`${id}/${v}`);
      }
    }
  });
});

describe('late commit on HAPI: a long transaction stamped before a quick one that commits first', () => {
  it('is delivered by a feed with a settle window, and lost by one without (negative control)', async () => {
    const base = fhirUrls().localB;
    for (const kind of ['fhir-history', 'search-lastupdated'] as const) {
      // The race needs the long transaction to be still open when both polls have run. A fast,
      // quiet machine commits 1000 entries too soon, so grow it until the race is reproduced.
      for (const size of [1000, 3000, 6000]) {
        const p = uniquePrefix(`late-${kind === 'fhir-history' ? 'h' : 's'}${size}`);
        const start = await cursorAtServerNow(base);
        // The settle window will hold size + 1 changes: the cursor must be allowed to remember them all.
        const settled = liveFeed(base, { kind, settleMs: 60_000, pageSize: 200, maxCursorKeys: 2 * size + 10 });
        const naive = liveFeed(base, { kind, settleMs: 0, pageSize: 200 });
        const bigIds = Array.from({ length: size }, (_, i) => `${p}-big-${i}`);
        let bigDone = false;
        const big = transaction(base, TYPE, bigIds).then((w) => {
          bigDone = true;
          return w;
        });
        // The quick write commits first with a later timestamp; polls then run over a second later,
        // so even the server's 1 s `Date` resolution puts a naive cursor past the long transaction.
        await sleep(300);
        const quick = await put(base, TYPE, `${p}-quick`);
        await sleep(1500);
        const naiveFirst = await poll(naive, TYPE, start, p);
        const settledFirst = await poll(settled, TYPE, start, p);
        if (bigDone && size < 6000) {
          await big;
          continue; // too fast to reproduce the race: try a longer transaction
        }
        // The scenario needs both polls to have run while the long transaction was still open.
        expect(bigDone, 'the long transaction finished too early to reproduce the race').toBe(false);
        expect(naiveFirst.mine.map(label)).toEqual([`${quick.id}/1`]);
        expect(settledFirst.mine.map(label)).toEqual([`${quick.id}/1`]);
        const bigWritten = await big;
        expect(Date.parse(bigWritten[0]!.lastUpdated)).toBeLessThan(Date.parse(quick.lastUpdated));

        const naiveSecond = await poll(naive, TYPE, naiveFirst.cursor, p);
        const settledSecond = await poll(settled, TYPE, settledFirst.cursor, p);
        expect(naiveSecond.mine).toEqual([]); // the cursor jumped past the late commit
        expect(settledSecond.mine.map((c) => c.id).sort()).toEqual([...bigIds].sort()); // quick is not repeated
        break;
      }
    }
  });
});

describe('auto on HAPI', () => {
  it('picks fhir-history from the CapabilityStatement and reads with it', async () => {
    const base = fhirUrls().localB;
    const client = createFhirClient(connectionFor(base));
    const cs: CapabilityStatement = await client.get(client.fhirUrl('metadata'));
    expect(pickKind(cs, TYPE)).toBe('fhir-history');
    const p = uniquePrefix('auto');
    const start = await cursorAtServerNow(base);
    await put(base, TYPE, `${p}-x`);
    await remove(base, TYPE, `${p}-x`);
    const feed = createChangeFeed({ kind: 'auto', settleMs: 2000 }, { client });
    const { mine } = await poll(feed, TYPE, start, p);
    expect(mine.map(label)).toEqual([`${p}-x/1`, `del:${p}-x/2`]); // deletions prove history was used
  });

  it('follows a probed kind (server profile) ahead of the CapabilityStatement', async () => {
    const base = fhirUrls().localB;
    const client = createFhirClient(connectionFor(base));
    const p = uniquePrefix('auto-probed');
    const start = await cursorAtServerNow(base);
    await put(base, TYPE, `${p}-x`);
    await put(base, TYPE, `${p}-y`);
    await remove(base, TYPE, `${p}-y`);
    const feed = createChangeFeed(
      { kind: 'auto', settleMs: 2000, probedKinds: { [TYPE]: 'search-lastupdated' } },
      { client },
    );
    const { mine } = await poll(feed, TYPE, start, p);
    // _lastUpdated search: the deleted resource is not listed at all (history would list
    // y/1 and its deletion too).
    expect(mine.map(label)).toEqual([`${p}-x/1`]);
  });
});
