/**
 * `npm run bench pass-backlog` (issue 13, P4): memory of one forward pass over a backlog of
 * 100,000 changes, the whole pipeline (feed → de-identification with the shipped profile →
 * bundles → writes → cursor commits). The feed makes its pages on demand and the global is a
 * sink that answers like a FHIR server and keeps only the cursor, so what grows is the engine's
 * own memory. Prints RSS and the live heap (after forced GCs) every 10,000 changes and the peak:
 * flat figures mean memory is bounded by the page, not the backlog (goal: peak RSS <= 300 MB).
 *   node bench/pass-backlog.ts [changes]
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Bundle, Observation, Resource } from '@medplum/fhirtypes';
import pino from 'pino';
import { createAnonymizer, loadRulesFile, makeKey } from '../src/anonymizer/index.ts';
import type { Change, ChangeFeed, ChangePage } from '../src/changes/index.ts';
import { parseInstances } from '../src/instances/index.ts';
import { forwardChannel, runPass, sealingCodec } from '../src/sync/index.ts';
import type { FhirStore } from '../src/sync/index.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const TOTAL = Number(process.argv[2] ?? 100_000);
const PATIENTS = 500;
const MB = 1024 * 1024;

/** A vital-signs Observation of one of the (pre-existing) patients, with a short free-text note. */
function observation(n: number): Observation {
  const p = n % PATIENTS;
  return {
    resourceType: 'Observation',
    id: `obs-${n}`,
    meta: { versionId: '1', lastUpdated: new Date(Date.UTC(2026, 0, 1, 0, 0, n % 60)).toISOString() },
    status: 'final',
    category: [
      { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] },
    ],
    code: { coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }], text: 'Heart rate' },
    subject: { reference: `Patient/pat-${p}`, display: `Patient ${p}` },
    effectiveDateTime: `2026-01-${String((n % 28) + 1).padStart(2, '0')}T08:30:00Z`,
    valueQuantity: { value: 60 + (n % 40), unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
    note: [{ text: `Measured at rest after ${n % 15} minutes; patient calm, no complaints reported.` }],
  };
}

/** A feed of TOTAL changes made page by page (nothing held beyond the page). */
function syntheticFeed(): ChangeFeed {
  return {
    kind: 'synthetic',
    async *pages(_type: string, cursor: string | undefined, options = {}): AsyncIterable<ChangePage> {
      const size = options.pageSize ?? 99;
      let at = cursor === undefined ? 0 : Number(cursor);
      while (at < TOTAL) {
        await Promise.resolve();
        const changes: Change[] = [];
        for (let n = at; n < Math.min(TOTAL, at + size); n++) {
          const resource = observation(n);
          changes.push({ kind: 'resource', resourceType: 'Observation', id: resource.id!, resource });
        }
        at += changes.length;
        yield { changes, cursor: String(at) };
      }
    },
  };
}

/** A global that answers transactions like a FHIR server, keeps only Basic (cursor) resources. */
function sinkStore(): FhirStore & { written: number } {
  const basics = new Map<string, Resource>();
  let version = 0;
  const store = {
    base: 'http://sink/fhir',
    written: 0,
    transaction: (bundle: Bundle) => {
      const entry = (bundle.entry ?? []).map((e) => {
        const url = e.request?.url ?? '';
        if (e.resource?.resourceType === 'Basic') {
          basics.set(url, { ...e.resource, meta: { versionId: String(++version) } });
        } else {
          store.written++;
        }
        return {
          response: {
            status: e.request?.method === 'DELETE' ? '204' : '201 Created',
            etag: `W/"${version}"`,
            location: `${url}/_history/${version}`,
          },
        };
      });
      return Promise.resolve({ status: 200, body: { resourceType: 'Bundle', type: 'transaction-response', entry } });
    },
    read: (type: string, id: string) => Promise.resolve(basics.get(`${type}/${id}`)),
    // Every referenced resource already exists on the global: no dependency pulls.
    searchAll: (type: string, query: Readonly<Record<string, string>>) =>
      Promise.resolve((query._id ?? '').split(',').flatMap((id) => (id === '' ? [] : [{ resourceType: type, id }]))),
    searchPages: async function* () {
      // unused by passes
    },
    create: () => Promise.resolve(undefined),
  };
  return store as FhirStore & { written: number };
}

function live(): { heap: number; rss: number } {
  gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss };
}

const { config } = parseInstances(
  `version: 1
global: { baseUrl: http://sink/, bundleSize: 100 }
instances:
  - id: bench
    baseUrl: http://local/
    sendTypes: [Patient, Observation]
    feed: { kind: fhir-history }
`,
  { source: 'bench' },
);
const key = makeKey('bench', 'b'.repeat(32));
const anonymizer = createAnonymizer({ rules: loadRulesFile('config/anonymization.yaml'), key });
const global = sinkStore();
const local = sinkStore();
const start = live();
let peakRss = start.rss;
let next = 10_000;
const t0 = performance.now();
const summary = await runPass(
  {
    openChannel: (req) =>
      Promise.resolve(
        forwardChannel({
          instance: config.instances[0]!,
          global: config.global,
          resourceType: req.resourceType,
          feed: syntheticFeed(),
          anonymizer,
          local,
          globalStore: global,
          codec: sealingCodec(key.secret, key.id),
        }),
      ),
    logger: pino({ level: 'silent' }),
    clock: () => new Date(),
    retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 100 },
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    random: Math.random,
  },
  { instanceId: 'bench', resourceType: 'Observation' },
  (p) => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    if (p.resources >= next) {
      const m = live();
      console.log(
        `  ${String(p.resources).padStart(7)} written: RSS ${(m.rss / MB).toFixed(0)} MB, live heap ${(m.heap / MB).toFixed(1)} MB`,
      );
      next += 10_000;
    }
  },
);
const secs = (performance.now() - t0) / 1000;
const end = live();
console.log(
  `pass over ${TOTAL} changes: ${summary.resources} written (${global.written} entries) in ${summary.pages} pages, ` +
    `${secs.toFixed(1)} s (${(summary.resources / secs).toFixed(0)} resources/s)`,
);
console.log(
  `RSS at start ${(start.rss / MB).toFixed(0)} MB, peak ${(peakRss / MB).toFixed(0)} MB, end ${(end.rss / MB).toFixed(0)} MB; ` +
    `live heap at start ${(start.heap / MB).toFixed(1)} MB, end ${(end.heap / MB).toFixed(1)} MB (goal: peak RSS <= 300 MB, flat)`,
);
