/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-return -- assertions walk untyped FHIR JSON */
/**
 * Each de-identification method on small resources: what it writes, what it refuses, and the
 * security label it leaves.
 */
import type { Resource } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { PSEUDONYM_PATTERN } from '../../src/anonymizer/index.ts';
import { anonymizer, deidOk, rulesOf } from './helpers.ts';

type Json = Record<string, any>;

const REF_DATE = 'ages: { referenceDate: "2026-01-01" }';

function one(body: string, resource: Json, settings = ''): Json {
  return deidOk(rulesOf(body, settings), [resource as Resource])[0] as Json;
}

function labels(r: Json): string[] {
  return ((r.meta?.security as Json[] | undefined) ?? []).map((c) => c.code as string);
}

const patient = (extra: Json = {}): Json => ({
  resourceType: 'Patient',
  id: 'p1',
  name: [{ family: 'Conn', given: ['Liz', 'Ann'] }],
  telecom: [{ system: 'phone', value: '555-175-3568' }],
  birthDate: '1986-11-28',
  address: [{ line: ['391 Cassin Plaza'], city: 'Beverly', state: 'MA', postalCode: '01915', country: 'US' }],
  ...extra,
});

describe('keep and remove', () => {
  it('removes a whole element; an earlier keep saves a part of it', () => {
    const out = one(
      '  - name: given\n    select: { type: HumanName, element: given }\n    method: keep\n  - name: names\n    select: { type: HumanName }\n    method: remove\n',
      patient(),
    );
    expect(out.name).toEqual([{ given: ['Liz', 'Ann'] }]);
    expect(out.telecom).toEqual(patient().telecom);
    expect(labels(out)).toEqual(['REDACTED']);
  });

  it('removes a primitive together with its _element companion', () => {
    const out = one(
      '  - name: bd\n    select: { path: "$.birthDate", in: Patient }\n    method: remove\n',
      patient({
        _birthDate: {
          extension: [
            { url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime', valueDateTime: '1986-11-28T10:00:00Z' },
          ],
        },
      }),
    );
    expect(out.birthDate).toBeUndefined();
    expect(out._birthDate).toBeUndefined();
  });

  it('drops containers that end up empty (no {} or [] left behind)', () => {
    const out = one(
      '  - name: lines\n    select: { type: Address, element: line }\n    method: remove\n  - name: city\n    select: { type: Address, element: city }\n    method: remove\n',
      { resourceType: 'Patient', address: [{ line: ['x'], city: 'y' }] },
    );
    expect(out).not.toHaveProperty('address');
  });
});

describe('redact', () => {
  it('empties a primitive: the value goes, a data-absent-reason says why', () => {
    const out = one('  - name: bd\n    select: { path: "$.birthDate", in: Patient }\n    method: redact\n', patient());
    expect(out.birthDate).toBeUndefined();
    expect(out._birthDate).toEqual({
      extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'masked' }],
    });
  });

  it('empties a complex element', () => {
    const out = one('  - name: addr\n    select: { type: Address }\n    method: redact\n', patient());
    expect(out.address).toEqual([
      { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'masked' }] },
    ]);
  });

  it('keeps parts an earlier rule decides and marks the rest as withheld', () => {
    const out = one(
      '  - name: state\n    select: { type: Address, element: state }\n    method: keep\n  - name: addr\n    select: { type: Address }\n    method: redact\n',
      patient(),
    );
    expect(out.address).toEqual([
      {
        state: 'MA',
        extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'masked' }],
      },
    ]);
  });
});

