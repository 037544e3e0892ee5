/* eslint-disable @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-call -- assertions walk untyped FHIR JSON */
/**
 * The hostile corpus (test/fixtures/anonymizer/hostile): invented resources that hide
 * identifiers in every place issue 12 lists. The shipped profile must leave none of the
 * planted values (nor ages of 90+, full death or birth dates, a device off its patient's
 * timeline) in the output, whether the corpus goes in as one batch or one resource at a time
 * with its Patient and RelatedPerson as context (what the CLI's --related and the sync pass),
 * while codes, ordinary values, intervals and references survive.
 */
import { describe, expect, it } from 'vitest';
import { createAnonymizer } from '../../src/anonymizer/index.ts';
import type { DeidOutcome } from '../../src/anonymizer/index.ts';
import { TEST_KEY, defaultRules } from './helpers.ts';
import { HOSTILE, countLeaks } from './hostile-corpus.ts';
import type { Json } from './hostile-corpus.ts';

const anonymizer = createAnonymizer({ rules: defaultRules(), key: TEST_KEY });
const context = HOSTILE.filter((r) => r.resourceType === 'Patient' || r.resourceType === 'RelatedPerson');

function okResources(outcomes: readonly DeidOutcome[]): Json[] {
  return outcomes.flatMap((o) => (o.ok ? [o.resource as Json] : []));
}

/** One batch, and one resource at a time with its people as context. */
function runs(): { name: string; outcomes: DeidOutcome[] }[] {
  return [
    { name: 'one batch', outcomes: anonymizer.deidentify(HOSTILE, { instanceId: 'local-a' }).outcomes },
    {
      name: 'one at a time',
      outcomes: HOSTILE.flatMap(
        (r) => anonymizer.deidentify([r], { instanceId: 'local-a', related: context }).outcomes,
      ),
    },
  ];
}

describe('hostile corpus through the shipped profile', () => {
  for (const run of runs()) {
    describe(run.name, () => {
      const out = okResources(run.outcomes);
      const byId = (id: string): Json => {
        const want = anonymizer.pseudonymousId('local-a', HOSTILE.find((r) => r.id === id)?.resourceType ?? '', id);
        const r = out.find((x) => x.id === want);
        expect(r, id).toBeDefined();
        return r as Json;
      };

      it('leaves none of the planted identifiers', () => {
        const { total, found } = countLeaks(out);
        expect(found).toEqual([]);
        expect(total).toBe(0);
      });

      it('fails only with a coded reason, and only the nested bundle and the Questionnaire may fail', () => {
        for (const [i, o] of run.outcomes.entries()) {
          if (!o.ok) {
            expect(o.code).toMatch(/^DEID_ERR_/);
            expect(o.code).not.toBe('DEID_ERR_INTERNAL');
            expect(['Bundle', 'Questionnaire']).toContain(HOSTILE[i]?.resourceType);
          }
        }
        expect(out.length).toBeGreaterThanOrEqual(HOSTILE.length - 2);
      });

      it('keeps codes, ordinary values, intervals and references', () => {
        const glucose = byId('hx-obs-glucose');
        expect(glucose.code.coding[0].code).toBe('2339-0');
        expect(glucose.valueQuantity).toMatchObject({ value: 7.2, unit: 'mmol/L' });
        expect(glucose.referenceRange[0].low.value).toBe(3.9);
        expect(glucose.subject.reference).toBe(`Patient/${anonymizer.pseudonymousId('local-a', 'Patient', 'hx-pt-1')}`);
        expect(glucose.encounter.reference).toBe(
          `Encounter/${anonymizer.pseudonymousId('local-a', 'Encounter', 'hx-enc-1')}`,
        );
        const enc = byId('hx-enc-1');
        expect(Date.parse(enc.period.end) - Date.parse(enc.period.start)).toBe(90 * 60_000);
        expect(Date.parse(glucose.effectiveDateTime) - Date.parse(enc.period.start)).toBe(20 * 60_000);
        const cond = byId('hx-cond');
        expect(cond.code.coding[0].code).toBe('44054006');
        expect(cond.code.text).toBe('Type 2 diabetes mellitus');
        expect(byId('hx-proc-knee').code.text).toBe('Total knee replacement');
        const med = byId('hx-medreq');
        expect(med.medicationCodeableConcept.text).toContain('0.12 MG/DAY');
        expect(med.dosageInstruction[0].text).toBe('Insert one ring 0.12/0.015 mg per day; Nurse to review at week 3');
        const qr = byId('hx-qr');
        expect(qr.item.find((i: Json) => i.linkId === 'hba1c').answer[0].valueDecimal).toBe(53);
        expect(qr.item.find((i: Json) => i.linkId === 'lives-with').answer[0].valueCoding.code).toBe('daughter');
        const img = byId('hx-img');
        expect(img.series[0].modality.code).toBe('DX');
        expect(img.series[0].uid).toMatch(/^2\.25\.\d+$/);
      });

      it('keeps the facility address and text a clinician wrote', () => {
        const clinic = out.find((r) => r.resourceType === 'Organization' && r.id === 'hx-org-clinic') as Json;
        expect(clinic.name).toBe('St Marys Archbald Clinic');
        expect(clinic.address[0]).toMatchObject({ line: ['200 Clinic Way'], city: 'Archbald' });
        const doc = byId('hx-doc');
        const note = Buffer.from(doc.content[0].attachment.data, 'base64').toString('utf8');
        expect(note).toContain('Mrs [REDACTED]');
        expect(note).toContain('Nurse to call back in 2 weeks');
        expect(note).toContain('metformin 500 mg');
      });
    });
  }
});
