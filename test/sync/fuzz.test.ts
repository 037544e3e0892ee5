/**
 * Issue 10: 2,400 hostile changes through real passes (real anonymizer with the shipped
 * profile, HAPI-like fake stores): the three Synthea patients' resources with elements replaced
 * by hostile values, references bent, dates broken, nesting far past the cap, ids a server
 * should never send, and deletions. Seeded, so a failure reproduces. Asserts that no pass
 * fails, every cursor reaches the end of its feed, every change ends either on the global or in
 * quarantine, nothing of the patients' PHI or local ids reaches the global, and the heap stays
 * bounded.
 */
import { readFileSync } from 'node:fs';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { Change } from '../../src/changes/index.ts';
import { parseInstances } from '../../src/instances/index.ts';
import { forwardChannel } from '../../src/sync/channel.ts';
import { runPass } from '../../src/sync/pass.ts';
import type { PassDeps } from '../../src/sync/pass.ts';
import { plainCodec } from '../../src/sync/seal.ts';
import { cursorId, parseCursor, quarantineId } from '../../src/sync/state.ts';
import type { Basic } from '@medplum/fhirtypes';
import { heapAfterGc, hostileValue, nested, pick, prng } from '../shared/hostile.ts';
import type { Gen } from '../shared/hostile.ts';
import { needlesOf, scan } from './phi-scan.ts';
import { arrayFeed, fakeStore } from './fakes.ts';
import { testAnonymizer } from './live.ts';

const CHANGES = 2400;
const HEAP_GROWTH_LIMIT = 128 * 1024 * 1024;
const FILES = [
  'Buster_Hoeger_ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423.json',
  'Liz_Conn_27c911c6-f045-4ffa-af5d-6eba57ac94b2.json',
  'Luigi_Wiegand_e27d88b0-c5e5-4042-ad49-184f6a900ee3.json',
];
/** Patient first, as the service orders types; the rest in the order the bundles give. */
const TYPE_ORDER = ['Patient'];
const ADMIN_TYPES = ['Organization', 'Location'];

const REFERENCES = [
  'Patient/',
  '#missing',
  'http://evil.example/fhir/Patient/1',
  'Patient/../../x',
  'Patient?identifier=123-45-6789',
  'urn:uuid:00000000-0000-0000-0000-000000000000',
  'Patient/%ff',
  'Observation/does-not-exist',
  '',
];
const DATES = ['1986-13-45', '2024/03/05', '20240229', '0000-00-00', '1986-11-28T25:61:00Z', 'yesterday', ''];
const BAD_IDS = ['bad id', '', 'x'.repeat(65), '../etc', 'ü', '%ff'];

function mutate(r: Gen, source: Resource, n: number): Change {
  const res = structuredClone(source) as unknown as Record<string, unknown>;
  const type = source.resourceType;
  res.id = `${source.id}-f${n}`;
  const kind = Math.floor(r() * 8);
  const keys = Object.keys(res).filter((k) => k !== 'resourceType' && k !== 'id');
  switch (kind) {
    case 0:
      res[pick(r, keys)] = hostileValue(r);
      break;
    case 1:
      res[pick(r, ['extension', 'unknownElement', 'modifierExtension', 'text', 'contained'])] = hostileValue(r);
      break;
    case 2:
      res[pick(r, ['subject', 'patient', 'encounter', 'beneficiary'])] = { reference: pick(r, REFERENCES) };
      break;
    case 3:
      res[pick(r, ['effectiveDateTime', 'birthDate', 'issued', 'recordedDate', 'onsetDateTime'])] = pick(r, DATES);
      break;
    case 4:
      res[pick(r, ['contained', 'extension'])] = [
        nested(pick(r, [200, 1_000, 3_000]), { url: 'http://example.org/x' }, pick(r, ['contained', 'extension'])),
      ];
      break;
    case 5:
      return { kind: 'deletion', resourceType: type, id: r() < 0.5 ? source.id! : `${source.id}-gone${n}` };
    case 6:
      return { kind: 'resource', resourceType: type, id: pick(r, BAD_IDS), resource: res as unknown as Resource };
    default:
      break; // a plain copy under a new id: most of a real page is fine
  }
  return { kind: 'resource', resourceType: type, id: res.id as string, resource: res as unknown as Resource };
}

