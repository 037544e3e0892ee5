/**
 * Reconciliation on the fakes: pages through the local, finds what the global lacks or holds
 * in an older state, repairs exactly those through the normal de-identification, and leaves
 * the cursor and in-sync resources alone.
 */
import type { Patient } from '@medplum/fhirtypes';
import pino from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { parseInstances } from '../../src/instances/index.ts';
import type { InstancesConfig } from '../../src/instances/index.ts';
import { forwardChannel } from '../../src/sync/channel.ts';
import type { PassDeps } from '../../src/sync/pass.ts';
import { runReconcile } from '../../src/sync/reconcile.ts';
import { plainCodec } from '../../src/sync/seal.ts';
import { arrayFeed, fakeAnonymizer, fakePseudo, fakeStore } from './fakes.ts';
import type { FakeStore } from './fakes.ts';

const yaml = `version: 1
global:
  baseUrl: http://global/
  bundleSize: 10
instances:
  - id: a
    baseUrl: http://local-a/
    sendTypes: [Patient]
    feed: { kind: search-lastupdated, pageSize: 2 }
`;

let config: InstancesConfig;
let global: FakeStore;
let local: FakeStore;

const P = (id: string, lastUpdated: string, family = 'Doe'): Patient => ({
  resourceType: 'Patient',
  id,
  meta: { lastUpdated },
  name: [{ family }],
  gender: 'female',
});

function deps(): PassDeps {
  return {
    openChannel: (req) =>
      Promise.resolve(
        forwardChannel({
          instance: config.instances.find((i) => i.id === req.instanceId)!,
          global: config.global,
          resourceType: req.resourceType,
          feed: arrayFeed([], 2),
          anonymizer: fakeAnonymizer(),
          local,
          globalStore: global,
          codec: plainCodec,
        }),
      ),
    logger: pino({ level: 'silent' }),
    clock: () => new Date('2026-05-01T10:00:00Z'),
    retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 },
    sleep: () => Promise.resolve(),
    random: () => 0.5,
  };
}

beforeEach(() => {
  config = parseInstances(yaml, { source: 't' }).config;
  global = fakeStore();
  local = fakeStore('http://local-a/fhir');
});

describe('runReconcile', () => {
  it('repairs missing and stale resources, page by page, and nothing else', async () => {
    for (const id of ['p1', 'p2', 'p3', 'p4', 'p5']) {
      local.put(P(id, '2026-03-01T00:00:00Z'));
    }
    // p1 in sync (written after the local's change), p2 stale (written before it), p3..p5 missing.
    global.put({ ...P(fakePseudo('a', 'Patient', 'p1'), '2026-03-02T00:00:00Z'), name: undefined });
    global.put({ ...P(fakePseudo('a', 'Patient', 'p2'), '2026-02-01T00:00:00Z'), name: undefined });
    const summary = await runReconcile(deps(), { instanceId: 'a', resourceType: 'Patient' });
    expect(summary).toMatchObject({ checked: 5, missing: 3, stale: 1, repaired: 4, quarantined: 0 });
    for (const id of ['p2', 'p3', 'p4', 'p5']) {
      const onGlobal = global.get(`Patient/${fakePseudo('a', 'Patient', id)}`) as Patient;
      expect(onGlobal.gender).toBe('female');
      // De-identified by the (fake) anonymizer, as a pass would: no name.
      expect(onGlobal.name).toBeUndefined();
    }
    expect(global.versions(`Patient/${fakePseudo('a', 'Patient', 'p1')}`)).toBe(1);
    // Paged (two per page): every local search asked for ids and meta only, or for the gaps by id.
    const localSearches = local.searches.filter((s) => s.type === 'Patient');
    expect(localSearches[0]!.query).toMatchObject({ _elements: 'id,meta', _count: '2' });
    // No cursor was created or moved.
    expect([...global.data.keys()].filter((k) => k.startsWith('Basic/'))).toEqual([]);
  });

  it('finds nothing to do when both sides agree', async () => {
    local.put(P('p1', '2026-03-01T00:00:00Z'));
    await runReconcile(deps(), { instanceId: 'a', resourceType: 'Patient' });
    const again = await runReconcile(deps(), { instanceId: 'a', resourceType: 'Patient' });
    expect(again).toMatchObject({ checked: 1, missing: 0, repaired: 0 });
  });
});
