/* eslint-disable @typescript-eslint/no-explicit-any -- assertions walk untyped FHIR JSON */
/**
 * Engine behaviour around the methods: fail closed per resource, the report (counts and paths,
 * never values), marking, input checks.
 */
import type { Resource } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import {
  KEY_ID_TAG_SYSTEM,
  RULES_VERSION_TAG_SYSTEM,
  SECURITY_LABEL_SYSTEM,
  createAnonymizer,
} from '../../src/anonymizer/index.ts';
import { OTHER_KEY, TEST_KEY, anonymizer, defaultRules, deidOk, rulesOf } from './helpers.ts';

type Json = Record<string, any>;

const rules = defaultRules();
const patient: Json = {
  resourceType: 'Patient',
  id: 'p1',
  name: [{ family: 'Conn', given: ['Liz'] }],
  gender: 'female',
  birthDate: '1986-11-28',
};

describe('fail closed', () => {
  it('fails only the bad resource, keeps input order, and never returns its content', () => {
    const bad = {
      resourceType: 'Observation',
      id: 'o-bad',
      status: 'final',
      code: { text: 'x' },
      valueQuantity: 'Liz Conn',
    };
    const { outcomes } = anonymizer(rules).deidentify([patient, bad, patient] as Resource[], { instanceId: 'local-a' });
    expect(outcomes.map((o) => o.ok)).toEqual([true, false, true]);
    const failed = outcomes[1] as Extract<(typeof outcomes)[number], { ok: false }>;
    expect(failed).toEqual({
      ok: false,
      sourceType: 'Observation',
      pseudonymousId: anonymizer(rules).pseudonymousId('local-a', 'Observation', 'o-bad'),
      code: 'DEID_ERR_INVALID_VALUE',
      location: 'Observation.valueQuantity',
    });
    expect(JSON.stringify(failed)).not.toContain('Liz');
  });

  it('rejects what is not a resource, and unknown resource types', () => {
    const { outcomes } = anonymizer(rules).deidentify(
      [{ foo: 1 } as unknown as Resource, { resourceType: 'Patientt' } as unknown as Resource],
      { instanceId: 'local-a' },
    );
    expect(outcomes.map((o) => (o.ok ? 'ok' : o.code))).toEqual([
      'DEID_ERR_NOT_A_RESOURCE',
      'DEID_ERR_UNKNOWN_RESOURCE_TYPE',
    ]);
    expect(outcomes[0]).toMatchObject({ pseudonymousId: '' });
  });

  it('rejects values of the wrong JSON shape (object for a primitive, single for a list)', () => {
    const a = anonymizer(rules);
    const codes = [
      { ...patient, gender: { x: 1 } },
      { ...patient, name: { family: 'x' } },
      { ...patient, birthDate: ['1990'] },
    ].map((r) => {
      const o = a.deidentify([r as unknown as Resource], { instanceId: 'local-a' }).outcomes[0];
      return o?.ok ? 'ok' : `${o?.code}@${o?.location}`;
    });
    expect(codes).toEqual([
      'DEID_ERR_INVALID_VALUE@Patient.gender',
      'DEID_ERR_INVALID_VALUE@Patient.name',
      'DEID_ERR_INVALID_VALUE@Patient.birthDate',
    ]);
  });

  it('fails a failure of a nested resource at its element, failing the container', () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [{ resource: patient }, { resource: { ...patient, extra: 1 } }],
    };
    const { outcomes } = anonymizer(rules).deidentify([bundle as Resource], { instanceId: 'local-a' });
    expect(outcomes[0]).toMatchObject({
      ok: false,
      code: 'DEID_ERR_UNKNOWN_ELEMENT',
      location: 'Bundle.entry[1].resource.extra',
    });
  });

  it('fails a resource nested past the cap with a code, before anything recursive walks it', () => {
    // 10,000 levels of contained resources (or extensions) used to exhaust the stack: a thrown
    // RangeError that failed the whole batch, or DEID_ERR_INTERNAL.
    let contained: Json = { resourceType: 'Observation', id: 'c', status: 'final', code: { text: 'x' } };
    let extension: Json = { url: 'http://example.org/x', valueString: 'Liz Conn' };
    for (let i = 0; i < 10_000; i++) {
      contained = {
        resourceType: 'Observation',
        id: `c${i}`,
        status: 'final',
        code: { text: 'x' },
        contained: [contained],
      };
      extension = { url: 'http://example.org/x', extension: [extension] };
    }
    const deepExt = { ...patient, id: 'p-deep', extension: [extension] };
    const { outcomes, report } = anonymizer(rules).deidentify([patient, contained, deepExt] as Resource[], {
      instanceId: 'local-a',
      related: [deepExt as Resource],
    });
    expect(outcomes.map((o) => (o.ok ? 'ok' : `${o.code}@${o.location}`))).toEqual([
      'ok',
      'DEID_ERR_TOO_DEEP@Observation',
      'DEID_ERR_TOO_DEEP@Patient',
    ]);
    expect(outcomes[2]).toMatchObject({
      pseudonymousId: anonymizer(rules).pseudonymousId('local-a', 'Patient', 'p-deep'),
    });
    expect(JSON.stringify(outcomes.slice(1))).not.toContain('Liz');
    expect(report.failed).toMatchObject({ DEID_ERR_TOO_DEEP: 2 });
  });

  it('requires an instance id', () => {
    expect(() => anonymizer(rules).deidentify([patient as Resource], { instanceId: '' })).toThrow(
      expect.objectContaining({ code: 'DEID_ERR_INTERNAL' }),
    );
  });
});

