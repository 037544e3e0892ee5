/**
 * `npm run bench backfill`: one backfill of Synthea patients through the sync engine into
 * the global server, and the global server's own rate for the same transaction bundles
 * POSTed by a bare loop.
 *
 * 1. Loads N Synthea bundles into local A (default 20, the smallest of the shared set).
 * 2. Primes the forward cursors of a fresh instance id at "now" (the locals hold other data),
 *    then runs one pass per type in sync order (the engine directly, no queue): feed →
 *    de-identify → bundles → global, cursor in each transaction. Every transaction the
 *    engine POSTs to the global is recorded.
 * 3. Replays the recorded bundles in a bare loop, every UUID remapped so each PUT creates a
 *    new resource as in step 2 (identical PUTs would be cheap no-ops).
 * Steps 2 and 3 run in rounds, each on a quiet machine; P2 is the median ratio.
 * Prints figures only; needs the HAPI test servers (`npm run servers:start`) and skips
 * itself when they are down. Environment: BENCH_BUNDLES, BENCH_SYNTHEA_DIR, FHIR_GLOBAL_URL,
 * FHIR_LOCAL_A_URL, BENCH_ROUNDS, BENCH_DETAIL=1 (requests by kind).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Bundle } from '@medplum/fhirtypes';
import pino from 'pino';
import { createAnonymizer, loadRulesFile, makeKey } from '../src/anonymizer/index.ts';
import { parseInstances } from '../src/instances/index.ts';
import { createFhirStore, createSyncEngine, rangeCursorFor, sealingCodec, syncOrder } from '../src/sync/index.ts';
import { cursorResource } from '../src/sync/state.ts';

const GLOBAL = process.env.FHIR_GLOBAL_URL ?? 'http://127.0.0.1:8090/fhir';
const LOCAL = process.env.FHIR_LOCAL_A_URL ?? 'http://127.0.0.1:8091/fhir';
const DIR = process.env.BENCH_SYNTHEA_DIR ?? '/work/shared/fhir-data/smart-generated-sample-data-r4-synthea';
const COUNT = Number(process.env.BENCH_BUNDLES ?? '20');
/** Channel counts of the scaling runs; the last one is compared with the bare loop. */
const CHANNELS = [1, 2, 4];
/** Rounds of engine and bare loop compared for P2 (BENCH_ROUNDS). */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? '3');
const TYPES = syncOrder([
  'Organization',
  'Patient',
  'Encounter',
  'Condition',
  'Observation',
  'Procedure',
  'Immunization',
  'MedicationRequest',
  'DiagnosticReport',
  'CarePlan',
  'Claim',
  'ExplanationOfBenefit',
]);

