/**
 * The sync engine against the real servers (global + local A + local B, real Redis, the real
 * anonymizer and rules): Synthea fixtures loaded into A and B reach the global server
 * de-identified and complete; updates, deletions and resurrections follow on the next pass;
 * an Organization changed on the global reaches both locals exactly once and never comes
 * back. Passes run through the whole stack: scheduler tick → bullmq → worker → engine.
 */
import type { Bundle, Encounter, Observation, Organization, Resource } from '@medplum/fhirtypes';
import { randomBytes } from 'node:crypto';
import { KEY_ID_TAG_SYSTEM, makeKey } from '../../src/anonymizer/index.ts';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fhirUrls } from '../servers/urls.ts';
import { openInstanceRegistry } from '../../src/instances/index.ts';
import type { InstancesConfig } from '../../src/instances/index.ts';
import {
  FROM_GLOBAL_TAG,
  FROM_LOCAL_TAG,
  createSyncControl,
  createSyncEngine,
  createSyncMetrics,
  initSyncQueue,
  initSyncWorker,
  plainCodec,
  startSyncScheduler,
} from '../../src/sync/index.ts';
import type { SyncQueue, SyncScheduler, SyncWorker } from '../../src/sync/index.ts';
import { stateId } from '../../src/sync/ids.ts';
import { createInstanceLocks } from '../../src/sync/queue/lock.ts';
import { createStatusStore } from '../../src/sync/queue/status.ts';
import type { StatusStore } from '../../src/sync/queue/status.ts';
import { collectReferences } from '../../src/sync/references.ts';
import {
  CLINICAL_TYPES,
  FIXTURES,
  fixture,
  getJson,
  loadBundle,
  phiStrings,
  primeCursors,
  storeAt,
  testAnonymizer,
  uniq,
  waitFor,
  writeInstances,
} from './live.ts';

const urls = fhirUrls();
const run = uniq();
const A = `sa-${run}`;
const B = `sb-${run}`;
const SEND_A = [...CLINICAL_TYPES, 'Organization'];
const SEND_B = [...CLINICAL_TYPES];
// A key id of this run only: its tag on every written resource lets the global be searched for
// exactly what this run wrote, independently of the ids the test computes.
const keyId = `live-${uniq()}`;
const { anonymizer, codec } = testAnonymizer(makeKey(keyId, randomBytes(32)));

let redis: Redis;
let queue: SyncQueue;
let worker: SyncWorker;
let scheduler: SyncScheduler;
let status: StatusStore;
const prefix = `fhir-sync-test-${run}`;
const failures: string[] = [];
const metrics = createSyncMetrics();
let registryConfig: () => Promise<InstancesConfig>;
const loadedA = new Map<string, string[]>();
const loadedB = new Map<string, string[]>();
const inputs: Bundle[] = [];

function merge(into: Map<string, string[]>, from: Map<string, string[]>): void {
  for (const [t, ids] of from) {
    into.set(t, [...(into.get(t) ?? []), ...ids]);
  }
}

/** Enqueues the instances' scheduled jobs and waits until the queue is empty. */
async function syncNow(...ids: string[]): Promise<void> {
  for (const id of ids) {
    await scheduler.tick(id);
  }
  await waitFor(
    async () => {
      const c = await queue.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      return Object.values(c).every((n) => n === 0);
    },
    180_000,
    'the queue to drain',
    200,
  );
  expect(failures).toEqual([]);
}

beforeAll(async () => {
  const { path } = await writeInstances(urls.global, [
    { id: A, fhirBase: urls.localA, sendTypes: SEND_A, receiveAdminTypes: ['Organization'], localOnlyAdmin: 'send' },
    { id: B, fhirBase: urls.localB, sendTypes: SEND_B, receiveAdminTypes: ['Organization', 'Location'] },
  ]);
  const registry = await openInstanceRegistry(path);
  registryConfig = () => registry.config();
  redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
  queue = initSyncQueue({ connection: redis, prefix, attempts: 3, backoffMs: 500 });
  status = createStatusStore(redis, prefix);
  const engine = createSyncEngine({
    config: () => registry.config(),
    anonymizer,
    codec,
    logger: pino({ level: 'silent' }),
    metrics,
    retry: { attempts: 4, baseDelayMs: 200, maxDelayMs: 2000 },
  });
  worker = initSyncWorker({
    connection: redis,
    prefix,
    engine,
    locks: createInstanceLocks(redis, { prefix, ttlMs: 10_000 }),
    status,
    logger: pino({ level: 'silent' }),
    concurrency: 2,
    busyDelayMs: 300,
  });
  worker.worker.on('failed', (job, err) => failures.push(`${job?.id}: ${err.message}`));
  scheduler = await startSyncScheduler({ queue, config: () => registry.config(), logger: pino({ level: 'silent' }) });

  // Only changes from now on: the shared locals and the global hold other tests' data.
  const since = new Date(Date.now() - 2000);
  const global = storeAt(urls.global);
  await primeCursors(global, codec, A, SEND_A, since);
  await primeCursors(global, codec, B, SEND_B, since);
  await primeCursors(storeAt(urls.localA), plainCodec, A, ['Organization'], since, 'reverse');
  await primeCursors(storeAt(urls.localB), plainCodec, B, ['Organization', 'Location'], since, 'reverse');

  for (const [path, url, into] of [
    [FIXTURES.luigi, urls.localA, loadedA],
    [FIXTURES.buster, urls.localA, loadedA],
    [FIXTURES.liz, urls.localB, loadedB],
    [FIXTURES.buster, urls.localB, loadedB],
  ] as const) {
    const bundle = await fixture(path);
    inputs.push(bundle);
    merge(into, await loadBundle(url, bundle));
  }
}, 120_000);

