import type { Observation } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { DATA_ABSENT_REASON, collectReferences, parseReference, rewriteReferences } from '../../src/sync/references.ts';

const obs: Observation = {
  resourceType: 'Observation',
  id: 'o1',
  status: 'final',
  code: { text: 'x' },
  subject: { reference: 'Patient/p1', display: 'Jane Doe' },
  performer: [{ reference: 'Practitioner/dr1', display: 'Dr Who' }, { reference: 'Organization/org1' }],
  hasMember: [{ reference: 'Observation/o2/_history/3' }],
  specimen: { reference: '#spec' },
  derivedFrom: [{ reference: 'http://other.example/fhir/Observation/o9' }, { reference: 'urn:uuid:1234' }],
  contained: [{ resourceType: 'Specimen', id: 'spec', subject: { reference: 'Patient/p1' } }],
};

describe('references', () => {
  it('parses relative, versioned and absolute references', () => {
    expect(parseReference('Patient/p1')).toEqual({ type: 'Patient', id: 'p1', absolute: false });
    expect(parseReference('Observation/o2/_history/3')).toEqual({ type: 'Observation', id: 'o2', absolute: false });
    expect(parseReference('http://x/fhir/Patient/7')).toEqual({ type: 'Patient', id: '7', absolute: true });
    expect(parseReference('#c')).toBeUndefined();
    expect(parseReference('urn:uuid:abc')).toBeUndefined();
    expect(parseReference('patient/1')).toBeUndefined();
  });

  it('collects the literal references, contained resources included', () => {
    expect(collectReferences(obs).map((r) => `${r.type}/${r.id}${r.absolute ? '@' : ''}`)).toEqual([
      'Patient/p1',
      'Practitioner/dr1',
      'Organization/org1',
      'Observation/o2',
      'Observation/o9@',
      'Patient/p1',
    ]);
  });

  it('rewrites, masks and drops by decision without touching the input', () => {
    const before = JSON.stringify(obs);
    const { resource, counts } = rewriteReferences(obs, (parsed) => {
      if (parsed === undefined || parsed.absolute) {
        return { action: 'mask' };
      }
      switch (parsed.type) {
        case 'Patient':
          return { action: 'rewrite', reference: 'Patient/P' };
        case 'Practitioner':
          return { action: 'drop' };
        case 'Organization':
          return { action: 'keep' };
        default:
          return { action: 'mask' };
      }
    });
    expect(JSON.stringify(obs)).toBe(before);
    expect(counts).toEqual({ kept: 1, rewritten: 2, masked: 3, dropped: 1 });
    expect(resource.subject).toEqual({ reference: 'Patient/P', display: 'Jane Doe' });
    expect(resource.performer).toEqual([{ reference: 'Organization/org1' }]);
    expect(resource.hasMember).toEqual([
      { type: 'Observation', extension: [{ url: DATA_ABSENT_REASON, valueCode: 'masked' }] },
    ]);
    expect(resource.derivedFrom).toEqual([
      { type: 'Observation', extension: [{ url: DATA_ABSENT_REASON, valueCode: 'masked' }] },
      { extension: [{ url: DATA_ABSENT_REASON, valueCode: 'masked' }] },
    ]);
    expect(resource.specimen).toEqual({ reference: '#spec' });
    expect((resource.contained?.[0] as { subject?: unknown }).subject).toEqual({ reference: 'Patient/P' });
  });

  it('drops elements and arrays emptied by a drop', () => {
    const enc = {
      resourceType: 'Encounter' as const,
      status: 'finished' as const,
      class: { code: 'AMB' },
      participant: [{ individual: { reference: 'Practitioner/1' } }],
      serviceProvider: { reference: 'Organization/1' },
    };
    const { resource } = rewriteReferences(enc, () => ({ action: 'drop' }));
    expect(resource).toEqual({ resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' } });
  });
});