describe('pseudonymize', () => {
  const rules = rulesOf(
    '  - name: ids\n    select: { type: Resource, element: id }\n    method: pseudonymize\n' +
      '  - name: refs\n    select: { type: Reference, element: reference }\n    method: pseudonymize\n' +
      '  - name: idv\n    select: { type: Identifier, element: value }\n    method: pseudonymize\n' +
      '  - name: other\n    select: { path: "$.valueString", in: Observation }\n    method: pseudonymize\n',
  );

  it('writes UUID-shaped ids equal to pseudonymousId, scoped by instance', () => {
    const a = anonymizer(rules);
    const [out] = deidOk(a, [patient() as Resource]);
    expect(out?.id).toMatch(PSEUDONYM_PATTERN);
    expect(out?.id).toBe(a.pseudonymousId('local-a', 'Patient', 'p1'));
    expect(a.pseudonymousId('local-b', 'Patient', 'p1')).not.toBe(out?.id);
    expect(a.pseudonymousId('local-a', 'Observation', 'p1')).not.toBe(out?.id);
    expect(labels(out as Json)).toEqual(['PSEUDED']);
  });

  it('scopes identifier values by their system', () => {
    const [out] = deidOk(rules, [
      {
        resourceType: 'Patient',
        identifier: [
          { system: 'urn:a', value: '42' },
          { system: 'urn:b', value: '42' },
          { system: 'urn:a', value: '42' },
        ],
      },
    ]);
    const [x, y, z] = (out?.identifier as Json[]).map((i) => i.value as string);
    expect(x).toMatch(PSEUDONYM_PATTERN);
    expect(x).not.toBe(y);
    expect(x).toBe(z);
  });

  it('pseudonymises any other text as a keyed UUID too', () => {
    const [out] = deidOk(rules, [
      { resourceType: 'Observation', status: 'final', code: { text: 'x' }, valueString: 'Jane' },
    ]);
    expect(out?.valueString).toMatch(PSEUDONYM_PATTERN);
  });

  it('keeps the ids of exempt types (the global server owns them)', () => {
    const a = anonymizer(rules);
    const [out] = deidOk(a, [{ resourceType: 'Organization', id: 'org-1', name: 'Clinic' }]);
    expect(out?.id).toBe('org-1');
    expect(a.pseudonymousId('local-a', 'Organization', 'org-1')).toBe('org-1');
  });
});

describe('dateShift', () => {
  const obs = (effective: string, issued = '2015-08-16T06:40:17.123Z'): Json => ({
    resourceType: 'Observation',
    status: 'final',
    code: { text: 'x' },
    subject: { reference: 'Patient/p1' },
    effectiveDateTime: effective,
    issued,
  });
  const body =
    '  - name: dt\n    select: { type: dateTime }\n    method: dateShift\n  - name: inst\n    select: { type: instant }\n    method: dateShift\n';

  it('moves dates by whole days, keeping time and zone by default; an instant stays an instant', () => {
    const out = one(body, obs('2015-08-16T06:40:17+02:00'));
    const shift = Date.parse(out.effectiveDateTime) - Date.parse('2015-08-16T06:40:17+02:00');
    expect(Math.abs(shift) % 86_400_000).toBe(0);
    expect(shift).not.toBe(0);
    expect(Math.abs(shift)).toBeLessThanOrEqual(30 * 86_400_000);
    expect(out.effectiveDateTime).toMatch(/^\d{4}-\d{2}-\d{2}T06:40:17\+02:00$/);
    expect(out.issued).toMatch(/^\d{4}-\d{2}-\d{2}T06:40:17\.123Z$/);
    expect(Date.parse(out.issued) - Date.parse('2015-08-16T06:40:17.123Z')).toBe(shift);
    expect(labels(out)).toEqual(['PSEUDED']);
  });

  it('zeroes the time of day with keepTime: false (zone kept, instants still valid)', () => {
    const out = one(body, obs('2015-08-16T06:40:17+02:00'), 'dateShift: { keepTime: false }');
    expect(out.effectiveDateTime).toMatch(/^\d{4}-\d{2}-\d{2}T00:00:00\+02:00$/);
    expect(out.issued).toMatch(/^\d{4}-\d{2}-\d{2}T00:00:00Z$/);
  });

  it('leaves a bare year, shifts a year-month as a month, and keeps a date a date', () => {
    expect(one(body, obs('2015')).effectiveDateTime).toBe('2015');
    expect(one(body, obs('2015-08')).effectiveDateTime).toMatch(/^2015-0[789]$/);
    const d = one('  - name: d\n    select: { type: date }\n    method: dateShift\n', {
      resourceType: 'Patient',
      id: 'p1',
      birthDate: '2000-02-29',
    });
    expect(d.birthDate).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(d.birthDate).not.toBe('2000-02-29');
  });

  it('uses one offset per patient: the Patient and every resource that refers to it', () => {
    const rules = rulesOf(body + '  - name: d\n    select: { type: date }\n    method: dateShift\n');
    const [p, o1, o2, other] = deidOk(rules, [
      { resourceType: 'Patient', id: 'p1', birthDate: '2000-01-01' },
      obs('2000-01-01T00:00:00Z'),
      {
        resourceType: 'Encounter',
        status: 'finished',
        class: { code: 'AMB' },
        subject: { reference: 'Patient/p1' },
        period: { start: '2000-01-01T00:00:00Z' },
      },
      {
        resourceType: 'Encounter',
        status: 'finished',
        class: { code: 'AMB' },
        subject: { reference: 'Patient/p2' },
        period: { start: '2000-01-01T00:00:00Z' },
      },
    ] as Resource[]);
    const day = (s: string): string => s.slice(0, 10);
    expect(day(o1?.effectiveDateTime)).toBe(p?.birthDate);
    expect(day(o2?.period.start)).toBe(p?.birthDate);
    // Another patient is (for this key) shifted differently.
    expect(day(other?.period.start)).not.toBe(p?.birthDate);
  });

  it('fails the resource (never passes it) on a malformed date, naming the element', () => {
    const { outcomes } = anonymizer(rulesOf(body)).deidentify([obs('16/08/2015')] as Resource[], {
      instanceId: 'local-a',
    });
    expect(outcomes[0]).toMatchObject({
      ok: false,
      code: 'DEID_ERR_INVALID_DATE',
      location: 'Observation.effectiveDateTime',
    });
  });
});