afterAll(async () => {
  await scheduler?.close();
  await worker?.close();
  await queue?.queue.obliterate({ force: true });
  await queue?.close();
  const keys = await redis?.keys(`${prefix}:*`);
  if (keys !== undefined && keys.length > 0) {
    await redis.del(...keys);
  }
  redis?.disconnect();
});

const pseudo = (instance: string, type: string, id: string): string => anonymizer.pseudonymousId(instance, type, id);
const onGlobal = (type: string, id: string): Promise<{ status: number; body: Resource }> =>
  getJson(`${urls.global}/${type}/${id}`);
const mine = (type: string, extra = ''): string =>
  `${urls.global}/${type}?_tag=${encodeURIComponent(`${KEY_ID_TAG_SYSTEM}|${keyId}`)}${extra}`;
/** How many resources of a type this run's key wrote to the global (an independent count). */
const countOnGlobal = async (type: string): Promise<number> =>
  (await getJson<Bundle>(mine(type, '&_summary=count'))).body.total ?? -1;
/** Ids of the resources of a type this run's key wrote to the global. */
const idsOnGlobal = async (type: string): Promise<Set<string>> =>
  new Set(
    ((await getJson<Bundle>(mine(type, '&_elements=id&_count=500'))).body.entry ?? []).map((e) => e.resource!.id!),
  );

