/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-return -- assertions walk untyped FHIR JSON */
/**
 * References and ids in every form are rewritten through one keyed function, so the graph
 * resolves after de-identification, across batches, and deletions can be mapped with
 * `pseudonymousId`.
 */
import { createHmac } from 'node:crypto';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { PSEUDONYM_PATTERN } from '../../src/anonymizer/index.ts';
import { TEST_KEY, anonymizer, defaultRules, deidOk, fixture } from './helpers.ts';

type Json = Record<string, any>;

const a = anonymizer(defaultRules());
const pid = (type: string, id: string, instance = 'local-a'): string => a.pseudonymousId(instance, type, id);
const obsWith = (reference: string): Json => ({
  resourceType: 'Observation',
  id: 'o1',
  status: 'final',
  code: { coding: [{ code: 'x' }] },
  subject: { reference },
});
const subjectOf = (reference: string): string =>
  (deidOk(a, [obsWith(reference) as Resource])[0] as Json).subject.reference;

describe('Reference.reference', () => {
  it('relative, absolute and versioned references become relative pseudonymous ones', () => {
    const expected = `Patient/${pid('Patient', '123')}`;
    expect(subjectOf('Patient/123')).toBe(expected);
    expect(subjectOf('http://local-a:8091/fhir/Patient/123')).toBe(expected);
    expect(subjectOf('Patient/123/_history/4')).toBe(expected);
    expect(pid('Patient', '123')).toMatch(PSEUDONYM_PATTERN);
  });

  it('urn:uuid references use the type and id of the entry they name; unknown ones still become UUIDs', () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:11111111-1111-4111-8111-111111111111',
          resource: { resourceType: 'Patient', id: 'p9' },
          request: { method: 'PUT', url: 'Patient/p9' },
        },
        {
          fullUrl: 'urn:uuid:22222222-2222-4222-8222-222222222222',
          resource: obsWith('urn:uuid:11111111-1111-4111-8111-111111111111'),
          request: { method: 'POST', url: 'Observation' },
        },
      ],
    };
    const [out] = deidOk(a, [bundle as Resource]);
    const [p, o] = (out as Bundle).entry as [Json, Json];
    expect(p.fullUrl).toBe(`urn:uuid:${pid('Patient', 'p9')}`);
    expect(p.resource.id).toBe(pid('Patient', 'p9'));
    expect(p.request).toEqual({ method: 'PUT', url: `Patient/${pid('Patient', 'p9')}` });
    expect(o.resource.subject.reference).toBe(p.fullUrl);
    expect(o.request).toEqual({ method: 'POST', url: 'Observation' });
    expect(subjectOf('urn:uuid:33333333-3333-4333-8333-333333333333')).toMatch(/^urn:uuid:[0-9a-f-]{36}$/);
  });

  it('conditional references keep matching the pseudonymised identifiers', () => {
    const ref = subjectOf('Patient?identifier=http://hospital.org/mrn|12345');
    const [patient] = deidOk(a, [
      { resourceType: 'Patient', identifier: [{ system: 'http://hospital.org/mrn', value: '12345' }] },
    ]);
    // A site's own system is pseudonymised the same way in the Patient and in the reference.
    expect(patient?.identifier[0].system).toMatch(/^urn:uuid:[0-9a-f-]{36}$/);
    expect(ref).toBe(
      `Patient?identifier=${encodeURIComponent(patient?.identifier[0].system as string)}|${patient?.identifier[0].value as string}`,
    );
    expect(ref).not.toContain('12345');
    expect(ref).not.toContain('hospital.org');
  });

  it('fails the resource for conditional references it cannot rewrite (other search parameters)', () => {
    const { outcomes } = a.deidentify([obsWith('Patient?name=Smith') as Resource], { instanceId: 'local-a' });
    expect(outcomes[0]).toMatchObject({
      ok: false,
      code: 'DEID_ERR_REFERENCE',
      location: 'Observation.subject.reference',
      pseudonymousId: pid('Observation', 'o1'),
    });
    expect(JSON.stringify(outcomes)).not.toContain('Smith');
  });

  it('#contained references follow the contained ids', () => {
    const [out] = deidOk(a, [fixture('r4-examples/questionnaireresponse-example.json')]);
    const patient = (out?.contained as Json[]).find((c) => c.resourceType === 'Patient');
    expect(out?.subject.reference).toBe(`#${patient?.id as string}`);
    expect(patient?.id).toMatch(PSEUDONYM_PATTERN);
    expect(JSON.stringify(out)).not.toContain('patsub');
  });

  it('keeps references to exempt types (Organization, Location) as they are', () => {
    expect(subjectOf('Organization/org-1')).toBe('Organization/org-1');
    const [enc] = deidOk(a, [
      {
        resourceType: 'Encounter',
        status: 'finished',
        class: { code: 'AMB' },
        serviceProvider: { reference: 'Organization/7' },
        location: [{ location: { reference: 'Location/9' } }],
      },
    ]);
    expect(enc?.serviceProvider.reference).toBe('Organization/7');
    expect(enc?.location[0].location.reference).toBe('Location/9');
  });

  it('references to the same resource from two instances differ', () => {
    expect(pid('Patient', '1', 'local-a')).not.toBe(pid('Patient', '1', 'local-b'));
    const [x] = deidOk(a, [obsWith('Patient/1') as Resource], 'local-a');
    const [y] = deidOk(a, [obsWith('Patient/1') as Resource], 'local-b');
    expect(x?.subject.reference).not.toBe(y?.subject.reference);
  });
});

