/**
 * Coverage: PHI-capable elements no rule decides, per resource type and Safe Harbor category.
 */
import { describe, expect, it } from 'vitest';
import { coverage } from '../../src/anonymizer/index.ts';
import { join } from 'node:path';
import { loadRulesFile } from '../../src/anonymizer/index.ts';
import { FIXTURES, defaultRules, rulesOf } from './helpers.ts';

describe('coverage', () => {
  it('finds nothing uncovered in the shipped profile, over every R4 resource type', () => {
    const report = coverage(defaultRules());
    expect(report.resourceTypes).toBeGreaterThan(140);
    expect(report.totals).toEqual({ uncovered: 0, conditional: 0, kept: 0, scrubOnly: 0, byCategory: {} });
  });

  it('lists what a partial profile leaves, by category', () => {
    const report = coverage(
      rulesOf(
        '  - name: names\n    select: { type: HumanName }\n    method: remove\n  - name: zip\n    select: { type: Address, element: postalCode }\n    method: generalize\n    to: zip3\n',
      ),
      { resourceTypes: ['Patient'] },
    );
    const patient = report.uncovered.Patient ?? {};
    expect(patient.B).toEqual(
      expect.arrayContaining(['Patient.address.line', 'Patient.address.city', 'Patient.contact.address.line']),
    );
    expect(patient.B).not.toContain('Patient.address.postalCode');
    expect(patient.B).not.toContain('Patient.address.state');
    expect(patient.C).toEqual(expect.arrayContaining(['Patient.birthDate', 'Patient.deceasedDateTime']));
    expect(patient.D).toEqual(expect.arrayContaining(['Patient.telecom.value']));
    expect(patient.H).toEqual(expect.arrayContaining(['Patient.identifier.value']));
    expect(patient.Q).toEqual(expect.arrayContaining(['Patient.photo.data']));
    expect(patient.R).toEqual(
      expect.arrayContaining(['Patient.id', 'Patient.text.div', 'Patient.extension.value[x]:string']),
    );
    expect(patient.A ?? []).not.toContain('Patient.name');
    expect(report.totals.uncovered).toBeGreaterThan(10);
  });

  it('reports elements that only conditional rules reach separately', () => {
    const report = coverage(
      rulesOf('  - name: emails\n    select: { type: ContactPoint, where: { system: email } }\n    method: remove\n'),
      { resourceTypes: ['Patient'] },
    );
    expect(report.conditional.Patient?.F).toContain('Patient.telecom.value');
    expect(report.uncovered.Patient?.F ?? []).not.toContain('Patient.telecom.value');
  });

  it('flags every leak class of issue 12 on the rules before the fix, and none after', () => {
    const types = [
      'ImagingStudy',
      'Device',
      'Provenance',
      'AuditEvent',
      'Observation',
      'Condition',
      'QuestionnaireResponse',
      'Patient',
    ];
    const before = coverage(loadRulesFile(join(FIXTURES, 'rules/before-issue12.yaml')), { resourceTypes: types });
    const flagged = (type: string): string[] =>
      [before.uncovered, before.conditional, before.kept, before.scrubOnly].flatMap((section) =>
        Object.values(section[type] ?? {}).flatMap((paths) => paths ?? []),
      );
    // id-typed DICOM UIDs, uri/url, base64Binary outside Attachment, integer and Range ages, QR text and answers
    expect(flagged('ImagingStudy')).toEqual(
      expect.arrayContaining(['ImagingStudy.series.uid', 'ImagingStudy.series.instance.uid']),
    );
    expect(flagged('Device')).toEqual(expect.arrayContaining(['Device.url', 'Device.identifier.system']));
    expect(flagged('Patient')).toEqual(
      expect.arrayContaining([
        'Patient.identifier.system',
        'Patient.extension.value[x]:uri',
        'Patient.extension.value[x]:url',
        'Patient.extension.value[x]:base64Binary',
        'Patient.extension.value[x]:integer',
      ]),
    );
    expect(flagged('Provenance')).toContain('Provenance.signature.data');
    expect(flagged('AuditEvent')).toContain('AuditEvent.entity.query');
    expect(flagged('Observation')).toEqual(
      expect.arrayContaining(['Observation.valueInteger', 'Observation.component.valueInteger']),
    );
    expect(flagged('Condition')).toEqual(expect.arrayContaining(['Condition.onsetRange', 'Condition.abatementRange']));
    expect(before.kept.QuestionnaireResponse?.R).toContain('QuestionnaireResponse.item.text (qr-item-text)');
    expect(before.kept.QuestionnaireResponse?.C).toContain(
      'QuestionnaireResponse.item.answer.valueInteger (qr-coded-numeric-answers)',
    );
    const after = coverage(defaultRules(), { resourceTypes: types });
    expect(after.totals).toMatchObject({ uncovered: 0, conditional: 0, kept: 0, scrubOnly: 0 });
  });

  it('lists structured identifiers that only the scrubber guards, and keeps outside the exempt admin types', () => {
    const report = coverage(
      rulesOf(
        '  - name: names\n    select: { type: HumanName, element: family }\n    method: scrub\n  - name: keep-phones\n    select: { type: ContactPoint }\n    method: keep\n',
        'references:\n  exemptTypes: [Organization]',
      ),
      { resourceTypes: ['Patient', 'Organization'] },
    );
    expect(report.scrubOnly.Patient?.A).toContain('Patient.name.family (names)');
    expect(report.kept.Patient?.D).toContain('Patient.telecom (keep-phones)');
    expect(report.kept.Organization).toBeUndefined();
  });

  it('has nothing uncovered in allow-list mode', () => {
    const report = coverage(
      rulesOf('  - name: g\n    select: { path: "$.gender", in: Patient }\n    method: keep\n', 'allowListMode: true'),
    );
    expect(report.allowListMode).toBe(true);
    expect(report.totals.uncovered).toBe(0);
  });
});
