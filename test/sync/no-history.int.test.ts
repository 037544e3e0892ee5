/**
 * A live local without `_history` (test server local-c, started with `--no-history`): with
 * `feed.kind: auto` the service must see that the server declares no history, read changes
 * with `_lastUpdated` search instead, and still bring creations and updates to the global.
 * Deletions are invisible to `_lastUpdated` search on HAPI (no deletions query): the normal
 * pass does not carry them, which this test pins so the limit stays documented.
 */
import type { Observation } from '@medplum/fhirtypes';
import { beforeAll, describe, expect, it } from 'vitest';
import { probeServer } from '../../src/instances/probe.ts';
import { fhirUrls } from '../servers/urls.ts';
import { getJson, noLock, primeCursors, storeAt, testAnonymizer, testEngine, uniq, writeInstances } from './live.ts';

const urls = fhirUrls();
const id = `nh-${uniq()}`;
const { anonymizer, codec } = testAnonymizer();
const onGlobal = (type: string, localId: string): Promise<{ status: number; body: Observation }> =>
  getJson<Observation>(`${urls.global}/${type}/${anonymizer.pseudonymousId(id, type, localId)}`);
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 1500));

async function put(resource: Observation): Promise<void> {
  const res = await fetch(`${urls.localC}/Observation/${resource.id!}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify(resource),
  });
  expect(res.status).toBeLessThan(300);
}

function observation(localId: string, value: number): Observation {
  return {
    resourceType: 'Observation',
    id: localId,
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
    valueQuantity: { value, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
  };
}

describe('a local without _history (local-c)', () => {
  beforeAll(async () => {
    // Other runs' data on local-c is not this test's: start the cursor just before now.
    await primeCursors(storeAt(urls.global), codec, id, ['Observation'], new Date(Date.now() - 1000));
  });

  it('really has no history: 405 on _history, none declared, so auto picks search-lastupdated', async () => {
    expect((await fetch(`${urls.localC}/Observation/_history`)).status).toBe(405);
    const { config } = await writeInstances(urls.global, [
      { id, fhirBase: urls.localC, sendTypes: ['Observation'], feedKind: 'auto' },
    ]);
    const local = config.instances[0]!;
    const probe = await probeServer(local.id, local, local.feed, ['Observation']);
    expect(probe.types[0]).toMatchObject({ kind: 'search-lastupdated' });
  });

  it('syncs creations and updates with feed.kind auto; a deletion is not carried by the pass', async () => {
    const { config } = await writeInstances(urls.global, [
      { id, fhirBase: urls.localC, sendTypes: ['Observation'], feedKind: 'auto' },
    ]);
    const engine = testEngine(config, anonymizer, codec);
    const ids = [0, 1, 2].map(() => `nh-obs-${uniq()}`);
    for (const [i, localId] of ids.entries()) {
      await put(observation(localId, 60 + i));
    }
    await settle();
    const first = await engine.runJob({ kind: 'pass', instanceId: id, resourceType: 'Observation' }, { lock: noLock });
    expect(first.progress.resources).toBeGreaterThanOrEqual(3);
    for (const localId of ids) {
      expect((await onGlobal('Observation', localId)).status).toBe(200);
    }

    await put(observation(ids[0]!, 99));
    expect((await fetch(`${urls.localC}/Observation/${ids[1]!}`, { method: 'DELETE' })).status).toBeLessThan(300);
    await settle();
    await engine.runJob({ kind: 'pass', instanceId: id, resourceType: 'Observation' }, { lock: noLock });
    expect((await onGlobal('Observation', ids[0]!)).body.valueQuantity?.value).toBe(99);
    // The limit: `_lastUpdated` search on HAPI lists no deleted resources, so the deletion
    // stays on the global after a normal pass (reconciliation is the repair).
    expect((await onGlobal('Observation', ids[1]!)).status).toBe(200);
  }, 120_000);
});
