/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-return -- assertions walk untyped FHIR JSON */
/**
 * The acceptance tests of the shipped Safe Harbor profile over real-shaped data: no PHI of the
 * input survives anywhere in the serialized output (narratives and attachments included), the
 * reference graph still resolves, output is deterministic, instances get different ids, and
 * one patient's dates keep their intervals.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Bundle } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { createAnonymizer } from '../../src/anonymizer/index.ts';
import { TEST_KEY, defaultRules, deidOk, fixture, ndjson, syntheaBundlePaths } from './helpers.ts';

type Json = Record<string, any>;

/** The PHI of a person resource that must not leave: names, identifiers, contacts, address, birth date. */
function personPhi(r: Json): string[] {
  if (r.resourceType === 'Practitioner') {
    // A clinician's name is a quasi-identifier; their work address and licence are the organisation's.
    return ((r.name as Json[] | undefined) ?? [])
      .flatMap((n) => [n.family, ...(n.given ?? [])])
      .filter((x): x is string => typeof x === 'string' && x.length >= 3);
  }
  const out: string[] = [];
  const people = [r, ...((r.contact as Json[] | undefined) ?? [])];
  for (const p of people) {
    for (const n of (p.name as Json[] | undefined) ?? []) {
      out.push(...[n.family, ...(n.given ?? [])].filter((x): x is string => typeof x === 'string'));
    }
    for (const t of (p.telecom as Json[] | undefined) ?? []) {
      out.push(t.value);
    }
    for (const a of (p.address as Json[] | undefined) ?? []) {
      out.push(...(a.line ?? []), a.city, a.postalCode);
    }
  }
  for (const id of (r.identifier as Json[] | undefined) ?? []) {
    out.push(id.value);
  }
  // Short numeric values ("140") occur as measurements anywhere; identifiers that short are not checked.
  return finish(out, r);
}

function finish(out: string[], r: Json): string[] {
  for (const e of (r.extension as Json[] | undefined) ?? []) {
    if (typeof e.valueString === 'string' && String(e.url).endsWith('mothersMaidenName')) {
      out.push(...e.valueString.split(' '));
    }
  }
  if (typeof r.birthDate === 'string' && r.birthDate.length === 10) {
    out.push(r.birthDate);
  }
  return out.filter((x) => typeof x === 'string' && x.length >= 3 && !/^\d{1,4}$/.test(x));
}

