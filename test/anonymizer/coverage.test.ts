/**
 * Coverage: PHI-capable elements no rule decides, per resource type and Safe Harbor category.
 */
import { describe, expect, it } from 'vitest';
import { coverage } from '../../src/anonymizer/index.ts';
import { defaultRules, rulesOf } from './helpers.ts';

describe('coverage', () => {
  it('finds nothing uncovered in the shipped profile, over every R4 resource type', () => {
    const report = coverage(defaultRules());
    expect(report.resourceTypes).toBeGreaterThan(140);
    expect(report.totals).toEqual({ uncovered: 0, conditional: 0, byCategory: {} });
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

  it('has nothing uncovered in allow-list mode', () => {
    const report = coverage(
      rulesOf('  - name: g\n    select: { path: "$.gender", in: Patient }\n    method: keep\n', 'allowListMode: true'),
    );
    expect(report.allowListMode).toBe(true);
    expect(report.totals.uncovered).toBe(0);
  });
});
