/**
 * Quarantine against the real servers: a resource that fails de-identification and one the
 * global server refuses (HTTP 400) are quarantined with codes only, the rest of the page is
 * written, and after the "rules fix" a retry delivers both and deletes their records. The
 * anonymizer is the real one, wrapped to fail or corrupt chosen resources.
 */
import type { Observation } from '@medplum/fhirtypes';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Anonymizer } from '../../src/anonymizer/index.ts';
import { listQuarantineRecords, toQuarantineItem } from '../../src/sync/index.ts';
import type { SyncEngine } from '../../src/sync/index.ts';
import { fhirUrls } from '../servers/urls.ts';
import {
  FIXTURES,
  fixture,
  getJson,
  loadBundle,
  noLock,
  primeCursors,
  storeAt,
  testAnonymizer,
  testEngine,
  uniq,
  writeInstances,
} from './live.ts';

const urls = fhirUrls();
const id = `q-${uniq()}`;
const { anonymizer: real, codec } = testAnonymizer();
const failing = new Set<string>();
const corrupt = new Set<string>();
let engine: SyncEngine;
let observations: string[] = [];

/** The real anonymizer, made to fail (`failing`) or to produce an invalid status (`corrupt`). */
const wrapped: Anonymizer = {
  rulesVersion: real.rulesVersion,
  keyId: real.keyId,
  pseudonymousId: (i, t, x) => real.pseudonymousId(i, t, x),
  deidentify: (resources, ctx) => {
    const out = real.deidentify(resources, ctx);
    const outcomes = out.outcomes.map((o, i) => {
      const src = resources[i]!;
      if (failing.has(src.id!)) {
        return {
          ok: false as const,
          sourceType: src.resourceType,
          pseudonymousId: real.pseudonymousId(ctx.instanceId, src.resourceType, src.id!),
          code: 'DEID_ERR_TEST_FAILURE',
          location: 'Observation.value',
        };
      }
      if (corrupt.has(src.id!) && o.ok) {
        return { ...o, resource: { ...o.resource, status: 'bogus-status' } as unknown as Observation };
      }
      return o;
    });
    return { outcomes, report: out.report };
  },
};

beforeAll(async () => {
  const { config } = await writeInstances(urls.global, [
    { id, fhirBase: urls.localB, sendTypes: ['Patient', 'Encounter', 'Observation'], pageSize: 20 },
  ]);
  engine = testEngine(config, wrapped, codec);
  await primeCursors(
    storeAt(urls.global),
    codec,
    id,
    ['Patient', 'Encounter', 'Observation'],
    new Date(Date.now() - 2000),
  );
  observations = (await loadBundle(urls.localB, await fixture(FIXTURES.buster))).get('Observation') ?? [];
}, 60_000);

const onGlobal = async (localId: string): Promise<number> =>
  (await getJson(`${urls.global}/Observation/${real.pseudonymousId(id, 'Observation', localId)}`)).status;