describe('shipped profile details', () => {
  it('drops the birthTime extension that would repeat the full birth date', () => {
    const withTime = {
      ...patient,
      _birthDate: {
        extension: [
          {
            url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime',
            valueDateTime: '1986-11-28T10:15:00+01:00',
          },
        ],
      },
    };
    const [out] = deidOk(rules, [withTime as unknown as Resource]);
    expect(out?.birthDate).toBe('1986');
    expect(out).not.toHaveProperty('_birthDate');
  });
});

describe('report', () => {
  it('counts decided elements per rule and names the paths, never values', () => {
    const { report } = anonymizer(rules).deidentify([patient, { ...patient, id: 'p2' }] as Resource[], {
      instanceId: 'local-a',
    });
    expect(report.rules).toMatchObject({ 'person-names': 2, 'resource-id': 2, 'birth-date-year': 2 });
    expect(report.paths).toMatchObject({
      'Patient.name': 'remove',
      'Patient.id': 'pseudonymize',
      'Patient.birthDate': 'generalize',
    });
    const text = JSON.stringify(report);
    for (const value of ['Conn', 'Liz', '1986', 'p1']) {
      expect(text).not.toContain(value);
    }
  });

  it('leaves the firings of a failed resource out', () => {
    const { report } = anonymizer(rules).deidentify([{ ...patient, unknown: 1 }] as unknown as Resource[], {
      instanceId: 'local-a',
    });
    expect(report.rules).toEqual({});
    expect(report.failed).toEqual({ DEID_ERR_UNKNOWN_ELEMENT: 1 });
  });
});

describe('marking', () => {
  it('labels what was done and tags the rules version and key id', () => {
    const a = createAnonymizer({ rules, key: TEST_KEY });
    const [out] = deidOk(a, [patient as Resource]);
    expect(out?.meta.security).toEqual([
      { system: SECURITY_LABEL_SYSTEM, code: 'ABSTRED', display: 'abstracted' },
      { system: SECURITY_LABEL_SYSTEM, code: 'PSEUDED', display: 'pseudonymized' },
      { system: SECURITY_LABEL_SYSTEM, code: 'REDACTED', display: 'redacted' },
    ]);
    expect(out?.meta.tag).toEqual([
      { system: RULES_VERSION_TAG_SYSTEM, code: rules.version },
      { system: KEY_ID_TAG_SYSTEM, code: 'test-key' },
    ]);
    expect(Object.keys(out as Json).slice(0, 3)).toEqual(['resourceType', 'id', 'meta']);
    expect(a.rulesVersion).toBe(rules.version);
    expect(a.keyId).toBe('test-key');
  });

  it('replaces its own tags rather than adding them twice (re-running on output)', () => {
    const a = createAnonymizer({ rules, key: TEST_KEY });
    const [once] = deidOk(a, [patient as Resource]);
    const [twice] = deidOk(a, [once as Resource]);
    expect(twice?.meta.tag).toHaveLength(2);
    expect((twice?.meta.security as Json[]).filter((c) => c.code === 'PSEUDED')).toHaveLength(1);
  });

  it('can be switched off', () => {
    const quiet = rulesOf(
      '  - name: names\n    select: { type: HumanName }\n    method: remove\n',
      'marking: { securityLabels: false, tags: false }',
    );
    expect(deidOk(quiet, [patient as Resource])[0]).not.toHaveProperty('meta');
  });
});

describe('keys', () => {
  it('another key gives other pseudonyms and other date offsets', () => {
    const obs = {
      resourceType: 'Observation',
      id: 'o',
      status: 'final',
      code: { text: 'x' },
      subject: { reference: 'Patient/p1' },
      effectiveDateTime: '2020-01-01T00:00:00Z',
    };
    const [x] = deidOk(createAnonymizer({ rules, key: TEST_KEY }), [obs as Resource]);
    const [y] = deidOk(createAnonymizer({ rules, key: OTHER_KEY }), [obs as Resource]);
    expect(x?.id).not.toBe(y?.id);
    expect(x?.subject.reference).not.toBe(y?.subject.reference);
  });

  it('refuses a short key', () => {
    expect(() => createAnonymizer({ rules, key: { id: 'k', secret: new Uint8Array(16) } })).toThrow(
      expect.objectContaining({ code: 'DEID_ERR_KEY_INVALID' }),
    );
  });
});