describe('forward sync of two locals into the global server', () => {
  const fetched: Resource[] = [];

  it('writes the de-identified union: every loaded resource, once, under instance-scoped pseudonyms', async () => {
    await syncNow(A, B);
    for (const [instance, loaded] of [
      [A, loadedA],
      [B, loadedB],
    ] as const) {
      for (const type of CLINICAL_TYPES) {
        const ids = loaded.get(type) ?? [];
        for (const id of ids) {
          const got = await onGlobal(type, pseudo(instance, type, id));
          expect(got.status, `${instance} ${type}`).toBe(200);
          expect(got.body.meta?.tag).toContainEqual(expect.objectContaining(FROM_LOCAL_TAG));
          fetched.push(got.body);
        }
      }
    }
    // Counted on the global by this run's key-id tag, not from the ids looked up above: a
    // duplicate under another id, or a resource written twice, would show here.
    for (const type of CLINICAL_TYPES) {
      const loaded = (loadedA.get(type)?.length ?? 0) + (loadedB.get(type)?.length ?? 0);
      expect(await countOnGlobal(type), type).toBe(loaded);
    }
    expect(fetched.length).toBeGreaterThan(250);
    // Nothing under the local ids themselves.
    const somePatient = loadedA.get('Patient')![0]!;
    expect((await onGlobal('Patient', somePatient)).status).toBe(404);
    // Practitioners are not sent.
    expect((await onGlobal('Practitioner', pseudo(A, 'Practitioner', loadedA.get('Practitioner')![0]!))).status).toBe(
      404,
    );
    const st = await status.all();
    expect([...st.values()].every((s) => s.result === 'ok')).toBe(true);
  });

  it("never lets A's and B's ids collide, even for the same patient loaded at both", async () => {
    // Buster is loaded at both locals: the global holds his resources twice, under distinct ids.
    const busterAt = (loaded: Map<string, string[]>): number => loaded.get('Patient')?.length ?? 0;
    expect(busterAt(loadedA) + busterAt(loadedB)).toBe(4);
    const patients = await idsOnGlobal('Patient');
    expect(patients.size).toBe(4);
    expect(new Set(fetched.map((r) => `${r.resourceType}/${r.id}`)).size).toBe(fetched.length);
  });

  it('lets no PHI value of the inputs through', () => {
    const phi = [...new Set(inputs.flatMap(phiStrings))];
    expect(phi.length).toBeGreaterThan(10);
    const leaks: string[] = [];
    for (const r of fetched) {
      const text = JSON.stringify(r);
      for (const s of phi) {
        if (text.includes(s)) {
          leaks.push(`${r.resourceType}: a Patient value of length ${s.length}`);
        }
      }
    }
    expect(leaks).toEqual([]);
  });

  it('leaves every reference on the global server resolvable', async () => {
    const seen = new Map<string, number>();
    const unresolved: string[] = [];
    for (const r of fetched) {
      for (const ref of collectReferences(r)) {
        expect(ref.absolute).toBe(false);
        const k = `${ref.type}/${ref.id}`;
        if (!seen.has(k)) {
          seen.set(k, (await onGlobal(ref.type, ref.id)).status);
        }
        if (seen.get(k) !== 200) {
          unresolved.push(`${r.resourceType} -> ${ref.type}`);
        }
      }
    }
    expect(seen.size).toBeGreaterThan(20);
    expect(unresolved).toEqual([]);
    // A sends its local-only Organizations under instance-scoped ids; B masks them.
    const encA = fetched.find(
      (r) =>
        r.resourceType === 'Encounter' &&
        r.subject?.reference?.includes(pseudo(A, 'Patient', loadedA.get('Patient')![0]!)),
    ) as Encounter;
    expect(encA.serviceProvider?.reference).toBe(
      `Organization/${stateId('local-admin', A, 'Organization', loadedA.get('Organization')![0]!)}`,
    );
    const encB = fetched.find(
      (r) =>
        r.resourceType === 'Encounter' &&
        r.subject?.reference?.includes(pseudo(B, 'Patient', loadedB.get('Patient')![0]!)),
    ) as Encounter;
    expect(encB.serviceProvider?.reference).toBeUndefined();
    expect(encB.serviceProvider?.extension?.[0]?.valueCode).toBe('masked');
  });

  it('takes an update, a deletion and a resurrection on a local to the global on the next pass', async () => {
    const [updated, removed, revived] = loadedA.get('Observation')!.slice(0, 3) as [string, string, string];
    const local = (id: string): string => `${urls.localA}/Observation/${id}`;
    const before = (await getJson<Observation>(local(updated))).body;
    const changed: Observation = {
      ...before,
      status: 'amended',
      valueQuantity: { value: 4242, unit: 'mg', system: 'http://unitsofmeasure.org', code: 'mg' },
    };
    expect(
      (
        await fetch(local(updated), {
          method: 'PUT',
          headers: { 'content-type': 'application/fhir+json' },
          body: JSON.stringify(changed),
        })
      ).status,
    ).toBe(200);
    expect((await fetch(local(removed), { method: 'DELETE' })).status).toBeLessThan(300);
    const revivedBody = (await getJson<Observation>(local(revived))).body;
    expect((await fetch(local(revived), { method: 'DELETE' })).status).toBeLessThan(300);
    await syncNow(A);
    expect((await onGlobal('Observation', pseudo(A, 'Observation', revived))).status).toBe(410);
    expect(
      (
        await fetch(local(revived), {
          method: 'PUT',
          headers: { 'content-type': 'application/fhir+json' },
          body: JSON.stringify({ ...revivedBody, meta: undefined }),
        })
      ).status,
    ).toBeLessThan(300);
    await syncNow(A);
    const g = await onGlobal('Observation', pseudo(A, 'Observation', updated));
    expect((g.body as Observation).status).toBe('amended');
    expect((g.body as Observation).valueQuantity?.value).toBe(4242);
    expect((await onGlobal('Observation', pseudo(A, 'Observation', removed))).status).toBe(410);
    expect((await onGlobal('Observation', pseudo(A, 'Observation', revived))).status).toBe(200);
  });
});

