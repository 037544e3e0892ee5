/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-return -- assertions walk untyped FHIR JSON */
/**
 * Every selector kind and the decision order: data types anywhere (extensions, contained
 * resources, nested questionnaire items), element paths, `where`, `in`, JSONPaths, the
 * QuestionnaireResponse selectors, first match wins, allow-list mode, unknown elements.
 */
import type { Questionnaire, Resource } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { createAnonymizer } from '../../src/anonymizer/index.ts';
import { TEST_KEY, anonymizer, deidOk, fixture, rulesOf } from './helpers.ts';

type Json = Record<string, any>;

const one = (body: string, resource: Json, settings = ''): Json =>
  deidOk(rulesOf(body, settings), [resource as Resource])[0] as Json;
const REMOVE_NAMES = '  - name: names\n    select: { type: HumanName }\n    method: remove\n';

describe('data-type selectors match anywhere', () => {
  it('inside extensions, nested extensions and primitive companions', () => {
    const out = one(REMOVE_NAMES, {
      resourceType: 'Patient',
      extension: [
        { url: 'urn:a', valueHumanName: { family: 'X' } },
        {
          url: 'urn:b',
          extension: [
            { url: 'urn:c', valueHumanName: { family: 'Y' } },
            { url: 'urn:d', valueString: 'kept' },
          ],
        },
      ],
      _gender: { extension: [{ url: 'urn:e', valueHumanName: { family: 'Z' } }] },
      gender: 'male',
    });
    expect(JSON.stringify(out)).not.toMatch(/"[XYZ]"/);
    expect(out.extension).toEqual([{ url: 'urn:b', extension: [{ url: 'urn:d', valueString: 'kept' }] }]);
    expect(out).not.toHaveProperty('_gender');
    expect(out.gender).toBe('male');
  });

  it('inside contained resources (each walked with the rules of its own type)', () => {
    const out = deidOk(
      rulesOf(REMOVE_NAMES + '  - name: dob\n    select: { path: "$.birthDate", in: Patient }\n    method: remove\n'),
      [fixture('r4-examples/questionnaireresponse-example.json')],
    )[0] as Json;
    const contained = out.contained as Json[];
    expect(contained[0]).not.toHaveProperty('birthDate');
    expect(contained[0]?.resourceType).toBe('Patient');
  });

  it('inside Bundle entries', () => {
    const out = one(REMOVE_NAMES, {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [{ resource: { resourceType: 'Patient', name: [{ family: 'X' }], gender: 'male' } }],
    });
    expect(out.entry[0].resource).toMatchObject({ resourceType: 'Patient', gender: 'male' });
    expect(out.entry[0].resource).not.toHaveProperty('name');
  });

  it('in QuestionnaireResponse items at any depth (item.item and answer.item)', () => {
    const body =
      '  - name: strings\n    select: { type: string }\n    method: remove\n  - name: keep-structure\n    select: { type: QuestionnaireResponse.item, element: linkId }\n    method: keep\n';
    expect(() => rulesOf(body)).toThrow(); // the string rule takes linkId first: keep would never fire
    const out = one(
      '  - name: keep-structure\n    select: { type: QuestionnaireResponse.item, element: linkId }\n    method: keep\n' +
        body.split('  - name: keep-structure')[0],
      {
        resourceType: 'QuestionnaireResponse',
        status: 'completed',
        item: [
          {
            linkId: 'a',
            text: 'q',
            item: [
              { linkId: 'b', answer: [{ valueString: 'x', item: [{ linkId: 'c', answer: [{ valueString: 'y' }] }] }] },
            ],
          },
        ],
      },
    );
    expect(out.item).toEqual([{ linkId: 'a', item: [{ linkId: 'b', answer: [{ item: [{ linkId: 'c' }] }] }] }]);
  });

  it('matches any of a list of types, and a backbone type by its path', () => {
    const out = one('  - name: q\n    select: { type: [Quantity, CodeableConcept] }\n    method: remove\n', {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      valueQuantity: { value: 1 },
      interpretation: [{ text: 'y' }],
      note: [{ text: 'n' }],
    });
    expect(Object.keys(out).filter((k) => k !== 'meta')).toEqual(['resourceType', 'status', 'note']);
  });
});

