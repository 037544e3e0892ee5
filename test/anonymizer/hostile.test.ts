/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-call -- assertions walk untyped FHIR JSON */
/**
 * The hostile corpus (test/fixtures/anonymizer/hostile): invented resources that hide
 * identifiers in every place issue 12 lists. The shipped profile must leave none of the
 * planted values (nor ages of 90+, full death or birth dates, a device off its patient's
 * timeline) in the output, whether the corpus goes in as one batch or one resource at a time
 * with its Patient and RelatedPerson as context (what the CLI's --related and the sync pass),
 * while codes, ordinary values, intervals and references survive.
 */
import type { Resource } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { createAnonymizer } from '../../src/anonymizer/index.ts';
import type { DeidOutcome } from '../../src/anonymizer/index.ts';
import { TEST_KEY, defaultRules, fixture } from './helpers.ts';

type Json = Record<string, any>;

export interface Planted {
  readonly category: string;
  readonly value: string;
}

export const HOSTILE: readonly Resource[] = fixture<Resource[]>('hostile/resources.json');
export const PLANTED: readonly Planted[] = fixture<Planted[]>('hostile/planted.json');

const AGE_UNITS = new Set(['a', 'yr', 'year', 'years']);
const AGE_CODES = new Set(['30525-0', '21612-7']);

/** Every text an output carries: the JSON, plus decoded base64 content (UTF-8, or UTF-16 with a BOM). */
export function readableText(resources: readonly unknown[]): string {
  const parts: string[] = [JSON.stringify(resources)];
  const visit = (v: unknown, key: string): void => {
    if (typeof v === 'string') {
      if (/^(data|query|valueBase64Binary)$/.test(key)) {
        const buf = Buffer.from(v, 'base64');
        parts.push(
          buf[0] === 0xff && buf[1] === 0xfe ? buf.subarray(2).toString('utf16le') : buf.toString('utf8'),
          buf.toString('latin1'),
        );
      }
    } else if (Array.isArray(v)) {
      v.forEach((x) => visit(x, key));
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) {
        visit(x, k);
      }
    }
  };
  visit(resources, '');
  return parts.join('\n');
}

/** How often a planted value occurs as a whole token (case-insensitive). */
function occurrences(text: string, value: string): number {
  const escaped = value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return (text.match(new RegExp(`(?<![\\p{L}\\p{N}])${escaped}(?![\\p{L}\\p{N}])`, 'giu')) ?? []).length;
}

/** Leaks that are not strings: ages of 90+, full dates of death and birth, device dates off the patient's offset. */
export function structuralLeaks(out: readonly Json[]): string[] {
  const leaks: string[] = [];
  const visit = (v: unknown, path: string): void => {
    if (Array.isArray(v)) {
      v.forEach((x, i) => visit(x, `${path}[${i}]`));
      return;
    }
    if (typeof v !== 'object' || v === null) {
      return;
    }
    const o = v as Json;
    const unit = typeof o.code === 'string' ? o.code : o.unit;
    if (typeof o.value === 'number' && o.value > 90 && AGE_UNITS.has(String(unit))) {
      leaks.push(`${path}: age ${o.value}`);
    }
    if (typeof o.valueInteger === 'number' && o.valueInteger > 90) {
      leaks.push(`${path}.valueInteger: ${o.valueInteger}`);
    }
    for (const [k, x] of Object.entries(o)) {
      visit(x, `${path}.${k}`);
    }
  };
  for (const r of out) {
    visit(r, r.resourceType);
    if (r.resourceType === 'Observation' && AGE_CODES.has(r.code?.coding?.[0]?.code)) {
      const n = r.valueInteger ?? r.valueQuantity?.value;
      if (typeof n === 'number' && n > 90) {
        leaks.push(`Observation age ${n}`);
      }
    }
    if (r.resourceType === 'Patient' && typeof r.deceasedDateTime === 'string' && r.deceasedDateTime.length > 4) {
      leaks.push(`Patient.deceasedDateTime ${r.deceasedDateTime}`);
    }
    for (const item of r.resourceType === 'QuestionnaireResponse' ? (r.item ?? []) : []) {
      for (const a of item.answer ?? []) {
        if (typeof a.valueDate === 'string' && a.valueDate.length > 4 && item.linkId === 'dob') {
          leaks.push(`QuestionnaireResponse birth date ${a.valueDate}`);
        }
      }
    }
  }
  // Device and Encounter carry the same instant in the input: one patient, one offset.
  const device = out.find((r) => r.resourceType === 'Device');
  const encounter = out.find((r) => r.resourceType === 'Encounter');
  if (device && encounter && device.manufactureDate !== encounter.period?.start) {
    leaks.push(`Device date ${String(device.manufactureDate)} off the patient's ${String(encounter.period?.start)}`);
  }
  return leaks;
}

/** Planted values found, by category, plus the structural leaks. */
export function countLeaks(out: readonly Json[]): { total: number; found: string[] } {
  const text = readableText(out);
  const found: string[] = [];
  for (const p of PLANTED) {
    const n = occurrences(text, p.value);
    if (n > 0) {
      found.push(`${p.category} ${p.value.length > 40 ? p.value.slice(0, 40) + '…' : p.value} x${n}`);
    }
  }
  found.push(...structuralLeaks(out));
  return { total: found.length, found };
}

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