describe('reporting', () => {
  it('counts passes in metrics, writes an AuditEvent per pass and shows status', async () => {
    const text = await metrics.registry.metrics();
    expect(text).toContain(
      `fhir_sync_passes_total{instance="${A}",resource_type="Patient",direction="forward",result="ok"}`,
    );
    expect(text).toMatch(
      new RegExp(`fhir_sync_lag_seconds\\{instance="${B}",resource_type="Observation",direction="forward"\\} \\d`),
    );
    expect(text).not.toContain('failed"}');

    const events = await getJson<Bundle>(
      `${urls.global}/AuditEvent?subtype=urn:fhir-sync:audit|sync.pass&_count=1000&_sort=-date`,
    );
    const mine = (events.body.entry ?? [])
      .map((e) => e.resource!)
      .filter((r) => JSON.stringify(r).includes(`"valueString":"${A}"`));
    expect(mine.length).toBeGreaterThanOrEqual(SEND_A.length);
    const phi = [...new Set(inputs.flatMap(phiStrings))];
    expect(mine.filter((r) => phi.some((p) => JSON.stringify(r).includes(p)))).toEqual([]);

    const control = createSyncControl({
      queue,
      config: registryConfig,
      globalStore: () => Promise.resolve(storeAt(urls.global)),
      status,
    });
    const rows = (await control.status()).filter((r) => r.instanceId === A || r.instanceId === B);
    expect(rows).toHaveLength(SEND_A.length + SEND_B.length);
    const patientA = rows.find((r) => r.instanceId === A && r.resourceType === 'Patient')!;
    expect(patientA).toMatchObject({ lastPassResult: 'ok', quarantineCount: 0 });
    expect(patientA.cursor).toMatch(/^s1\./);
    // Newest change on local A minus the cursor: about the feed's settle window once caught up.
    expect(patientA.lagSeconds).toBeGreaterThanOrEqual(0);
    expect(patientA.lagSeconds).toBeLessThan(120);
    expect(await control.ready()).toEqual({ redis: true, global: true });
  });
});

describe('reverse channel', () => {
  const orgId = `hq-${run}`;
  const orgUrl = `${urls.global}/Organization/${orgId}`;
  const versionOn = async (base: string): Promise<string | undefined> =>
    (await getJson<Organization>(`${base}/Organization/${orgId}`)).body?.meta?.versionId;

  it('pushes an Organization changed on the global to both locals exactly once, with no echo', async () => {
    const org: Organization = {
      resourceType: 'Organization',
      id: orgId,
      name: 'Headquarters clinic network',
      active: true,
    };
    expect(
      (
        await fetch(orgUrl, {
          method: 'PUT',
          headers: { 'content-type': 'application/fhir+json' },
          body: JSON.stringify(org),
        })
      ).status,
    ).toBe(201);
    await syncNow(A, B);
    for (const base of [urls.localA, urls.localB]) {
      const got = await getJson<Organization>(`${base}/Organization/${orgId}`);
      expect(got.status).toBe(200);
      expect(got.body.name).toBe('Headquarters clinic network');
      expect(got.body.meta?.tag).toContainEqual(expect.objectContaining(FROM_GLOBAL_TAG));
      expect(got.body.meta?.versionId).toBe('1');
    }
    // Again: nothing new anywhere (A also sends its own Organizations forward, but skips this one).
    await syncNow(A, B);
    expect(await versionOn(urls.localA)).toBe('1');
    expect(await versionOn(urls.localB)).toBe('1');
    expect(await versionOn(urls.global)).toBe('1');
    expect((await onGlobal('Organization', stateId('local-admin', A, 'Organization', orgId))).status).toBe(404);
  });

  it('carries a later change once, and local references to it keep the global id', async () => {
    const current = (await getJson<Organization>(orgUrl)).body;
    expect(
      (
        await fetch(orgUrl, {
          method: 'PUT',
          headers: { 'content-type': 'application/fhir+json' },
          body: JSON.stringify({ ...current, name: 'HQ network (renamed)' }),
        })
      ).status,
    ).toBe(200);
    // A new Encounter at A that points at the global-owned Organization (after it arrived).
    await syncNow(A, B);
    const patient = loadedA.get('Patient')![0]!;
    const enc: Encounter = {
      resourceType: 'Encounter',
      status: 'finished',
      class: { code: 'AMB' },
      subject: { reference: `Patient/${patient}` },
      serviceProvider: { reference: `Organization/${orgId}` },
    };
    const created = await fetch(`${urls.localA}/Encounter`, {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify(enc),
    });
    expect(created.status).toBe(201);
    const encId = /Encounter\/([^/]+)/.exec(created.headers.get('location') ?? '')![1]!;
    await syncNow(A, B);
    for (const base of [urls.localA, urls.localB]) {
      const got = await getJson<Organization>(`${base}/Organization/${orgId}`);
      expect(got.body.name).toBe('HQ network (renamed)');
      expect(got.body.meta?.versionId).toBe('2');
    }
    expect(await versionOn(urls.global)).toBe('2');
    const onG = (await onGlobal('Encounter', pseudo(A, 'Encounter', encId))).body as Encounter;
    expect(onG.serviceProvider).toEqual({ reference: `Organization/${orgId}` });
  });
});