describe('element, where and in', () => {
  it('element selects a part below the type, by name or JSON key', () => {
    const body = '  - name: v\n    select: { type: Extension, element: valueString }\n    method: remove\n';
    const out = one(body, {
      resourceType: 'Patient',
      extension: [
        { url: 'a', valueString: 's' },
        { url: 'b', valueCode: 'c' },
      ],
    });
    expect(out.extension).toEqual([{ url: 'b', valueCode: 'c' }]);
  });

  it('where tests the element’s own children (dotted paths, lists)', () => {
    const body =
      '  - name: email\n    select: { type: ContactPoint, where: { system: email } }\n    method: remove\n  - name: ssn\n    select: { type: Identifier, where: { type.coding.code: [SS, DL] } }\n    method: remove\n';
    const out = one(body, {
      resourceType: 'Patient',
      telecom: [
        { system: 'email', value: 'a@b' },
        { system: 'phone', value: '1' },
      ],
      identifier: [
        { type: { coding: [{ code: 'MR' }] }, value: '1' },
        { type: { coding: [{ code: 'x' }, { code: 'DL' }] }, value: '2' },
      ],
    });
    expect(out.telecom).toEqual([{ system: 'phone', value: '1' }]);
    expect(out.identifier).toEqual([{ type: { coding: [{ code: 'MR' }] }, value: '1' }]);
  });

  it('in limits a rule to resource types (contained ones count as their own type)', () => {
    const body =
      '  - name: org-names\n    select: { type: Identifier, in: Organization }\n    method: keep\n  - name: ids\n    select: { type: Identifier, element: value }\n    method: remove\n';
    const [org, pat] = deidOk(rulesOf(body), [
      { resourceType: 'Organization', identifier: [{ value: 'o' }] },
      {
        resourceType: 'Patient',
        identifier: [{ system: 's', value: 'p' }],
        contained: [{ resourceType: 'Organization', id: 'c', identifier: [{ value: 'c' }] }],
      },
    ] as Resource[]);
    expect(org?.identifier).toEqual([{ value: 'o' }]);
    expect(pat?.identifier).toEqual([{ system: 's' }]);
    expect(pat?.contained[0].identifier).toEqual([{ value: 'c' }]);
  });
});

describe('JSONPath selectors', () => {
  const pat = {
    resourceType: 'Patient',
    name: [
      { family: 'A', given: ['a1', 'a2'] },
      { family: 'B', given: ['b1'] },
    ],
    contact: [{ name: { family: 'C' } }],
  };

  it('selects exact paths, with indices and wildcards', () => {
    expect(one('  - name: x\n    select: { path: "$.name[1]", in: Patient }\n    method: remove\n', pat).name).toEqual([
      { family: 'A', given: ['a1', 'a2'] },
    ]);
    expect(
      one('  - name: x\n    select: { path: "$.name[*].given[0]", in: Patient }\n    method: remove\n', pat).name,
    ).toEqual([{ family: 'A', given: ['a2'] }, { family: 'B' }]);
    expect(
      one('  - name: x\n    select: { path: "$[\'name\'][*].family", in: Patient }\n    method: remove\n', pat).name,
    ).toEqual([{ given: ['a1', 'a2'] }, { given: ['b1'] }]);
  });

  it('selects descendants with ..', () => {
    const out = one('  - name: x\n    select: { path: "$..family", in: Patient }\n    method: remove\n', pat);
    expect(JSON.stringify(out)).not.toContain('family');
    expect(out.name[1]).toEqual({ given: ['b1'] });
  });

  it('without in, applies to every resource type (elements common to all)', () => {
    const [a, b] = deidOk(rulesOf('  - name: x\n    select: { path: "$.meta.source" }\n    method: remove\n'), [
      { resourceType: 'Patient', meta: { source: 'http://clinic', versionId: '1' } },
      { resourceType: 'Observation', status: 'final', code: { text: 'x' }, meta: { source: 'http://clinic' } },
    ] as Resource[]);
    expect(a?.meta.source).toBeUndefined();
    expect(a?.meta.versionId).toBe('1');
    expect(b?.meta.source).toBeUndefined();
  });
});

