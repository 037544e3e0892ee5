/**
 * The people context of a batch (src/sync/people.ts): which Patients and RelatedPersons a pass
 * reads from the local so that a type sent on its own is scrubbed against its people's names.
 */
import type { Communication, Resource } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { createAnonymizer, loadRulesFile, makeKey } from '../../src/anonymizer/index.ts';
import { parseInstances } from '../../src/instances/index.ts';
import { forwardChannel, plainCodec } from '../../src/sync/index.ts';
import { peopleContext } from '../../src/sync/people.ts';
import { HOSTILE, countLeaks } from '../anonymizer/hostile-corpus.ts';
import { arrayFeed, fakeStore } from './fakes.ts';

const patient = (id: string): Resource => ({ resourceType: 'Patient', id, name: [{ family: `F${id}` }] });
const relative = (id: string, patientId: string): Resource => ({
  resourceType: 'RelatedPerson',
  id,
  patient: { reference: `Patient/${patientId}` },
});

function local(...resources: Resource[]): ReturnType<typeof fakeStore> {
  const store = fakeStore('http://local/fhir');
  resources.forEach((r) => store.put(r));
  return store;
}

const keys = (rs: readonly Resource[]): string[] => rs.map((r) => `${r.resourceType}/${r.id}`).sort();

describe('people context of a batch', () => {
  it("reads the referenced Patient and that Patient's relatives", async () => {
    const store = local(patient('p1'), patient('p2'), relative('r1', 'p1'), relative('r2', 'p2'));
    const batch: Resource[] = [
      { resourceType: 'Observation', id: 'o1', status: 'final', code: {}, subject: { reference: 'Patient/p1' } },
    ];
    expect(keys(await peopleContext(batch, store))).toEqual(['Patient/p1', 'RelatedPerson/r1']);
  });

  it("follows a relative to its Patient (a letter to a daughter names the mother's record)", async () => {
    const store = local(patient('p1'), relative('r1', 'p1'), relative('r9', 'p1'));
    const batch: Resource[] = [
      { resourceType: 'Communication', id: 'c1', status: 'completed', recipient: [{ reference: 'RelatedPerson/r1' }] },
    ];
    expect(keys(await peopleContext(batch, store))).toEqual(['Patient/p1', 'RelatedPerson/r1', 'RelatedPerson/r9']);
  });

  it('takes one hop from a resource that names no person (a Binary to its DocumentReference)', async () => {
    const doc: Resource = {
      resourceType: 'DocumentReference',
      id: 'd1',
      status: 'current',
      content: [],
      subject: { reference: 'Patient/p1' },
    };
    const store = local(patient('p1'), doc);
    const batch: Resource[] = [
      {
        resourceType: 'Binary',
        id: 'b1',
        contentType: 'text/plain',
        securityContext: { reference: 'DocumentReference/d1' },
      },
    ];
    expect(keys(await peopleContext(batch, store))).toEqual(['Patient/p1']);
    // A resource that already names its person is not followed further.
    const direct: Resource[] = [
      {
        resourceType: 'DocumentReference',
        id: 'd2',
        status: 'current',
        content: [],
        subject: { reference: 'Patient/p1' },
        relatesTo: [{ code: 'appends', target: { reference: 'DocumentReference/d1' } }],
      },
    ];
    store.searches.length = 0;
    await peopleContext(direct, store);
    expect(store.searches.map((s) => s.type)).not.toContain('DocumentReference');
  });

  it('leaves out people already in the batch and reads nothing for an empty reference set', async () => {
    const store = local(patient('p1'));
    expect(await peopleContext([patient('p1')], store)).toEqual([]);
    const lone: Resource[] = [{ resourceType: 'Organization', id: 'o1', name: 'Clinic' }];
    store.searches.length = 0;
    expect(await peopleContext(lone, store)).toEqual([]);
    expect(store.searches.filter((s) => s.type !== 'RelatedPerson')).toEqual([]);
  });

  it('reads in one search per type and chunk, and stops at the cap', async () => {
    const ids = Array.from({ length: 120 }, (_, i) => `p${i}`);
    const store = local(...ids.map(patient));
    const batch: Resource[] = ids.map((id) => ({
      resourceType: 'Observation',
      id: `o-${id}`,
      status: 'final',
      code: {},
      subject: { reference: `Patient/${id}` },
    }));
    const all = await peopleContext(batch, store, { idsPerSearch: 50 });
    expect(all).toHaveLength(120);
    expect(store.searches.filter((s) => s.type === 'Patient')).toHaveLength(3);
    store.searches.length = 0;
    const capped = await peopleContext(batch, store, { idsPerSearch: 50, maxResources: 70 });
    expect(capped).toHaveLength(70);
    expect(store.searches.filter((s) => s.type === 'Patient')).toHaveLength(2);
  });
});

describe('forward channel with the shipped profile', () => {
  const rules = loadRulesFile('config/anonymization.yaml');
  const anonymizer = createAnonymizer({ rules, key: makeKey('people-test', Buffer.alloc(32, 7)) });
  const config = parseInstances(
    [
      'version: 1',
      'global: { baseUrl: http://global/ }',
      'instances:',
      '  - id: a',
      '    baseUrl: http://local-a/',
      '    sendTypes: [Patient, RelatedPerson, Communication, Media, DocumentReference, Binary]',
      '',
    ].join('\n'),
    { source: 't' },
  ).config;
  const byId = (id: string): Resource => HOSTILE.find((r) => r.id === id)!;

  it('scrubs each type sent on its own against the people it names, one hop away too', async () => {
    const store = local(
      ...HOSTILE.filter((r) => ['Patient', 'RelatedPerson', 'DocumentReference'].includes(r.resourceType)),
    );
    const out: Resource[] = [];
    for (const id of ['hx-comm', 'hx-media', 'hx-doc-letter', 'hx-bin']) {
      const r = byId(id);
      const channel = forwardChannel({
        instance: config.instances[0]!,
        global: config.global,
        resourceType: r.resourceType,
        feed: arrayFeed([]),
        anonymizer,
        local: store,
        globalStore: fakeStore(),
        codec: plainCodec,
      });
      const [outcome] = await channel.transform([r]);
      expect(outcome?.ok, id).toBe(true);
      out.push((outcome as { resource: Resource }).resource);
    }
    expect(countLeaks(out).found).toEqual([]);
    // What is left is still a letter: scrubbed, not removed.
    const comm = out[0] as Communication;
    expect(comm.payload?.[0]?.contentString).toMatch(/^Dear .+ your mother .+ is stable/);
  });
});
