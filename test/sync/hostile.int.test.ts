/**
 * The hostile corpus (test/fixtures/anonymizer/hostile) through live syncs, one type at a time:
 * every resource is stored on a real HAPI local, then each type gets a pass of its own, clinical
 * types first and the people last, so no batch holds the Patient or relative its free text
 * names (AuditEvent aside: the engine reserves it). What lands on the global must carry none of the planted identifiers: the pass reads
 * each batch's people from the local (src/sync/people.ts) for the anonymiser to scrub against.
 */
import type { Resource } from '@medplum/fhirtypes';
import { beforeAll, describe, expect, it } from 'vitest';
import type { SyncEngine } from '../../src/sync/index.ts';
import { HOSTILE, countLeaks } from '../anonymizer/hostile-corpus.ts';
import type { Json } from '../anonymizer/hostile-corpus.ts';
import { fhirUrls } from '../servers/urls.ts';
import { getJson, noLock, primeCursors, storeAt, testAnonymizer, testEngine, uniq, writeInstances } from './live.ts';

const urls = fhirUrls();
const run = uniq();
const id = `hx-${run}`;
const { anonymizer, codec } = testAnonymizer();

/** The corpus under ids unique to this run (the shared servers keep other runs' data). */
function corpusForRun(): Resource[] {
  let text = JSON.stringify(HOSTILE);
  for (const r of HOSTILE) {
    const local = r.id!;
    text = text.split(`"${local}"`).join(`"${local}-${run}"`).split(`/${local}"`).join(`/${local}-${run}"`);
  }
  return JSON.parse(text) as Resource[];
}

/**
 * AuditEvent is the engine's own record on the global (RESERVED_TYPES), so no local may send
 * it; the engine's test covers the corpus's AuditEvent.
 */
const corpus = corpusForRun().filter((r) => r.resourceType !== 'AuditEvent');
/** People last: each type before them is synced without its Patient or relative in the batch. */
const PEOPLE = ['Patient', 'RelatedPerson'];
const types = [...new Set(corpus.map((r) => r.resourceType))].sort(
  (a, b) => Number(PEOPLE.includes(a)) - Number(PEOPLE.includes(b)),
);
/** May be quarantined by the anonymiser with a coded reason (a nested bundle, a Questionnaire with templates). */
const MAY_BE_REFUSED = new Set(['Bundle', 'Questionnaire']);
let engine: SyncEngine;

beforeAll(async () => {
  const { config } = await writeInstances(urls.global, [
    { id, fhirBase: urls.localA, sendTypes: types, localOnlyAdmin: 'send', pageSize: 50 },
  ]);
  engine = testEngine(config, anonymizer, codec);
  await primeCursors(storeAt(urls.global), codec, id, types, new Date(Date.now() - 2000));
  const entry = corpus.map((resource) => ({
    resource,
    request: { method: 'PUT' as const, url: `${resource.resourceType}/${resource.id}` },
  }));
  const res = await fetch(urls.localA, {
    method: 'POST',
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry }),
  });
  expect(res.status, await res.clone().text()).toBe(200);
}, 60_000);

describe('hostile corpus through live syncs of one type at a time', () => {
  const out: Json[] = [];

  it('syncs every type on its own, quarantining only what the rules may refuse', async () => {
    let quarantined = 0;
    for (const type of types) {
      const result = await engine.runJob({ kind: 'pass', instanceId: id, resourceType: type }, { lock: noLock });
      const pass = result.passes![0]!;
      const mine = corpus.filter((r) => r.resourceType === type).length;
      expect(pass.quarantined, type).toBeLessThanOrEqual(MAY_BE_REFUSED.has(type) ? mine : 0);
      quarantined += pass.quarantined;
    }
    for (const r of corpus) {
      const channel = await engine.openChannel({ instanceId: id, resourceType: r.resourceType });
      const got = await getJson<Json>(`${urls.global}/${r.resourceType}/${channel.targetId(r.resourceType, r.id!)}`);
      if (got.status === 200) {
        out.push(got.body);
      } else {
        expect(MAY_BE_REFUSED.has(r.resourceType), `${r.resourceType}/${r.id}: ${got.status}`).toBe(true);
      }
    }
    // Each resource is on the global or in quarantine: nothing is lost.
    expect(out.length + quarantined).toBe(corpus.length);
  }, 120_000);

  it('leaves none of the planted identifiers on the global', () => {
    expect(out.length).toBeGreaterThan(0);
    expect(countLeaks(out).found).toEqual([]);
  });

  it('keeps what a clinician wrote in a note whose Patient was not in the batch', () => {
    const letter = out.find((r) => r.resourceType === 'Communication');
    expect(letter?.payload?.[0]?.contentString).toMatch(/^Dear .+ your mother .+ is stable/);
    const doc = out.find((r) => r.resourceType === 'DocumentReference' && r.content?.[0]?.attachment?.data);
    const note = Buffer.from(String(doc?.content[0].attachment.data), 'base64').toString('utf8');
    expect(note).toContain('Nurse to call back in 2 weeks');
  });
});
