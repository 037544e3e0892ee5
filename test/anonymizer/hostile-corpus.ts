/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-argument -- assertions walk untyped FHIR JSON */
/**
 * The hostile corpus (test/fixtures/anonymizer/hostile) and its leak counter, shared by the
 * engine's test (hostile.test.ts) and the live sync's (test/sync/hostile.int.test.ts).
 */
import type { Resource } from '@medplum/fhirtypes';
import { fixture } from './helpers.ts';

export type Json = Record<string, any>;

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
