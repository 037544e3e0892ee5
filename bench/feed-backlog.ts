/**
 * Memory of a change feed reading a backlog: loads 10,000 changes into a local HAPI server
 * (20 transactions of 500, one resource type used by nothing else) and reads them through
 * `fhir-history` and `search-lastupdated`, printing the live heap (after a forced GC) and RSS
 * growth as pages go by, twice per kind (cold, then warm). Flat figures mean memory is
 * bounded by the page, not the backlog.
 * Needs a running test server (`npm run servers:start`); skips otherwise.
 *   node bench/feed-backlog.ts [fhirBase] [count]
 */
import { randomUUID } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createChangeFeed, type FeedKind } from '../src/changes/index.ts';
import { encodeCursor } from '../src/changes/cursor.ts';
import { createFhirClient } from '../src/shared/fhir-client.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const fhirBase = process.argv[2] ?? process.env.FHIR_LOCAL_B_URL ?? 'http://127.0.0.1:8092/fhir';
const total = Number(process.argv[3] ?? 10_000);
const TYPE = 'Substance';
const BATCH = 500;
const PAGE = 100;
const SETTLE_MS = 2000;
const MB = 1024 * 1024;

async function serverNow(): Promise<number | undefined> {
  try {
    const res = await fetch(`${fhirBase}/metadata?_summary=true`, { signal: AbortSignal.timeout(5000) });
    await res.body?.cancel();
    return res.ok ? Date.parse(res.headers.get('date') ?? '') : undefined;
  } catch {
    return undefined;
  }
}

async function load(prefix: string): Promise<number> {
  let bytes = 0;
  for (let start = 0; start < total; start += BATCH) {
    const entry = Array.from({ length: Math.min(BATCH, total - start) }, (_, i) => {
      const id = `${prefix}-${start + i}`;
      const resource = {
        resourceType: TYPE,
        id,
        code: { text: `bench substance ${start + i}` },
        description: 'x'.repeat(200),
      };
      return { resource, request: { method: 'PUT', url: `${TYPE}/${id}` } };
    });
    const body = JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry });
    bytes += body.length;
    const res = await fetch(fhirBase, { method: 'POST', headers: { 'Content-Type': 'application/fhir+json' }, body });
    if (!res.ok) {
      throw new Error(`transaction failed: ${res.status}`);
    }
    await res.body?.cancel();
  }
  return bytes;
}

async function read(kind: FeedKind, from: string, prefix: string, run: string): Promise<void> {
  let requests = 0;
  const client = createFhirClient(baseAndPath(fhirBase), {
    fetch: (url, init) => {
      requests++;
      return fetch(url, init);
    },
  });
  const feed = createChangeFeed({ kind, settleMs: SETTLE_MS, pageSize: PAGE }, { client });
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const rss0 = process.memoryUsage().rss;
  let peakHeap = 0;
  let peakRss = 0;
  let pages = 0;
  let mine = 0;
  let all = 0;
  const t0 = performance.now();
  for await (const page of feed.pages(TYPE, from)) {
    pages++;
    all += page.changes.length;
    mine += page.changes.filter((c) => c.id.startsWith(prefix)).length;
    gc();
    const heap = process.memoryUsage().heapUsed - heap0;
    const rss = process.memoryUsage().rss - rss0;
    peakHeap = Math.max(peakHeap, heap);
    peakRss = Math.max(peakRss, rss);
    if (pages % 20 === 0) {
      console.log(
        `  ${kind} (${run}) page ${pages}: ${mine} read, live heap ${signed(heap)} MB, RSS ${signed(rss)} MB`,
      );
    }
  }
  const secs = (performance.now() - t0) / 1000;
  console.log(
    `${kind} (${run}): ${mine}/${total} backlog changes (${all} in all) in ${pages} pages of <= ${PAGE}, ${requests} requests, ` +
      `${secs.toFixed(1)} s; peak live heap growth ${signed(peakHeap)} MB, peak RSS growth ${signed(peakRss)} MB`,
  );
  if (mine !== total) {
    throw new Error(`${kind} read ${mine} of ${total} changes`);
  }
}

function signed(bytes: number): string {
  return `${bytes >= 0 ? '+' : ''}${(bytes / MB).toFixed(2)}`;
}

function baseAndPath(base: string): { baseUrl: string; fhirPath: string } {
  const u = new URL(base);
  const fhirPath = u.pathname.replace(/^\/|\/$/g, '');
  u.pathname = '/';
  return { baseUrl: u.toString(), fhirPath };
}

const now = await serverNow();
if (now === undefined) {
  console.log(`feed-backlog: skipped, no FHIR server answers at ${fhirBase} (npm run servers:start)`);
} else {
  const prefix = `bench-${randomUUID().slice(0, 8)}`;
  const from = encodeCursor({ family: 'ts', lo: now - 1000, seen: new Map(), marks: [] });
  const t0 = performance.now();
  const bytes = await load(prefix);
  console.log(
    `loaded ${total} ${TYPE} changes (${(bytes / MB).toFixed(1)} MB of JSON) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS + 1500));
  // The first read of each kind includes JIT warm-up and connection buffers; the second shows the steady state.
  for (const kind of ['fhir-history', 'search-lastupdated'] as const) {
    await read(kind, from, prefix, 'cold');
    await read(kind, from, prefix, 'warm');
  }
}