describe('generalize', () => {
  const zip =
    '  - name: zip\n    select: { type: Address, element: postalCode }\n    method: generalize\n    to: zip3\n';
  const withZip = (postalCode: string, country = 'US'): string =>
    one(zip, { resourceType: 'Patient', address: [{ postalCode, country }] }).address?.[0]?.postalCode;

  it('keeps three ZIP digits, 000 for the restricted 2020 Census prefixes, and drops the +4', () => {
    expect(withZip('01915')).toBe('019');
    expect(withZip('03601')).toBe('000');
    expect(withZip('20201')).toBe('000');
    expect(withZip('02108-1234')).toBe('021');
  });

  it('removes postal codes it cannot generalise (not US, not a ZIP)', () => {
    expect(withZip('H2X 1Y4', 'CA')).toBeUndefined();
    expect(withZip('ABCDE')).toBeUndefined();
  });

  const year = '  - name: by\n    select: { path: "$.birthDate", in: Patient }\n    method: generalize\n    to: year\n';

  it('keeps the birth year below 90', () => {
    const out = one(year, patient(), REF_DATE);
    expect(out.birthDate).toBe('1986');
    expect(labels(out)).toEqual(['ABSTRED']);
  });

  it('pools ages of 90 or more against the configured date', () => {
    expect(one(year, patient({ birthDate: '1936-01-01' }), REF_DATE).birthDate).toBe('1936');
    expect(one(year, patient({ birthDate: '1930-05-01' }), REF_DATE).birthDate).toBe('1936');
    expect(one(year, patient({ birthDate: '1880' }), REF_DATE).birthDate).toBe('1936');
  });

  it('computes ages against the resource’s own dates, never the clock', () => {
    // Died at 85: the year stays.
    expect(one(year, patient({ birthDate: '1925-01-01', deceasedDateTime: '2010-06-01' }), REF_DATE).birthDate).toBe(
      '1925',
    );
    // Died at 95: pooled relative to the year of death.
    expect(one(year, patient({ birthDate: '1915-03-01', deceasedDateTime: '2010-06-01' }), REF_DATE).birthDate).toBe(
      '1920',
    );
    // A record updated after the configured date is judged at its update.
    expect(
      one(year, patient({ birthDate: '1937-06-01', meta: { lastUpdated: '2028-01-01T00:00:00Z' } }), REF_DATE)
        .birthDate,
    ).toBe('1938');
    expect(one(year, patient({ birthDate: '1937-06-01' }), REF_DATE).birthDate).toBe('1937');
  });

  it('caps ages at the threshold with a >= comparator, keeping only Quantity fields', () => {
    const body = '  - name: age\n    select: { type: Age }\n    method: generalize\n    to: age\n';
    const cond = (onsetAge: Json): Json =>
      one(body, { resourceType: 'Condition', subject: { reference: 'Patient/p1' }, onsetAge }).onsetAge;
    expect(
      cond({
        value: 95,
        unit: 'a',
        system: 'http://unitsofmeasure.org',
        code: 'a',
        extension: [{ url: 'x', valueString: 'y' }],
      }),
    ).toEqual({ value: 90, comparator: '>=', unit: 'a', system: 'http://unitsofmeasure.org', code: 'a' });
    expect(cond({ value: 45, unit: 'a' })).toEqual({ value: 45, unit: 'a' });
  });
});