describe('QuestionnaireResponse selectors', () => {
  const qr = fixture('smart-forms/questionnaire-response-sample.json');
  const Q = 'http://www.health.gov.au/assessments/mbs/715';

  it('by questionnaire and linkId, at any depth', () => {
    const out = one(
      `  - name: dob\n    select: { questionnaire: "${Q}", linkId: 90ad8f16-16e4-4438-a7aa-b3189f510da2 }\n    method: remove\n`,
      qr,
    );
    expect(JSON.stringify(out)).not.toContain('1936-08-18');
    expect(JSON.stringify(out)).toContain('Benito Lucio');
  });

  it('ignores linkIds of another questionnaire', () => {
    const out = one(
      '  - name: dob\n    select: { questionnaire: "http://other", linkId: 90ad8f16-16e4-4438-a7aa-b3189f510da2 }\n    method: remove\n',
      qr,
    );
    expect(JSON.stringify(out)).toContain('1936-08-18');
  });

  it('by answer type', () => {
    const out = one('  - name: s\n    select: { answerType: [valueString, valueDate] }\n    method: remove\n', qr);
    const text = JSON.stringify(out);
    expect(text).not.toContain('valueString');
    expect(text).not.toContain('valueDate"');
    expect(text).toContain('valueDateTime');
    expect(text).toContain('valueCoding');
  });

  it('a whole item (with the items below it) by target: item', () => {
    const out = one(
      `  - name: addr\n    select: { questionnaire: "${Q}", linkId: f1262ade-843c-4eba-a86d-51a9c97d134b, target: item }\n    method: remove\n`,
      qr,
    );
    const text = JSON.stringify(out);
    for (const gone of ['Home address', '320 Ritchie Byway', 'Boston', '02108']) {
      expect(text).not.toContain(gone);
    }
    expect(text).toContain('Home phone');
  });

  it('by item code, when the Questionnaire is known (option or same batch)', () => {
    const response = fixture('r4-examples/questionnaireresponse-example-gcs.json');
    const questionnaire = fixture<Questionnaire>('r4-examples/questionnaire-example-gcs.json');
    const rules = rulesOf(
      '  - name: verbal\n    select: { itemCode: { system: "http://loinc.org", code: "9270-0" } }\n    method: remove\n',
    );
    const viaOption = createAnonymizer({ rules, key: TEST_KEY, questionnaires: [questionnaire] });
    const [out] = deidOk(viaOption, [response]);
    expect((out?.item as Json[]).map((i) => i.linkId)).toEqual(['1.1', '1.2', '1.3']);
    expect(out?.item[0].answer).toBeUndefined();
    expect(out?.item[1].answer).toHaveLength(1);
    const [, inBatch] = deidOk(anonymizer(rules), [questionnaire, response]);
    expect(inBatch?.item[0].answer).toBeUndefined();
    const [unknown] = deidOk(anonymizer(rules), [response]);
    expect(unknown?.item[0].answer).toHaveLength(1);
  });
});

describe('decision order and modes', () => {
  it('the first rule in file order decides an element, also over an ancestor’s rule', () => {
    const body =
      '  - name: keep-family\n    select: { type: HumanName, element: family }\n    method: keep\n  - name: drop-names\n    select: { path: "$.name", in: Patient }\n    method: remove\n';
    expect(one(body, { resourceType: 'Patient', name: [{ family: 'F', given: ['G'] }] }).name).toEqual([
      { family: 'F' },
    ]);
    const reversed =
      '  - name: drop-names\n    select: { path: "$.name", in: Patient }\n    method: remove\n  - name: keep-given\n    select: { path: "$.name[*].given", in: Patient }\n    method: keep\n';
    expect(() => rulesOf(reversed)).toThrow(expect.objectContaining({ code: 'CFG_ERR_RULES_INVALID' }));
  });

  it('allowListMode drops everything no rule keeps or transforms', () => {
    const body =
      '  - name: gender\n    select: { path: "$.gender", in: Patient }\n    method: keep\n  - name: codes\n    select: { type: Coding }\n    method: keep\n';
    const out = one(
      body,
      {
        resourceType: 'Patient',
        gender: 'female',
        birthDate: '1990-01-01',
        maritalStatus: { coding: [{ code: 'M' }], text: 'married' },
      },
      'allowListMode: true\nmarking: { tags: false, securityLabels: false }',
    );
    expect(out).toEqual({ resourceType: 'Patient', gender: 'female', maritalStatus: { coding: [{ code: 'M' }] } });
  });

  it('fails a resource with an element R4 does not define, naming it; or drops it with unknownElements: remove', () => {
    const res = { resourceType: 'Patient', gender: 'male', socialSecurity: '999-34-1238' };
    const { outcomes, report } = anonymizer(rulesOf(REMOVE_NAMES)).deidentify([res as Resource], {
      instanceId: 'local-a',
    });
    expect(outcomes[0]).toMatchObject({
      ok: false,
      code: 'DEID_ERR_UNKNOWN_ELEMENT',
      location: 'Patient.socialSecurity',
    });
    expect(report.failed).toEqual({ DEID_ERR_UNKNOWN_ELEMENT: 1 });
    const out = one(REMOVE_NAMES, res, 'unknownElements: remove');
    expect(out).not.toHaveProperty('socialSecurity');
  });
});
