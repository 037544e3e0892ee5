/**
 * A sweep against the real servers: every sent type of an instance under one lock, four
 * channels at once through the global's shared limiter. The global really sees concurrent
 * transactions, concurrent creation of shared dependencies settles (409 → one more attempt),
 * and the result is exactly the loaded set, once.
 */
import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { createSyncEngine } from '../../src/sync/index.ts';
import { fhirUrls } from '../servers/urls.ts';
import {
  CLINICAL_TYPES,
  FIXTURES,
  fixture,
  getJson,
  loadBundle,
  noLock,
  primeCursors,
  storeAt,
  testAnonymizer,
  uniq,
  writeInstances,
} from './live.ts';

const urls = fhirUrls();
const id = `sw-${uniq()}`;
const { anonymizer, codec } = testAnonymizer();
let loaded = new Map<string, string[]>();
let inFlight = 0;
let maxInFlight = 0;

describe('sweep', () => {
  beforeAll(async () => {
    await primeCursors(storeAt(urls.global), codec, id, CLINICAL_TYPES, new Date(Date.now() - 2000));
    for (const f of [FIXTURES.luigi, FIXTURES.liz]) {
      for (const [type, ids] of await loadBundle(urls.localA, await fixture(f))) {
        loaded.set(type, [...(loaded.get(type) ?? []), ...ids]);
      }
    }
    loaded = new Map([...loaded].filter(([t]) => (CLINICAL_TYPES as readonly string[]).includes(t)));
  }, 120_000);

  it('runs every sent type, several channels at once, and writes exactly the loaded set', async () => {
    const { config } = await writeInstances(urls.global, [
      { id, fhirBase: urls.localA, sendTypes: CLINICAL_TYPES, pageSize: 10 },
    ]);
    const engine = createSyncEngine({
      config: () => Promise.resolve(config),
      anonymizer,
      codec,
      logger: pino({ level: 'silent' }),
      retry: { attempts: 4, baseDelayMs: 100, maxDelayMs: 1000 },
      channelConcurrency: 4,
      globalConcurrency: 4,
      clientOptions: {
        // Counts transactions in flight to the global (the only POSTs to its base).
        fetch: async (url, init) => {
          const toGlobal = String(url).startsWith(urls.global) && init?.method === 'POST';
          if (toGlobal) {
            maxInFlight = Math.max(maxInFlight, ++inFlight);
          }
          try {
            return await fetch(url, init);
          } finally {
            if (toGlobal) {
              inFlight--;
            }
          }
        },
      },
    });
    const progress: number[] = [];
    const result = await engine.runJob(
      { kind: 'sweep', instanceId: id },
      { lock: noLock, onProgress: (p) => void progress.push(p.resources) },
    );
    expect(result.failures).toEqual([]);
    expect(result.passes!.map((p) => p.resourceType).sort()).toEqual([...CLINICAL_TYPES].sort());
    expect(maxInFlight).toBeGreaterThan(1);
    expect(progress.at(-1)).toBe(result.progress.resources);
    // Once, or twice for a resource one channel pulled in as a dependency while its own type's
    // channel was writing it (a second PUT; its free text may be scrubbed against a different
    // batch). Never more, and never a failure or a quarantine.
    const versions = new Map<string, number>();
    for (const [type, ids] of loaded) {
      for (const localId of ids) {
        const at = `${urls.global}/${type}/${anonymizer.pseudonymousId(id, type, localId)}`;
        const { status, body } = await getJson(at);
        expect(status, at).toBe(200);
        const v = body.meta?.versionId ?? '?';
        versions.set(v, (versions.get(v) ?? 0) + 1);
      }
    }
    expect(
      [...versions.keys()].every((v) => v === '1' || v === '2'),
      JSON.stringify([...versions]),
    ).toBe(true);
    expect(result.passes!.reduce((n, p) => n + p.quarantined, 0)).toBe(0);
  }, 300_000);
});