describe('substitute and mask', () => {
  it('substitutes a fixed text or object', () => {
    const out = one(
      '  - name: city\n    select: { type: Address, element: city }\n    method: substitute\n    value: "(city)"\n  - name: names\n    select: { type: HumanName }\n    method: substitute\n    value: { text: anonymous }\n',
      patient(),
    );
    expect(out.address[0].city).toBe('(city)');
    expect(out.name).toEqual([{ text: 'anonymous' }]);
    out.name[0].text = 'changed';
    expect(
      one(
        '  - name: names\n    select: { type: HumanName }\n    method: substitute\n    value: { text: anonymous }\n',
        patient(),
      ).name[0].text,
    ).toBe('anonymous');
  });

  it('refuses a substitute value of the wrong kind at load', () => {
    expect(() =>
      rulesOf('  - name: names\n    select: { type: HumanName }\n    method: substitute\n    value: x\n'),
    ).toThrow(expect.objectContaining({ code: 'CFG_ERR_RULES_INVALID' }));
  });

  it('masks characters, keeping the requested ends; too-short values are masked whole', () => {
    const body =
      '  - name: phone\n    select: { type: ContactPoint, element: value }\n    method: mask\n    keepLast: 2\n';
    const out = one(body, patient());
    expect(out.telecom[0].value).toBe('**********68');
    expect(labels(out)).toEqual(['MASKED']);
    expect(one(body, patient({ telecom: [{ system: 'phone', value: '12' }] })).telecom[0].value).toBe('**');
  });
});

describe('scrub', () => {
  const body =
    '  - name: text\n    select: { type: [string, markdown, xhtml] }\n    method: scrub\n  - name: data\n    select: { type: Attachment, element: data }\n    method: scrub\n';
  const rules = rulesOf(body);
  const note = (text: string, contentType = 'text/plain; charset=utf-8'): Json => ({
    resourceType: 'DocumentReference',
    status: 'current',
    subject: { reference: 'Patient/p1' },
    content: [{ attachment: { contentType, data: Buffer.from(text).toString('base64') } }],
  });

  it('removes the record’s own names, phones, address parts and dates from text', () => {
    const [, obs] = deidOk(rules, [
      patient() as Resource,
      {
        resourceType: 'Observation',
        status: 'final',
        subject: { reference: 'Patient/p1' },
        code: {
          text: 'Seen with Liz Conn at 391 Cassin Plaza, Beverly; call 555 175 3568 or liz@example.org on 2019-02-18, 92 years old',
        },
      },
    ]);
    expect(obs?.code.text).toBe(
      'Seen with [REDACTED] [REDACTED] at [REDACTED], [REDACTED]; call [REDACTED] or [REDACTED] on [REDACTED], [REDACTED] years old',
    );
  });

  it('scrubs narrative text but keeps the XHTML markup', () => {
    const [p] = deidOk(rules, [
      patient({
        text: {
          status: 'generated',
          div: '<div xmlns="http://www.w3.org/1999/xhtml"><p title="Liz">Liz Conn, born 1986-11-28</p></div>',
        },
      }) as Resource,
    ]);
    expect(p?.text.div).toBe(
      '<div xmlns="http://www.w3.org/1999/xhtml"><p title="[REDACTED]">[REDACTED] [REDACTED], born [REDACTED]</p></div>',
    );
  });

  it('scrubs text attachments and removes any other content type', () => {
    const [, doc, pdf] = deidOk(rules, [
      patient() as Resource,
      note('Liz Conn, 34 y/o, seen 02/18/2019') as Resource,
      note('%PDF Liz', 'application/pdf') as Resource,
    ]);
    expect(Buffer.from(doc?.content[0].attachment.data as string, 'base64').toString()).toBe(
      '[REDACTED] [REDACTED], 34 y/o, seen [REDACTED]',
    );
    expect(pdf?.content[0].attachment).toEqual({ contentType: 'application/pdf' });
    expect(labels(doc as Json)).toEqual(['REDACTED']);
  });

  it('removes the text when the record’s Patient is not in the input (it cannot be checked)', () => {
    const [doc] = deidOk(rules, [note('Liz Conn') as Resource]);
    expect(doc?.content[0].attachment.data).toBeUndefined();
  });
});