describe('fuzz: hostile resources through real passes', () => {
  it(`syncs ${CHANGES} hostile changes: no failed pass, every change written or quarantined, no PHI`, async () => {
    const bundles = FILES.map(
      (f) => JSON.parse(readFileSync(new URL(`../fixtures/sync/${f}`, import.meta.url), 'utf8')) as Bundle,
    );
    const all = bundles.flatMap((b) => (b.entry ?? []).flatMap((e) => (e.resource ? [e.resource] : [])));
    // Admin types belong to the global (reverse channel); every clinical type is sent.
    const sources = all.filter((s) => !ADMIN_TYPES.includes(s.resourceType));
    const types = [...new Set([...TYPE_ORDER, ...sources.map((s) => s.resourceType)])];
    const config = parseInstances(
      `version: 1
global: { baseUrl: http://global/, bundleSize: 50, adminTypes: [${ADMIN_TYPES.join(', ')}] }
instances:
  - id: a
    baseUrl: http://local-a/
    sendTypes: [${types.join(', ')}]
    feed: { kind: fhir-history, pageSize: 25 }
`,
      { source: 'fuzz' },
    ).config;
    const instance = config.instances[0]!;
    const { anonymizer } = testAnonymizer();
    const global = fakeStore();
    const local = fakeStore('http://local-a/fhir');
    all.forEach((s) => local.put(s));

    const r = prng(0xf022);
    const changes: Change[] = [];
    for (let n = 0; n < CHANGES; n++) {
      changes.push(mutate(r, pick(r, sources), n));
    }
    const deps: PassDeps = {
      openChannel: (req) =>
        Promise.resolve(
          forwardChannel({
            instance,
            global: config.global,
            resourceType: req.resourceType,
            feed: arrayFeed(changes, 25),
            anonymizer,
            local,
            globalStore: global,
            codec: plainCodec,
          }),
        ),
      logger: pino({ level: 'silent' }),
      clock: () => new Date('2026-12-05T10:00:00Z'),
      retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
      sleep: () => Promise.resolve(),
      random: () => 0.5,
    };

    const heapBefore = heapAfterGc();
    let written = 0;
    let quarantined = 0;
    for (const type of types) {
      const summary = await runPass(deps, { instanceId: 'a', resourceType: type });
      written += summary.resources;
      quarantined += summary.quarantined;
      const cursor = global.get(`Basic/${cursorId('forward', 'a', type)}`) as Basic;
      expect(JSON.parse(parseCursor(cursor).cursor!), `${type} cursor`).toEqual({
        n: changes.filter((c) => c.resourceType === type).length,
      });
    }
    const heapGrowth = heapAfterGc() - heapBefore;

    // Every resource change (latest per id) is on the global or in quarantine.
    const latest = new Map<string, Change>();
    changes.forEach((c) => latest.set(`${c.resourceType}/${String(c.id)}`, c));
    const lost: string[] = [];
    for (const c of latest.values()) {
      if (c.kind !== 'resource') {
        continue;
      }
      const target = anonymizer.pseudonymousId('a', c.resourceType, String(c.id));
      const there =
        global.get(`${c.resourceType}/${target}`) !== undefined ||
        global.get(`Basic/${quarantineId('forward', 'a', c.resourceType, target)}`) !== undefined;
      if (!there) {
        lost.push(`${c.resourceType}/${String(c.id).slice(0, 70)}`);
      }
    }
    expect(lost).toEqual([]);
    expect(written).toBeGreaterThan(CHANGES / 8);
    expect(quarantined).toBeGreaterThan(CHANGES / 4);

    // Nothing identifying reached the global: the patients' PHI, local ids and fullUrls.
    const text = JSON.stringify([...global.data.values()].map((s) => s.resource));
    const hits = scan([{ name: 'global', text }], needlesOf(bundles, []));
    expect(hits.map((h) => `${h.needle.origin}: ${h.excerpt}`)).toEqual([]);
    expect(heapGrowth).toBeLessThan(HEAP_GROWTH_LIMIT);
  }, 300_000);
});
