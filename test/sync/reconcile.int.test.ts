/**
 * Reconciliation against the real servers (issue 11.4). HAPI assigns `meta.lastUpdated`
 * itself, so a back-dated resource is simulated the way it looks to a `_lastUpdated` feed: it
 * is written on the local and then the cursor is moved past it. A global copy deleted by hand
 * is the second gap. The normal pass misses both; reconcile repairs both, de-identified.
 */
import type { Observation } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { fhirUrls } from '../servers/urls.ts';
import { getJson, noLock, primeCursors, storeAt, testAnonymizer, testEngine, uniq, writeInstances } from './live.ts';

const urls = fhirUrls();
const id = `rc-${uniq()}`;
const { anonymizer, codec } = testAnonymizer();
const globalUrl = (localId: string): string =>
  `${urls.global}/Observation/${anonymizer.pseudonymousId(id, 'Observation', localId)}`;
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 1500));

async function put(localId: string, value: number): Promise<void> {
  const body: Observation = {
    resourceType: 'Observation',
    id: localId,
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
    valueQuantity: { value, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
  };
  const res = await fetch(`${urls.localC}/Observation/${localId}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBeLessThan(300);
}

describe('reconcile', () => {
  it('repairs what the feed missed (behind the cursor, deleted on the global) and nothing else', async () => {
    const { config } = await writeInstances(urls.global, [
      { id, fhirBase: urls.localC, sendTypes: ['Observation'], feedKind: 'auto' },
    ]);
    const engine = testEngine(config, anonymizer, codec);
    const synced = `rc-a-${uniq()}`;
    const dropped = `rc-b-${uniq()}`;
    await primeCursors(storeAt(urls.global), codec, id, ['Observation'], new Date(Date.now() - 1000));
    await put(synced, 70);
    await put(dropped, 71);
    await settle();
    await engine.runJob({ kind: 'pass', instanceId: id, resourceType: 'Observation' }, { lock: noLock });
    expect((await getJson(globalUrl(dropped))).status).toBe(200);
    // Gap 1: a global copy lost (deleted by hand).
    expect((await fetch(globalUrl(dropped), { method: 'DELETE' })).status).toBeLessThan(300);
    // Gap 2: a resource the cursor is already past (what a back-dated lastUpdated looks like).
    const behind = `rc-c-${uniq()}`;
    await put(behind, 72);
    await primeCursors(storeAt(urls.global), codec, id, ['Observation'], new Date(Date.now() + 1000));
    await settle();
    await engine.runJob({ kind: 'pass', instanceId: id, resourceType: 'Observation' }, { lock: noLock });
    expect((await getJson(globalUrl(behind))).status).toBe(404);
    expect((await getJson(globalUrl(dropped))).status).toBe(410);

    const result = await engine.runJob(
      { kind: 'reconcile', instanceId: id, resourceType: 'Observation' },
      { lock: noLock },
    );
    expect(result.reconcile).toMatchObject({ quarantined: 0 });
    expect(result.reconcile!.missing).toBeGreaterThanOrEqual(2);
    const repaired = await getJson<Observation>(globalUrl(behind));
    expect(repaired.status).toBe(200);
    expect(repaired.body.valueQuantity?.value).toBe(72);
    // Through the normal path: de-identified and marked like any pass's write.
    expect(repaired.body.meta?.security?.map((c) => c.code)).toContain('PSEUDED');
    expect(repaired.body.meta?.tag?.map((c) => c.code)).toContain('from-local');
    expect((await getJson(globalUrl(dropped))).status).toBe(200);
    // The one that was in sync was not rewritten.
    expect((await getJson<Observation>(globalUrl(synced))).body.meta?.versionId).toBe('1');

    // A second run finds nothing missing from this test's resources.
    const again = await engine.runJob(
      { kind: 'reconcile', instanceId: id, resourceType: 'Observation' },
      { lock: noLock },
    );
    expect(again.reconcile!.missing).toBeLessThan(result.reconcile!.missing);
  }, 120_000);
});