describe('the pseudonym function', () => {
  it('is UUID(HMAC-SHA256(key, instance|Type|id)) with the version-8 and variant bits set', () => {
    const digest = createHmac('sha256', Buffer.from(TEST_KEY.secret)).update('local-a|Patient|123').digest();
    const hex = digest.subarray(0, 16).toString('hex');
    const expected = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${((parseInt(hex.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${hex.slice(18, 20)}-${hex.slice(20, 32)}`;
    expect(pid('Patient', '123')).toBe(expected);
  });
});

describe('consistency across batches', () => {
  it('a Patient and a later batch referring to it get the same pseudonym', () => {
    const [p] = deidOk(a, [{ resourceType: 'Patient', id: 'abc' }]);
    const [o] = deidOk(a, [obsWith('Patient/abc') as Resource]);
    expect(o?.subject.reference).toBe(`Patient/${p?.id as string}`);
  });

  it('the transaction example keeps resolving; a search by name in it fails the bundle (closed)', () => {
    const bundle = fixture<Bundle>('r4-examples/bundle-transaction.json');
    const { outcomes } = a.deidentify([bundle], { instanceId: 'local-a' });
    expect(outcomes[0]).toMatchObject({
      ok: false,
      code: 'DEID_ERR_REFERENCE',
      location: 'Bundle.entry[8].request.url',
    });
    const withoutSearch = { ...bundle, entry: bundle.entry?.filter((e) => !e.request?.url.includes('name=')) };
    const [out] = deidOk(a, [withoutSearch]);
    const urls = ((out as Bundle).entry ?? []).map((e) => e.request?.url);
    expect(urls).toEqual([
      'Patient',
      'Patient',
      `Patient/${pid('Patient', '123')}`,
      expect.stringMatching(/^Patient\?identifier=urn%3Auuid%3A[0-9a-f-]{36}\|[0-9a-f-]{36}$/),
      `Patient/${pid('Patient', '123a')}`,
      `Patient/${pid('Patient', '234')}`,
      expect.stringMatching(/^Patient\?identifier=[0-9a-f-]{36}$/),
      'ValueSet/$lookup',
      `Patient/${pid('Patient', '12334')}`,
    ]);
    const fullUrls = ((out as Bundle).entry ?? []).map((e) => e.fullUrl);
    expect(fullUrls[2]).toBe(`urn:uuid:${pid('Patient', '123')}`);
    expect(JSON.stringify(out)).not.toContain('example.org/fhir/Patient');
    expect(JSON.stringify(out)).not.toContain('234234'); // ifNoneExist carried an identifier
  });
});