/** Finds a term as a whole token (digits and letters around it would make it another value). */
function occurs(haystack: string, term: string): boolean {
  const escaped = term.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(?<![\\p{L}\\p{N}.])${escaped}(?![\\p{L}\\p{N}])`, 'u').test(haystack);
}

/** The serialized output plus the decoded text of every base64 attachment in it. */
function visibleText(out: unknown): string {
  const decoded: string[] = [];
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) {
      v.forEach(visit);
    } else if (typeof v === 'object' && v !== null) {
      const o = v as Json;
      if (typeof o.data === 'string' && typeof o.contentType === 'string') {
        decoded.push(Buffer.from(o.data, 'base64').toString('utf8'));
      }
      Object.values(o).forEach(visit);
    }
  };
  visit(out);
  return JSON.stringify(out) + '\n' + decoded.join('\n');
}

function leaks(input: Bundle, out: unknown): string[] {
  const text = visibleText(out);
  const phi = (input.entry ?? []).flatMap((e) =>
    ['Patient', 'RelatedPerson', 'Practitioner'].includes(e.resource?.resourceType ?? '')
      ? personPhi(e.resource as Json)
      : [],
  );
  return [...new Set(phi)].filter((t) => occurs(text, t));
}

/** Every Reference.reference in a tree, with the contained ids of the resource holding it. */
function references(resource: Json): { ref: string; contained: Set<string> }[] {
  const contained = new Set<string>(((resource.contained as Json[] | undefined) ?? []).map((c) => String(c.id)));
  const out: { ref: string; contained: Set<string> }[] = [];
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) {
      v.forEach(visit);
    } else if (typeof v === 'object' && v !== null) {
      const o = v as Json;
      if (typeof o.reference === 'string') {
        out.push({ ref: o.reference, contained });
      }
      Object.values(o).forEach(visit);
    }
  };
  visit(resource);
  return out;
}

const bundles = syntheaBundlePaths();
const rules = defaultRules();

describe('shipped profile over every Synthea bundle', () => {
  it('finds the bundles', () => {
    expect(bundles.length).toBeGreaterThanOrEqual(3);
  });

  for (const path of bundles) {
    it(`leaves no PHI and keeps the graph resolvable: ${basename(path).slice(0, 40)}`, () => {
      const input = JSON.parse(readFileSync(path, 'utf8')) as Bundle;
      const [out] = deidOk(rules, [input]);
      expect(leaks(input, out)).toEqual([]);
      const entries = (out as Bundle).entry ?? [];
      const fullUrls = new Set(entries.map((e) => e.fullUrl));
      const literal = new Set(entries.map((e) => `${e.resource?.resourceType}/${e.resource?.id}`));
      for (const e of entries) {
        for (const { ref, contained } of references(e.resource as Json)) {
          const ok = fullUrls.has(ref) || literal.has(ref) || (ref.startsWith('#') && contained.has(ref.slice(1)));
          expect(ok, `${e.resource?.resourceType} -> ${ref.slice(0, 12)}…`).toBe(true);
        }
      }
      expect(entries).toHaveLength(input.entry?.length ?? 0);
    });
  }
});

describe('determinism and scoping', () => {
  const input = JSON.parse(readFileSync(bundles[0] as string, 'utf8')) as Bundle;

  it('gives byte-identical output for the same input, key and instance', () => {
    const a = JSON.stringify(deidOk(createAnonymizer({ rules, key: TEST_KEY }), [input]));
    const b = JSON.stringify(deidOk(createAnonymizer({ rules, key: TEST_KEY }), [structuredClone(input)]));
    expect(a).toBe(b);
  });

  it('does not modify its input', () => {
    const copy = structuredClone(input);
    deidOk(rules, [input]);
    expect(input).toEqual(copy);
  });

  it('gives different ids for two instances', () => {
    const [a] = deidOk(rules, [input], 'local-a');
    const [b] = deidOk(rules, [input], 'local-b');
    const ids = (o: Json): string[] =>
      (o.entry as Json[]).filter((e) => e.resource.resourceType !== 'Organization').map((e) => e.resource.id as string);
    const idsA = ids(a as Json);
    const idsB = ids(b as Json);
    expect(idsA.length).toBeGreaterThan(10);
    expect(idsA.filter((id) => idsB.includes(id))).toEqual([]);
  });

  it('keeps the intervals between one patient’s dates', () => {
    const [out] = deidOk(rules, [input]);
    const pairs: [string, string][] = [];
    (input.entry ?? []).forEach((e, i) => {
      const before = e.resource as Json;
      const after = (out as Json).entry[i].resource as Json;
      if (before.resourceType === 'Encounter') {
        pairs.push([before.period.start, after.period.start], [before.period.end, after.period.end]);
      } else if (before.resourceType === 'Observation' && typeof before.effectiveDateTime === 'string') {
        pairs.push([before.effectiveDateTime, after.effectiveDateTime]);
      } else if (before.resourceType === 'Condition' && typeof before.onsetDateTime === 'string') {
        pairs.push([before.onsetDateTime, after.onsetDateTime]);
      }
    });
    expect(pairs.length).toBeGreaterThan(10);
    const shifts = new Set(pairs.map(([b, a]) => Date.parse(a) - Date.parse(b)));
    expect(shifts.size).toBe(1);
    const [shift] = [...shifts] as [number];
    expect(shift).not.toBe(0);
    expect(Math.abs(shift)).toBeLessThanOrEqual(30 * 86_400_000);
    expect(Math.abs(shift) % 86_400_000).toBe(0);
  });
});

describe('questionnaire response with PHI in its answers', () => {
  const qr = fixture('smart-forms/questionnaire-response-sample.json');

  it('removes name, birth date, address, phone and the hidden patient id; keeps coded and numeric answers', () => {
    const [out] = deidOk(rules, [qr]);
    const text = JSON.stringify(out);
    for (const phi of [
      'Benito',
      'Lucio',
      '1936-08-18',
      '320 Ritchie Byway',
      'Boston',
      '02108',
      '555-913-5055',
      'd64b37f5-d3b5-4c25-abe8-23ebe8f5a04e',
    ]) {
      expect(text.includes(phi), phi).toBe(false);
    }
    expect(text).toContain('"code":"26929004"'); // Alzheimer's disease stays
    expect(text).toContain('"valueInteger":86'); // age below 90 stays
    expect(text).toContain('"valueBoolean":false');
  });
});

describe('clinical notes of the bulk data set', () => {
  const patient = ndjson('bulk/Patient.ndjson');
  const notes = ndjson('bulk/DocumentReference.ndjson');
  const encounters = ndjson('bulk/Encounter.ndjson');

  it('scrubs the patient’s names and dates from the notes when the Patient is in the input', () => {
    const out = deidOk(rules, [...patient, ...notes, ...encounters]);
    const phi = personPhi(patient[0] as Json);
    const text = visibleText(out);
    expect(phi.filter((t) => occurs(text, t))).toEqual([]);
    const note = Buffer.from((out[1] as Json).content[0].attachment.data as string, 'base64').toString('utf8');
    expect(note).toContain('[REDACTED]');
    expect(note).toContain('Chief Complaint'); // the clinical content stays
    expect(note).not.toMatch(/\d{4}-\d{2}-\d{2}/);
  });

  it('removes the notes when their Patient is not in the input (cannot be checked)', () => {
    const out = deidOk(rules, notes);
    for (const n of out) {
      expect(n.content[0].attachment.data).toBeUndefined();
      expect(n.content[0].attachment.contentType).toBeDefined();
    }
  });

  it('scrubs them again when the Patient comes as a related resource', () => {
    const { outcomes } = createAnonymizer({ rules, key: TEST_KEY }).deidentify(notes, {
      instanceId: 'local-a',
      related: patient,
    });
    const first = outcomes[0] as { ok: true; resource: Json };
    expect(first.ok).toBe(true);
    const note = Buffer.from(first.resource.content[0].attachment.data as string, 'base64').toString('utf8');
    expect(note).toContain('Chief Complaint');
    expect(personPhi(patient[0] as Json).filter((t) => occurs(note, t))).toEqual([]);
  });

  it('rewrites conditional references consistently with the identifiers they name', () => {
    const practitioners = ndjson('bulk/Practitioner.ndjson');
    const out = deidOk(rules, [...encounters, ...practitioners]);
    const ref = (out[0] as Json).participant[0].individual.reference as string;
    expect(ref).toMatch(/^Practitioner\?identifier=http%3A%2F%2Fhl7.org%2Ffhir%2Fsid%2Fus-npi\|[0-9a-f-]{36}$/);
    const npiValues = out.slice(3).flatMap((p) => (p.identifier as Json[]).map((i) => i.value as string));
    expect(npiValues).toContain(ref.split('|')[1]);
    // Organizations and Locations are owned by the global server: their conditional references stay.
    expect((out[0] as Json).serviceProvider.reference).toBe((encounters[0] as Json).serviceProvider.reference);
  });
});