describe('quarantine', () => {
  it('holds back what fails de-identification or is refused, writes the rest, keeps codes only', async () => {
    const [bad, refused] = observations.slice(4, 6) as [string, string];
    failing.add(bad);
    corrupt.add(refused);
    const result = await engine.runJob({ kind: 'pass', instanceId: id, resourceType: 'Observation' }, { lock: noLock });
    const pass = result.passes![0]!;
    expect(pass.quarantined).toBe(2);
    expect(pass.resources).toBe(observations.length - 2);
    expect(await onGlobal(bad)).toBe(404);
    expect(await onGlobal(refused)).toBe(404);
    expect(await onGlobal(observations[0]!)).toBe(200);
    expect(await onGlobal(observations.at(-1)!)).toBe(200);

    const items = (
      await listQuarantineRecords(storeAt(urls.global), { instanceId: id, resourceType: 'Observation' })
    ).map(toQuarantineItem);
    expect(items.map((i) => [i.pseudonymousId, i.reasonCode]).sort()).toEqual(
      [
        [real.pseudonymousId(id, 'Observation', bad), 'DEID_ERR_TEST_FAILURE'],
        [real.pseudonymousId(id, 'Observation', refused), 'HAPI-0450'],
      ].sort(),
    );
    expect(items.every((i) => i.rulesVersion === real.rulesVersion && i.instanceId === id)).toBe(true);
    const raw = JSON.stringify(
      await getJson(`${urls.global}/Basic?identifier=urn:fhir-sync:quarantine-scope|forward/${id}/Observation`),
    );
    expect(raw).not.toContain('bogus-status');
    expect(raw).not.toContain(bad);
    expect(raw).not.toContain(refused);
  });

  it('delivers quarantined resources on retry once the cause is fixed, and deletes their records', async () => {
    failing.clear();
    corrupt.clear();
    const result = await engine.runJob(
      { kind: 'quarantine-retry', instanceId: id, resourceType: 'Observation' },
      { lock: noLock },
    );
    expect(result.retry).toEqual({ retried: 2, delivered: 2, deleted: 0, stillQuarantined: 0, skipped: 0 });
    for (const o of observations) {
      expect(await onGlobal(o)).toBe(200);
    }
    expect(await listQuarantineRecords(storeAt(urls.global), { instanceId: id })).toEqual([]);
  });

  it('turns a quarantined resource deleted on the local into a deletion on retry', async () => {
    const target = observations[7]!;
    failing.add(target);
    await fetch(`${urls.localB}/Observation/${target}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify({
        ...(await getJson<Observation>(`${urls.localB}/Observation/${target}`)).body,
        status: 'amended',
        meta: undefined,
      }),
    });
    const pass = (await engine.runJob({ kind: 'pass', instanceId: id, resourceType: 'Observation' }, { lock: noLock }))
      .passes![0]!;
    expect(pass.quarantined).toBe(1);
    expect((await fetch(`${urls.localB}/Observation/${target}`, { method: 'DELETE' })).status).toBeLessThan(300);
    failing.clear();
    // `*`: every instance; records of instances this configuration does not know are skipped.
    const retried = await engine.runJob({ kind: 'quarantine-retry', instanceId: '*' }, { lock: noLock });
    expect(retried.retry).toMatchObject({ deleted: 1, stillQuarantined: 0 });
    expect(await onGlobal(target)).toBe(410);
    expect(await listQuarantineRecords(storeAt(urls.global), { instanceId: id })).toEqual([]);
  });

  it('quarantines a poison record nested past the cap on the real servers; the rest of the page is written', async () => {
    // 200 levels of extensions (400 JSON levels), past the cap of 256 and below what HAPI's own
    // parser accepts; the stack overflow of far deeper records is shown by test/sync/pass.test.ts.
    let extension: Record<string, unknown> = { url: 'http://example.org/x', valueString: 'poison' };
    for (let i = 0; i < 200; i++) {
      extension = { url: 'http://example.org/x', extension: [extension] };
    }
    const put = async (localId: string, body: Observation): Promise<void> => {
      const res = await fetch(`${urls.localB}/Observation/${localId}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/fhir+json' },
        body: JSON.stringify(body),
      });
      expect(res.status).toBeLessThan(300);
    };
    const [poison, plain] = [observations[8]!, observations[9]!];
    const base = async (localId: string): Promise<Observation> => ({
      ...(await getJson<Observation>(`${urls.localB}/Observation/${localId}`)).body,
      meta: undefined,
    });
    await put(poison, { ...(await base(poison)), extension: [extension] as unknown as Observation['extension'] });
    await put(plain, { ...(await base(plain)), status: 'amended' });

    const pass = (await engine.runJob({ kind: 'pass', instanceId: id, resourceType: 'Observation' }, { lock: noLock }))
      .passes![0]!;
    expect(pass).toMatchObject({ resources: 1, quarantined: 1 });
    expect(
      (await getJson<Observation>(`${urls.global}/Observation/${real.pseudonymousId(id, 'Observation', plain)}`)).body
        .status,
    ).toBe('amended');
    const items = (await listQuarantineRecords(storeAt(urls.global), { instanceId: id })).map(toQuarantineItem);
    expect(items.map((i) => [i.pseudonymousId, i.reasonCode])).toEqual([
      [real.pseudonymousId(id, 'Observation', poison), 'SYNC_ERR_TOO_DEEP'],
    ]);
    // A retry quarantines it again without failing; once deleted on the local, it is deleted on the global.
    const again = await engine.runJob({ kind: 'quarantine-retry', instanceId: id }, { lock: noLock });
    expect(again.retry).toMatchObject({ stillQuarantined: 1 });
    expect((await fetch(`${urls.localB}/Observation/${poison}`, { method: 'DELETE' })).status).toBeLessThan(300);
    const retried = await engine.runJob({ kind: 'quarantine-retry', instanceId: id }, { lock: noLock });
    expect(retried.retry).toMatchObject({ deleted: 1, stillQuarantined: 0 });
    expect(await onGlobal(poison)).toBe(410);
  });
});