async function up(base: string): Promise<boolean> {
  try {
    const res = await fetch(`${base}/metadata`, { signal: AbortSignal.timeout(3000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

async function bundles(): Promise<Bundle[]> {
  let dir = DIR;
  try {
    await stat(dir);
  } catch {
    dir = 'test/fixtures/sync';
  }
  const files = (await readdir(dir)).filter(
    (f) => f.endsWith('.json') && !/^(hospital|practitioner)Information/.test(f),
  );
  const sized = await Promise.all(files.map(async (f) => ({ f, size: (await stat(join(dir, f))).size })));
  sized.sort((a, b) => a.size - b.size);
  return Promise.all(
    sized.slice(0, COUNT).map(async ({ f }) => JSON.parse(await readFile(join(dir, f), 'utf8')) as Bundle),
  );
}

async function post(base: string, body: string): Promise<number> {
  const res = await fetch(base, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body });
  await res.body?.cancel();
  return res.status;
}

/** Busy and total CPU ticks of the whole machine (/proc/stat), or undefined off Linux. */
async function cpuTicks(): Promise<{ busy: number; total: number } | undefined> {
  try {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!;
    const t = line.trim().split(/\s+/).slice(1).map(Number);
    const total = t.reduce((a, b) => a + b, 0);
    // idle + iowait
    return { busy: total - (t[3] ?? 0) - (t[4] ?? 0), total };
  } catch {
    return undefined;
  }
}

/**
 * Waits until the machine is quiet (under 15% CPU over a second, at most 120 s). The servers
 * share its cores, and work left over from a step (HAPI's subscription matching of what was
 * just written, a JVM's garbage collection) would otherwise be charged to the next one.
 * @returns seconds waited.
 */
async function quiet(): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < 120_000) {
    const a = await cpuTicks();
    await new Promise((r) => setTimeout(r, 1000));
    const b = await cpuTicks();
    if (a === undefined || b === undefined || (b.busy - a.busy) / Math.max(1, b.total - a.total) < 0.15) {
      break;
    }
  }
  return (performance.now() - t0) / 1000;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function remapUuids(bodies: readonly string[]): string[] {
  const map = new Map<string, string>();
  const re = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
  return bodies.map((b) =>
    b.replace(re, (u) => {
      let v = map.get(u);
      if (v === undefined) {
        v = randomUUID();
        map.set(u, v);
      }
      return v;
    }),
  );
}

async function main(): Promise<void> {
  if (!(await up(GLOBAL)) || !(await up(LOCAL))) {
    console.log(
      `skipped: HAPI test servers not reachable (${GLOBAL}, ${LOCAL}); start them with npm run servers:start`,
    );
    return;
  }
  const key = makeKey('bench', randomBytes(32));
  const anonymizer = createAnonymizer({ rules: loadRulesFile('config/anonymization.yaml'), key });
  const codec = sealingCodec(key.secret, key.id);
  const root = (u: string): string => u.replace(/\/fhir\/?$/, '/');
  const make = rangeCursorFor({ kind: 'fhir-history' })!;
  const global = createFhirStore({ baseUrl: root(GLOBAL), fhirPath: 'fhir' });
  const since = new Date(Date.now() - 1000).toISOString();

  // Load the patients into local A once; every run below syncs them under its own instance id.
  const input = await bundles();
  const tLoad = performance.now();
  let loaded = 0;
  for (const b of input) {
    const status = await post(LOCAL, JSON.stringify(b));
    if (status !== 200) {
      throw new Error(`loading a bundle into the local answered ${status}`);
    }
    loaded += b.entry?.length ?? 0;
  }
  const loadS = (performance.now() - tLoad) / 1000;
  console.log(
    `patients: ${input.length} Synthea bundles, ${loaded} resources loaded into local A in ${loadS.toFixed(1)} s (${(loaded / loadS).toFixed(0)}/s, HAPI POST transactions)`,
  );

  /** One backfill of everything loaded, as a scheduled sweep with `channels` channels at once. */
  const backfill = async (channels: number): Promise<{ written: number; secs: number; recorded: string[] }> => {
    const instanceId = `bench-${randomBytes(3).toString('hex')}`;
    let deidMs = 0;
    let deidCount = 0;
    const timed = {
      ...anonymizer,
      rulesVersion: anonymizer.rulesVersion,
      keyId: anonymizer.keyId,
      pseudonymousId: anonymizer.pseudonymousId.bind(anonymizer),
      deidentify: (...args: Parameters<typeof anonymizer.deidentify>) => {
        const t = performance.now();
        const r = anonymizer.deidentify(...args);
        deidMs += performance.now() - t;
        deidCount += args[0].length;
        return r;
      },
    };
    const config = parseInstances(
      `version: 1
global: { baseUrl: '${root(GLOBAL)}', bundleSize: 100 }
instances:
  - id: ${instanceId}
    baseUrl: '${root(LOCAL)}'
    feed: { kind: fhir-history, settleMs: 1000 }
    sendTypes: [${TYPES.join(', ')}]
    references: { localOnlyAdmin: send }
`,
      { source: 'bench' },
    ).config;
    const recorded: string[] = [];
    let globalMs = 0;
    // Time with at least one transaction in flight at the global: how busy the engine keeps it.
    let txInFlight = 0;
    let busySince = 0;
    let busyMs = 0;
    // Requests by kind (server, method), with their summed time: where a slow sweep spends it.
    const byKind = new Map<string, { n: number; ms: number }>();
    const fetchRecording = async (url: string, init?: RequestInit): Promise<Response> => {
      const isTx = init?.method === 'POST' && url.replace(/\/$/, '') === GLOBAL.replace(/\/$/, '');
      const t = performance.now();
      if (isTx && txInFlight++ === 0) {
        busySince = t;
      }
      const res = await fetch(url, init).finally(() => {
        if (isTx && --txInFlight === 0) {
          busyMs += performance.now() - busySince;
        }
      });
      const ms = performance.now() - t;
      const kind = `${url.startsWith(GLOBAL) ? 'global' : 'local'} ${init?.method ?? 'GET'} ${/\/_history/.test(url) ? '_history' : (/\/fhir\/?([A-Za-z]*)/.exec(url.replace(/^https?:\/\/[^/]+/, ''))?.[1] ?? '') || 'tx'}`;
      const k = byKind.get(kind) ?? { n: 0, ms: 0 };
      k.n++;
      k.ms += ms;
      byKind.set(kind, k);
      if (isTx) {
        globalMs += ms;
        recorded.push(typeof init.body === 'string' ? init.body : '');
      }
      return res;
    };
    const engine = createSyncEngine({
      config: () => Promise.resolve(config),
      anonymizer: timed,
      codec,
      logger: pino({ level: 'silent' }),
      clientOptions: { fetch: fetchRecording },
      channelConcurrency: channels,
    });
    await global.transaction({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: TYPES.map((t) => {
        const r = cursorResource({
          direction: 'forward',
          instanceId,
          resourceType: t,
          updatedAt: since,
          cursor: codec.seal(make(since)!),
        });
        return { resource: r, request: { method: 'PUT' as const, url: `Basic/${r.id}` } };
      }),
    });
    const t0 = performance.now();
    const r = await engine.runJob({ kind: 'sweep', instanceId }, { lock: (_i, fn) => fn(undefined) });
    const secs = (performance.now() - t0) / 1000;
    if ((r.failures ?? []).length > 0) {
      throw new Error(`sweep failures: ${JSON.stringify(r.failures)}`);
    }
    const written = r.passes!.reduce((n, p) => n + p.resources + p.dependencies + p.deletes, 0);
    const transactions = r.passes!.reduce((n, p) => n + p.transactions, 0);
    console.log(
      `sweep with ${channels} channel(s): ${written} resources in ${transactions} transactions (${TYPES.length} passes) in ${secs.toFixed(1)} s = ${(written / secs).toFixed(1)} resources/s` +
        `; de-identification ${(deidMs / 1000).toFixed(2)} s (${deidCount} resources), time inside global transactions ${(globalMs / 1000).toFixed(1)} s, global busy ${((busyMs / 1000 / secs) * 100).toFixed(0)}% of the sweep`,
    );
    if (process.env.BENCH_DETAIL === '1') {
      console.log(
        `  passes: ${r
          .passes!.map(
            (p) =>
              `${p.resourceType} ${p.resources + p.dependencies} in ${p.transactions} tx ${(p.durationMs / 1000).toFixed(2)} s`,
          )
          .join('; ')}`,
      );
      console.log(
        `  requests: ${[...byKind]
          .sort((a, b) => b[1].ms - a[1].ms)
          .map(([k, v]) => `${k} ${v.n}x ${(v.ms / 1000).toFixed(1)} s`)
          .join('; ')}`,
      );
    }
    return { written, secs, recorded };
  };

  const bareLoop = async (recorded: readonly string[]): Promise<{ entries: number; secs: number }> => {
    // The same bundles, ids remapped and without the cursor's ifMatch, POSTed one after another.
    const replay = remapUuids(recorded).map((b) => {
      const bundle = JSON.parse(b) as Bundle;
      for (const e of bundle.entry ?? []) {
        if (e.request !== undefined) {
          delete e.request.ifMatch;
        }
      }
      return JSON.stringify(bundle);
    });
    const entries = recorded.reduce(
      (n, b) => n + ((JSON.parse(b) as Bundle).entry ?? []).filter((e) => e.resource?.resourceType !== 'Basic').length,
      0,
    );
    const t1 = performance.now();
    for (const body of replay) {
      const status = await post(GLOBAL, body);
      if (status !== 200) {
        throw new Error(`bare loop: the global answered ${status}`);
      }
    }
    const secs = (performance.now() - t1) / 1000;
    console.log(
      `bare loop, same ${recorded.length} bundles (${entries} data entries), new ids: ${secs.toFixed(1)} s = ${(entries / secs).toFixed(1)} resources/s`,
    );
    return { entries, secs };
  };

  console.log(`quiet machine after loading: waited ${(await quiet()).toFixed(0)} s`);
  const runs: { channels: number; written: number; secs: number }[] = [];
  for (const channels of CHANNELS.slice(0, -1)) {
    await quiet();
    runs.push({ channels, ...(await backfill(channels)) });
  }
  // P2 in rounds: the engine with the most channels, then a bare loop of the bundles it wrote,
  // each on a quiet machine. The global's rate drifts as its database grows and with what
  // else the shared cores do, so one pair is noise; the median of the rounds is the figure.
  const channels = CHANNELS.at(-1)!;
  const ratios: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    await quiet();
    const run = await backfill(channels);
    if (round === 1) {
      runs.push({ channels, ...run });
    }
    await quiet();
    const bare = await bareLoop(run.recorded);
    const ratio = (run.written / run.secs / (bare.entries / bare.secs)) * 100;
    ratios.push(ratio);
    console.log(`round ${round}: engine (${channels} channels) / bare-loop rate ${ratio.toFixed(0)}%`);
  }
  console.log(
    `engine (${channels} channels) / bare-loop rate: median ${median(ratios).toFixed(0)}% over ${ROUNDS} rounds (${ratios.map((r) => `${r.toFixed(0)}%`).join(', ')})`,
  );
  const one = runs[0]!;
  console.log(
    `scaling: ${runs.map((r) => `${r.channels} ch ${(r.written / r.secs).toFixed(0)}/s (x${(r.written / r.secs / (one.written / one.secs)).toFixed(2)})`).join(', ')}`,
  );
}

await main();
