/**
 * `npm run bench latency` (issue 13, P3): change → global latency under a steady write load,
 * with polling and with push. A writer creates one Observation on local A every WRITE_EVERY_MS.
 * - polling: a pass of the type runs every POLL_EVERY_MS (as the scheduler would, without Redis);
 * - push: the service's own rest-hook Subscription is put on the local (reconcileSubscriptions),
 *   a small HTTP endpoint checks each notification's token and runs a pass at once (one more
 *   after it when notifications arrived meanwhile: what the wake-up queue does), with a poll
 *   every 60 s as the backstop.
 * Every transaction the engine sends to the global is timed, and each created resource's latency
 * is the time its transaction was answered minus the time its creation was answered. Prints
 * p50/p95/p99/max (goals: polling p99 <= interval + 2 s; push p99 <= 2 s).
 * Needs the HAPI test servers (`npm run servers:start`); skips itself when they are down.
 * Environment: BENCH_SECONDS (default 40), BENCH_POLL_MS (default 5000), BENCH_WRITE_MS (default 250),
 * BENCH_MODES (default `polling,push`).
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Bundle, Observation } from '@medplum/fhirtypes';
import pino from 'pino';
import { createAnonymizer, loadRulesFile, makeKey } from '../src/anonymizer/index.ts';
import { parseInstances } from '../src/instances/index.ts';
import {
  PUSH_HEADER,
  createFhirStore,
  createSyncEngine,
  pushTokenValid,
  rangeCursorFor,
  reconcileSubscriptions,
  sealingCodec,
} from '../src/sync/index.ts';
import { cursorResource } from '../src/sync/state.ts';

const GLOBAL = process.env.FHIR_GLOBAL_URL ?? 'http://127.0.0.1:8090/fhir';
const LOCAL = process.env.FHIR_LOCAL_A_URL ?? 'http://127.0.0.1:8091/fhir';
const SECONDS = Number(process.env.BENCH_SECONDS ?? '40');
const POLL_EVERY_MS = Number(process.env.BENCH_POLL_MS ?? '5000');
const WRITE_EVERY_MS = Number(process.env.BENCH_WRITE_MS ?? '250');
const MODES = (process.env.BENCH_MODES ?? 'polling,push').split(',');
const BACKSTOP_MS = 60_000;
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
  for (const mode of MODES) {
    await measure(mode === 'push' ? 'push' : 'polling');
  }
}

async function measure(mode: 'polling' | 'push'): Promise<void> {
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
  let running: Promise<void> | undefined;
  let again = false;
  // One pass at a time; a request while one runs makes exactly one more (the wake-up queue's rule).
  const pass = (): Promise<void> => {
    if (running !== undefined) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await engine.runJob(
          { kind: 'pass', instanceId, resourceType: 'Observation' },
          { lock: (_i, fn) => fn(undefined) },
        );
        passes++;
      } while (again);
      running = undefined;
    })();
    return running;
  };
  let notifications = 0;
  let stopHook = (): Promise<void> => Promise.resolve();
  if (mode === 'push') {
    const secret = randomBytes(32);
    const hook = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const ok = pushTokenValid(secret, instanceId, req.headers[PUSH_HEADER] as string | undefined);
        res.statusCode = ok ? 202 : 401;
        res.end();
        if (ok) {
          notifications++;
          void pass();
        }
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const publicUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}`;
    const local = createFhirStore({ baseUrl: root(LOCAL), fhirPath: 'fhir' });
    const done = await reconcileSubscriptions(config.instances[0]!, local, { publicUrl, secret });
    if (!done.supported) {
      console.log(`push: skipped, the local refused rest-hook Subscriptions (HTTP ${done.status ?? '?'})`);
      hook.close();
      return;
    }
    await sleep(1500); // HAPI activates the Subscription asynchronously
    stopHook = async () => {
      await local.transaction({
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [{ request: { method: 'DELETE', url: `Subscription/${done.subscriptionIds[0]}` } }],
      });
      hook.close();
    };
  }
  const every = mode === 'push' ? BACKSTOP_MS : POLL_EVERY_MS;
  const poller = (async () => {
    // Until the writer has stopped and one more pass has collected its last writes.
    while (performance.now() < end + Math.min(every, 5000)) {
      await pass();
      await sleep(Math.min(every, Math.max(0, end + 5000 - performance.now())));
    }
  })();
  await Promise.all([writer, poller]);
  await pass();
  await stopHook();

  const latencies = [...created]
    .map(([pid, at]) => (arrived.get(pid) ?? Number.NaN) - at)
    .filter(Number.isFinite)
    .sort((a, b) => a - b);
  const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
  const how =
    mode === 'push'
      ? `push (${notifications} notifications, backstop poll every ${BACKSTOP_MS / 1000} s)`
      : `polling every ${POLL_EVERY_MS / 1000} s`;
  console.log(
    `${how}, one write every ${WRITE_EVERY_MS} ms for ${SECONDS} s: ` +
      `${latencies.length}/${created.size} changes reached the global in ${passes} passes`,
  );
  const goal = mode === 'push' ? 2000 : POLL_EVERY_MS + 2000;
  console.log(
    `${mode}: change -> global latency: p50 ${s(percentile(latencies, 50))}, p95 ${s(percentile(latencies, 95))}, ` +
      `p99 ${s(percentile(latencies, 99))}, max ${s(latencies.at(-1) ?? Number.NaN)} (goal: p99 <= ${s(goal)})`,
  );
}

await main();
