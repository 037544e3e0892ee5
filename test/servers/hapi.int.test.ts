/**
 * Smoke tests of the real HAPI FHIR test servers: the behaviour the sync tests rely on
 * (client ids, history with deletes, atomic transactions, paging). Plain fetch on purpose:
 * these test the servers, not our client code.
 */
import { randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, Observation, Patient, Resource } from '@medplum/fhirtypes';
import { beforeAll, describe, expect, it } from 'vitest';
import { fhirUrls } from './urls.ts';
import type { FhirServerUrls } from './urls.ts';

const FHIR_JSON = 'application/fhir+json';

interface Answer<T> {
  readonly status: number;
  readonly body: T;
}

async function call<T = Resource>(method: string, url: string, body?: unknown): Promise<Answer<T>> {
  const res = await fetch(url, {
    method,
    headers: { accept: FHIR_JSON, ...(body === undefined ? {} : { 'content-type': FHIR_JSON }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text === '' ? undefined : JSON.parse(text)) as T };
}

/** Every entry of a history/search bundle, following `next` links. */
async function allEntries(url: string): Promise<BundleEntry[]> {
  const entries: BundleEntry[] = [];
  let next: string | undefined = url;
  while (next !== undefined) {
    const page: Answer<Bundle> = await call<Bundle>('GET', next);
    expect(page.status).toBe(200);
    entries.push(...(page.body.entry ?? []));
    next = page.body.link?.find((l) => l.relation === 'next')?.url;
  }
  return entries;
}

function patient(id: string, family: string): Patient {
  return { resourceType: 'Patient', id, name: [{ family }] };
}

function putEntry(resource: Resource): BundleEntry {
  return { resource, request: { method: 'PUT', url: `${resource.resourceType}/${resource.id ?? ''}` } };
}

function transaction(entries: BundleEntry[]): Bundle {
  return { resourceType: 'Bundle', type: 'transaction', entry: entries };
}

let urls: FhirServerUrls;

beforeAll(() => {
  urls = fhirUrls();
});

describe('test server wiring', () => {
  it('all three servers answer /metadata with an R4 CapabilityStatement listing history and transaction', async () => {
    for (const base of [urls.global, urls.localA, urls.localB]) {
      const { status, body } = await call<{ fhirVersion: string; rest: { interaction?: { code: string }[] }[] }>(
        'GET',
        `${base}/metadata`,
      );
      expect(status).toBe(200);
      expect(body.fhirVersion).toBe('4.0.1');
      const codes = body.rest[0]?.interaction?.map((i) => i.code);
      expect(codes).toEqual(expect.arrayContaining(['transaction', 'history-system']));
    }
  });

  it('local-c refuses every _history read (405) and declares no history, yet stores and searches', async () => {
    const id = `nohist-${randomUUID()}`;
    expect((await call('PUT', `${urls.localC}/Patient/${id}`, patient(id, 'NoHistory'))).status).toBe(201);
    for (const path of ['_history', 'Patient/_history', `Patient/${id}/_history`, `Patient/${id}/_history/1`]) {
      expect((await call('GET', `${urls.localC}/${path}`)).status, path).toBe(405);
    }
    expect((await call<Bundle>('GET', `${urls.localC}/Patient?_id=${id}`)).body.entry).toHaveLength(1);
    const { body } = await call<{
      rest: { interaction?: { code: string }[]; resource?: { interaction?: { code: string }[] }[] }[];
    }>('GET', `${urls.localC}/metadata`);
    const codes = [
      ...(body.rest[0]?.interaction ?? []),
      ...(body.rest[0]?.resource ?? []).flatMap((r) => r.interaction ?? []),
    ].map((i) => i.code);
    expect(codes).toContain('transaction');
    expect(codes.filter((c) => c.startsWith('history'))).toEqual([]);
  });

  it('the three servers are distinct databases', async () => {
    const id = `wiring-${randomUUID()}`;
    expect((await call('PUT', `${urls.localA}/Patient/${id}`, patient(id, 'Only-on-a'))).status).toBe(201);
    expect((await call('GET', `${urls.localA}/Patient/${id}`)).status).toBe(200);
    expect((await call('GET', `${urls.localB}/Patient/${id}`)).status).toBe(404);
    expect((await call('GET', `${urls.global}/Patient/${id}`)).status).toBe(404);
  });
});

describe('local server: client ids and history', () => {
  it('create, update and delete via PUT/DELETE all show in Patient/_history?_since, the delete without a resource', async () => {
    const id = `smoke-${randomUUID()}`;
    const before = new Date(Date.now() - 2000).toISOString();

    const created = await call<Patient>('PUT', `${urls.localA}/Patient/${id}`, patient(id, 'First'));
    expect(created.status).toBe(201);
    expect(created.body.meta?.versionId).toBe('1');
    const updated = await call<Patient>('PUT', `${urls.localA}/Patient/${id}`, patient(id, 'Second'));
    expect(updated.status).toBe(200);
    expect(updated.body.meta?.versionId).toBe('2');
    expect((await call('DELETE', `${urls.localA}/Patient/${id}`)).status).toBe(200);
    expect((await call('GET', `${urls.localA}/Patient/${id}`)).status).toBe(410);

    const history = await allEntries(`${urls.localA}/Patient/_history?_since=${encodeURIComponent(before)}`);
    const ours = history.filter((e) => e.request?.url?.startsWith(`Patient/${id}/`));
    expect(ours.map((e) => e.request?.method)).toEqual(['DELETE', 'PUT', 'POST']);
    expect(ours.map((e) => e.request?.url)).toEqual([3, 2, 1].map((v) => `Patient/${id}/_history/${v}`));
    expect(ours[0]?.resource).toBeUndefined();
    expect((ours[1]?.resource as Patient).name?.[0]?.family).toBe('Second');
    expect((ours[2]?.resource as Patient).name?.[0]?.family).toBe('First');
  });

  it('system-level _history with _since lists the versions too', async () => {
    const id = `smoke-sys-${randomUUID()}`;
    const before = new Date(Date.now() - 2000).toISOString();
    expect((await call('PUT', `${urls.localB}/Patient/${id}`, patient(id, 'Sys'))).status).toBe(201);
    const history = await allEntries(`${urls.localB}/_history?_since=${encodeURIComponent(before)}`);
    expect(history.map((e) => e.request?.url)).toContain(`Patient/${id}/_history/1`);
  });

  it('accepts a purely numeric client id and a UUID id via PUT', async () => {
    const numeric = `${Date.now()}${Math.floor(Math.random() * 1000)}`;
    const uuid = randomUUID();
    for (const id of [numeric, uuid]) {
      const put = await call<Patient>('PUT', `${urls.localA}/Patient/${id}`, patient(id, 'Ids'));
      expect(put.status).toBe(201);
      const read = await call<Patient>('GET', `${urls.localA}/Patient/${id}`);
      expect(read.status).toBe(200);
      expect(read.body.id).toBe(id);
    }
  });

  it('serves token searches with a raw "|" and pages search results via _getpages', async () => {
    const system = `urn:test:${randomUUID()}`;
    for (const value of ['p1', 'p2', 'p3']) {
      const id = `page-${randomUUID()}`;
      const body: Patient = { ...patient(id, 'Paged'), identifier: [{ system, value }] };
      expect((await call('PUT', `${urls.localB}/Patient/${id}`, body)).status).toBe(201);
    }
    const exact = await call<Bundle>('GET', `${urls.localB}/Patient?identifier=${system}|p2`);
    expect(exact.status).toBe(200);
    expect(exact.body.entry).toHaveLength(1);

    const first = await call<Bundle>('GET', `${urls.localB}/Patient?identifier=${system}|&_count=1`);
    const next = first.body.link?.find((l) => l.relation === 'next')?.url;
    expect(next).toContain('_getpages=');
    expect(await allEntries(`${urls.localB}/Patient?identifier=${system}|&_count=1`)).toHaveLength(3);
  });
});

describe('referential integrity', () => {
  it('refuses a write that references a missing resource but allows deleting a referenced one', async () => {
    const patientId = `ri-${randomUUID()}`;
    const obs = (subject: string): Observation => ({
      resourceType: 'Observation',
      id: `ri-${randomUUID()}`,
      status: 'final',
      code: { text: 'integrity' },
      subject: { reference: subject },
    });
    const dangling = obs(`Patient/missing-${randomUUID()}`);
    expect((await call('PUT', `${urls.localA}/Observation/${dangling.id}`, dangling)).status).toBeGreaterThanOrEqual(
      400,
    );

    expect((await call('PUT', `${urls.localA}/Patient/${patientId}`, patient(patientId, 'Ri'))).status).toBe(201);
    const linked = obs(`Patient/${patientId}`);
    expect((await call('PUT', `${urls.localA}/Observation/${linked.id}`, linked)).status).toBe(201);
    // Sync applies deletes per resource type, so the Patient may go before its Observations.
    expect((await call('DELETE', `${urls.localA}/Patient/${patientId}`)).status).toBe(200);
    expect((await call('GET', `${urls.localA}/Observation/${linked.id}`)).status).toBe(200);
  });
});

describe('global server: atomic transactions', () => {
  function validEntries(): { entries: BundleEntry[]; ids: string[] } {
    const patientId = `tx-${randomUUID()}`;
    const obsId = `tx-${randomUUID()}`;
    const obs: Observation = {
      resourceType: 'Observation',
      id: obsId,
      status: 'final',
      code: { text: 'smoke' },
      subject: { reference: `Patient/${patientId}` },
    };
    return { entries: [putEntry(patient(patientId, 'Tx')), putEntry(obs)], ids: [patientId, obsId] };
  }

  it('stores every entry of a valid bundle of client-id PUTs', async () => {
    const { entries, ids } = validEntries();
    const res = await call<Bundle>('POST', urls.global, transaction(entries));
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('transaction-response');
    expect(res.body.entry?.map((e) => e.response?.status)).toEqual(['201 Created', '201 Created']);
    expect((await call('GET', `${urls.global}/Patient/${ids[0]}`)).status).toBe(200);
    expect((await call('GET', `${urls.global}/Observation/${ids[1]}`)).status).toBe(200);
  });

  const invalidEntries: Record<string, () => Promise<BundleEntry>> = {
    'a reference to a missing resource': () => {
      const id = `tx-bad-${randomUUID()}`;
      const dangling: Observation = {
        resourceType: 'Observation',
        id,
        status: 'final',
        code: { text: 'dangling' },
        subject: { reference: `Patient/missing-${randomUUID()}` },
      };
      return Promise.resolve(putEntry(dangling));
    },
    'a version precondition (If-Match) that does not hold': async () => {
      const id = `tx-stale-${randomUUID()}`;
      // The precondition only applies to an existing resource (PUT of a new id creates it).
      expect((await call('PUT', `${urls.global}/Patient/${id}`, patient(id, 'Existing'))).status).toBe(201);
      return { ...putEntry(patient(id, 'Stale')), request: { method: 'PUT', url: `Patient/${id}`, ifMatch: 'W/"7"' } };
    },
  };

  for (const [what, invalid] of Object.entries(invalidEntries)) {
    it(`rejects the whole bundle and stores nothing when one entry has ${what}`, async () => {
      const { entries, ids } = validEntries();
      const res = await call<{ resourceType: string }>('POST', urls.global, transaction([...entries, await invalid()]));
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect((await call('GET', `${urls.global}/Patient/${ids[0]}`)).status).toBe(404);
      expect((await call('GET', `${urls.global}/Observation/${ids[1]}`)).status).toBe(404);
    });
  }
});
