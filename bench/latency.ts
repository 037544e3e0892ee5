/**
 * `npm run bench latency` (issue 13, P3 with polling): change → global latency under a steady
 * write load. A writer creates one Observation on local A every WRITE_EVERY_MS; a poller runs
 * a pass of the type every POLL_EVERY_MS (as the scheduler would, without Redis); every
 * transaction the engine sends to the global is timed, and each created resource's latency is
 * the time its transaction was answered minus the time its creation was answered. Prints
 * p50/p95/p99/max (goal with polling: p99 <= interval + 2 s).
 * Needs the HAPI test servers (`npm run servers:start`); skips itself when they are down.
 * Environment: BENCH_SECONDS (default 40), BENCH_POLL_MS (default 5000), BENCH_WRITE_MS (default 250).
 */
import { randomBytes } from 'node:crypto';
import type { Bundle, Observation } from '@medplum/fhirtypes';
import pino from 'pino';
import { createAnonymizer, loadRulesFile, makeKey } from '../src/anonymizer/index.ts';
import { parseInstances } from '../src/instances/index.ts';
import { createFhirStore, createSyncEngine, rangeCursorFor, sealingCodec } from '../src/sync/index.ts';
import { cursorResource } from '../src/sync/state.ts';

const GLOBAL = process.env.FHIR_GLOBAL_URL ?? 'http://127.0.0.1:8090/fhir';
const LOCAL = process.env.FHIR_LOCAL_A_URL ?? 'http://127.0.0.1:8091/fhir';
const SECONDS = Number(process.env.BENCH_SECONDS ?? '40');
const POLL_EVERY_MS = Number(process.env.BENCH_POLL_MS ?? '5000');
const WRITE_EVERY_MS = Number(process.env.BENCH_WRITE_MS ?? '250');
const root = (u: string): string => u.replace(/\/fhir\/?$/, '/');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function up(base: string): Promise<boolean> {
  try {
    const res = await fetch(`${base}/metadata`, { signal: AbortSignal.timeout(3000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function main(): Promise<void> {
  if (!(await up(GLOBAL)) || !(await up(LOCAL))) {
    console.log(
      `skipped: HAPI test servers not reachable (${GLOBAL}, ${LOCAL}); start them with npm run servers:start`,
    );
    return;
  }
  const instanceId = `lat-${randomBytes(3).toString('hex')}`;
  const key = makeKey('bench', randomBytes(32));
  const anonymizer = createAnonymizer({ rules: loadRulesFile('config/anonymization.yaml'), key });
  const codec = sealingCodec(key.secret, key.id);
  const config = parseInstances(
    `version: 1
global: { baseUrl: '${root(GLOBAL)}', bundleSize: 100 }
instances:
  - id: ${instanceId}
    baseUrl: '${root(LOCAL)}'
    feed: { kind: fhir-history, settleMs: 2000 }
    sendTypes: [Observation]
`,
    { source: 'bench' },
  ).config;

  // When the global answered each transaction, by the pseudonymous ids it carried.
  const arrived = new Map<string, number>();
  const engine = createSyncEngine({
    config: () => Promise.resolve(config),
    anonymizer,
    codec,
    logger: pino({ level: 'silent' }),
    clientOptions: {
      fetch: async (url, init) => {
        const res = await fetch(url, init);
        if (init?.method === 'POST' && String(url).replace(/\/$/, '') === GLOBAL && typeof init.body === 'string') {
          const at = performance.now();
          for (const e of (JSON.parse(init.body) as Bundle).entry ?? []) {
            const m = /^Observation\/(.+)$/.exec(e.request?.url ?? '');
            if (m !== null && !arrived.has(m[1]!)) {
              arrived.set(m[1]!, at);
            }
          }
        }
        return res;
      },
    },
  });
  const since = new Date(Date.now() - 1000).toISOString();
  const make = rangeCursorFor({ kind: 'fhir-history' })!;
  const cursor = cursorResource({
    direction: 'forward',
    instanceId,
    resourceType: 'Observation',
    updatedAt: since,
    cursor: codec.seal(make(since)!),
  });
  await createFhirStore({ baseUrl: root(GLOBAL), fhirPath: 'fhir' }).transaction({
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [{ resource: cursor, request: { method: 'PUT', url: `Basic/${cursor.id}` } }],
  });

  const created = new Map<string, number>(); // pseudonymous id -> creation answered
  const end = performance.now() + SECONDS * 1000;
  const writer = (async () => {
    let n = 0;
    while (performance.now() < end) {
      const obs: Observation = {
        resourceType: 'Observation',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }], text: 'Heart rate' },
        valueQuantity: { value: 60 + (n++ % 40), unit: '/min' },
      };
      const res = await fetch(`${LOCAL}/Observation`, {
        method: 'POST',
        headers: { 'content-type': 'application/fhir+json' },
        body: JSON.stringify(obs),
      });
      const id = ((await res.json()) as Observation).id!;
      created.set(anonymizer.pseudonymousId(instanceId, 'Observation', id), performance.now());
      await sleep(WRITE_EVERY_MS);
    }
  })();
  let passes = 0;
  const poller = (async () => {
    // Until the writer has stopped and one more pass has collected its last writes.
    for (let last = false; !last;) {
      last = performance.now() >= end + POLL_EVERY_MS;
      await engine.runJob(
        { kind: 'pass', instanceId, resourceType: 'Observation' },
        { lock: (_i, fn) => fn(undefined) },
      );
      passes++;
      await sleep(POLL_EVERY_MS);
    }
  })();
  await Promise.all([writer, poller]);
  await engine.runJob({ kind: 'pass', instanceId, resourceType: 'Observation' }, { lock: (_i, fn) => fn(undefined) });

  const latencies = [...created]
    .map(([pid, at]) => (arrived.get(pid) ?? Number.NaN) - at)
    .filter(Number.isFinite)
    .sort((a, b) => a - b);
  const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
  console.log(
    `polling every ${POLL_EVERY_MS / 1000} s, one write every ${WRITE_EVERY_MS} ms for ${SECONDS} s: ` +
      `${latencies.length}/${created.size} changes reached the global in ${passes} passes`,
  );
  console.log(
    `change -> global latency: p50 ${s(percentile(latencies, 50))}, p95 ${s(percentile(latencies, 95))}, ` +
      `p99 ${s(percentile(latencies, 99))}, max ${s(latencies.at(-1) ?? Number.NaN)} (goal: p99 <= ${s(POLL_EVERY_MS + 2000)})`,
  );
}

await main();
