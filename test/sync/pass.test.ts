import type { Basic, Bundle, BundleEntry, Observation, Patient, Resource } from '@medplum/fhirtypes';
import pino from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { parseInstances } from '../../src/instances/index.ts';
import type { InstancesConfig } from '../../src/instances/index.ts';
import { forwardChannel } from '../../src/sync/channel.ts';
import { reverseChannel } from '../../src/sync/reverse.ts';
import { DATA_ABSENT_REASON } from '../../src/sync/references.ts';
import { stateId } from '../../src/sync/ids.ts';
import { runPass } from '../../src/sync/pass.ts';
import type { PassDeps } from '../../src/sync/pass.ts';
import { FROM_GLOBAL_TAG, FROM_LOCAL_TAG } from '../../src/sync/marks.ts';
import { plainCodec, sealingCodec } from '../../src/sync/seal.ts';
import { cursorId, parseCursor, parseQuarantine, quarantineId } from '../../src/sync/state.ts';
import { arrayFeed, changed, deleted, fakeAnonymizer, fakePseudo, fakeStore } from './fakes.ts';
import type { FakeStore } from './fakes.ts';
import type { Change, ChangeFeed } from '../../src/changes/index.ts';
import type { CursorCodec } from '../../src/sync/seal.ts';

const yaml = (extra = ''): string => `version: 1
global:
  baseUrl: http://global/
  bundleSize: 10
instances:
  - id: a
    baseUrl: http://local-a/
    sendTypes: [Patient, Observation]
    receiveAdminTypes: [Organization]
    feed: { kind: fhir-history, pageSize: 3 }
${extra}`;

let config: InstancesConfig;
let global: FakeStore;
let local: FakeStore;
let changes: Change[];
let codec: CursorCodec;

const P = (id: string, family = 'Doe'): Patient => ({
  resourceType: 'Patient',
  id,
  name: [{ family }],
  gender: 'female',
});
const O = (id: string, patient: string, extra: Partial<Observation> = {}): Observation => ({
  resourceType: 'Observation',
  id,
  status: 'final',
  code: { text: 'bp' },
  subject: { reference: `Patient/${patient}`, display: 'Jane Doe' },
  performer: [{ reference: 'Practitioner/dr1', display: 'Dr Who' }],
  ...extra,
});
const ps = (type: string, id: string): string => fakePseudo('a', type, id);

/** Opens forward channels of the test's instance over a feed (the test's changes by default). */
function channelsOver(feed: () => ChangeFeed = () => arrayFeed(changes, 3)): PassDeps['openChannel'] {
  return (req) =>
    Promise.resolve(
      forwardChannel({
        instance: config.instances.find((i) => i.id === req.instanceId)!,
        global: config.global,
        resourceType: req.resourceType,
        feed: feed(),
        anonymizer: fakeAnonymizer(['Organization']),
        local,
        globalStore: global,
        codec,
      }),
    );
}

function deps(overrides: Partial<PassDeps> = {}): PassDeps {
  return {
    openChannel: channelsOver(),
    logger: pino({ level: 'silent' }),
    clock: () => new Date('2026-05-01T10:00:00Z'),
    retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 2 },
    sleep: () => Promise.resolve(),
    random: () => 0.5,
    ...overrides,
  };
}

function seed(...resources: Resource[]): void {
  for (const r of resources) {
    local.put(r);
    changes.push(changed(r));
  }
}

function cursorOnGlobal(type: string): string | undefined {
  const basic = global.get(`Basic/${cursorId('forward', 'a', type)}`) as Basic | undefined;
  return basic === undefined ? undefined : parseCursor(basic).cursor;
}

beforeEach(() => {
  config = parseInstances(yaml(), { source: 't' }).config;
  global = fakeStore();
  local = fakeStore('http://local-a/fhir');
  changes = [];
  codec = plainCodec;
});

describe('runPass (forward)', () => {
  it('writes de-identified resources to pseudonymous ids with the cursor', async () => {
    seed(P('p1'), P('p2'));
    const progress: number[] = [];
    const summary = await runPass(
      deps(),
      { instanceId: 'a', resourceType: 'Patient' },
      (p) => void progress.push(p.resources),
    );
    expect(summary).toMatchObject({
      resources: 2,
      deletes: 0,
      quarantined: 0,
      pages: 1,
      direction: 'forward',
    });
    expect(progress).toEqual([2]);
    const g = global.get(`Patient/${ps('Patient', 'p1')}`) as Patient;
    expect(g.name).toBeUndefined();
    expect(g.meta?.tag).toContainEqual(FROM_LOCAL_TAG);
    expect(global.get('Patient/p1')).toBeUndefined();
    expect(JSON.parse(cursorOnGlobal('Patient')!)).toEqual({ n: 2 });
    // One transaction for the cursor creation, one for the page (data + cursor together).
    expect(global.transactions).toBe(2);
  });

  it('seals the cursor on the global when a sealing codec is used', async () => {
    codec = sealingCodec(new Uint8Array(32).fill(1), 'k');
    seed(P('p1'));
    const s = await runPass(deps(), { instanceId: 'a', resourceType: 'Patient' });
    expect(cursorOnGlobal('Patient')).toMatch(/^s1\.[A-Za-z0-9_-]+\./);
    expect(cursorOnGlobal('Patient')).not.toContain('"n"');
    expect(s.cursorAfter).toBe(cursorOnGlobal('Patient'));
    seed(P('p2'));
    expect((await runPass(deps(), { instanceId: 'a', resourceType: 'Patient' })).resources).toBe(1);
  });

  it('carries references: synced types linked, unsynced masked, global-owned admin kept', async () => {
    local.put({ resourceType: 'Organization', id: 'g-org', meta: { tag: [{ ...FROM_GLOBAL_TAG }] }, name: 'HQ' });
    global.put({ resourceType: 'Organization', id: 'g-org', name: 'HQ' });
    local.put({ resourceType: 'Organization', id: 'own-org', name: 'Local clinic' });
    seed(P('p1'));
    await runPass(deps(), { instanceId: 'a', resourceType: 'Patient' });
    seed(
      O('o1', 'p1', {
        performer: [
          { reference: 'Practitioner/dr1' },
          { reference: 'Organization/g-org' },
          { reference: 'Organization/own-org' },
        ],
      }),
    );
    const s = await runPass(deps(), { instanceId: 'a', resourceType: 'Observation' });
    expect(s).toMatchObject({ resources: 1, masked: 2, dependencies: 0 });
    const o = global.get(`Observation/${ps('Observation', 'o1')}`) as Observation;
    expect(o.subject).toEqual({ reference: `Patient/${ps('Patient', 'p1')}` });
    expect(o.performer).toEqual([
      { type: 'Practitioner', extension: [{ url: DATA_ABSENT_REASON, valueCode: 'masked' }] },
      { reference: 'Organization/g-org' },
      { type: 'Organization', extension: [{ url: DATA_ABSENT_REASON, valueCode: 'masked' }] },
    ]);
  });

  it('drops unsynced references when configured', async () => {
    config = parseInstances(
      yaml().replace(
        'receiveAdminTypes: [Organization]',
        'receiveAdminTypes: [Organization]\n    references: { unsynced: drop }',
      ),
      { source: 't' },
    ).config;
    seed(P('p1'), O('o1', 'p1'));
    await runPass(deps(), { instanceId: 'a', resourceType: 'Patient' });
    await runPass(deps(), { instanceId: 'a', resourceType: 'Observation' });
    expect((global.get(`Observation/${ps('Observation', 'o1')}`) as Observation).performer).toBeUndefined();
  });

  it('writes a referenced resource the global lacks in the same bundle, before its dependents', async () => {
    seed(O('o1', 'p9'));
    local.put(P('p9'));
    let firstBundle: string[] = [];
    global.onTransaction = (b) => {
      if (firstBundle.length === 0 && (b.entry?.length ?? 0) > 1) {
        firstBundle = b.entry!.map((e) => e.request!.url);
      }
    };
    const s = await runPass(deps(), { instanceId: 'a', resourceType: 'Observation' });
    expect(s).toMatchObject({ resources: 1, dependencies: 1 });
    expect(firstBundle[0]).toBe(`Patient/${ps('Patient', 'p9')}`);
    expect(firstBundle[1]).toBe(`Observation/${ps('Observation', 'o1')}`);
    expect(global.get(`Patient/${ps('Patient', 'p9')}`)).toBeDefined();
  });

  it('propagates updates, deletions and resurrections, latest change per identity', async () => {
    seed(P('p1'), P('p2'), P('p3'));
    await runPass(deps(), { instanceId: 'a', resourceType: 'Patient' });
    const p1 = `Patient/${ps('Patient', 'p1')}`;
    const p2 = `Patient/${ps('Patient', 'p2')}`;
    changes.push(deleted('Patient', 'p3'), changed(P('p3')));
    seed({ ...P('p1'), gender: 'male' });
    changes.push(deleted('Patient', 'p2'));
    const s = await runPass(deps(), { instanceId: 'a', resourceType: 'Patient' });
    expect(s).toMatchObject({ resources: 2, deletes: 1 });
    expect((global.get(p1) as Patient).gender).toBe('male');
    expect(global.get(p2)).toBeUndefined();
    expect(global.get(`Patient/${ps('Patient', 'p3')}`)).toBeDefined();
    // p3: deleted then resurrected in one page → one PUT with identical content → no new version
    expect(global.versions(`Patient/${ps('Patient', 'p3')}`)).toBe(1);
  });

  it('skips resources the global owns (no echo)', async () => {
    config = parseInstances(
      yaml().replace(
        'sendTypes: [Patient, Observation]',
        'sendTypes: [Patient, Observation, Organization]\n    references: { localOnlyAdmin: send }',
      ),
      { source: 't' },
    ).config;
    local.put({ resourceType: 'Organization', id: 'g', meta: { tag: [{ ...FROM_GLOBAL_TAG }] }, name: 'HQ' });
    changes.push(changed(local.get('Organization/g')!));
    seed({ resourceType: 'Organization', id: 'mine', name: 'Clinic' });
    const s = await runPass(deps(), { instanceId: 'a', resourceType: 'Organization' });
    expect(s).toMatchObject({ resources: 1, skipped: 1 });
    // Organization is exempt from pseudonyms in the rules: a local-only one gets an instance-scoped id.
    expect(global.get(`Organization/${stateId('local-admin', 'a', 'Organization', 'mine')}`)).toBeDefined();
    expect(global.get('Organization/mine')).toBeUndefined();
    expect(global.get('Organization/g')).toBeUndefined();
  });

  it('quarantines what fails de-identification, its dependents, and goes on', async () => {
    seed(P('ok'), { ...P('bad'), language: 'fail' });
    const s = await runPass(deps(), { instanceId: 'a', resourceType: 'Patient' });
    expect(s).toMatchObject({ resources: 1, quarantined: 1 });
    const q = parseQuarantine(
      global.get(`Basic/${quarantineId('forward', 'a', 'Patient', ps('Patient', 'bad'))}`) as Basic,
    );
    expect(q).toMatchObject({
      instanceId: 'a',
      resourceType: 'Patient',
      targetId: ps('Patient', 'bad'),
      reasonCode: 'DEID_ERR_TEST',
      rulesVersion: 'rules-test',
      op: 'upsert',
    });
    expect(
      JSON.stringify(global.get(`Basic/${quarantineId('forward', 'a', 'Patient', ps('Patient', 'bad'))}`)),
    ).not.toContain('Doe');
    seed(O('o-bad', 'bad'), O('o-ok', 'ok'));
    const s2 = await runPass(deps(), { instanceId: 'a', resourceType: 'Observation' });
    expect(s2).toMatchObject({ resources: 1, quarantined: 2 });
    expect(
      parseQuarantine(
        global.get(`Basic/${quarantineId('forward', 'a', 'Observation', ps('Observation', 'o-bad'))}`) as Basic,
      )?.reasonCode,
    ).toBe('SYNC_ERR_DEPENDENCY_QUARANTINED');
    // A fixed resource goes through and its quarantine record is deleted in the same bundle.
    seed(P('bad'));
    await runPass(deps(), { instanceId: 'a', resourceType: 'Patient' });
    expect(global.get(`Basic/${quarantineId('forward', 'a', 'Patient', ps('Patient', 'bad'))}`)).toBeUndefined();
    expect(global.get(`Patient/${ps('Patient', 'bad')}`)).toBeDefined();
  });

  it('quarantines a resource nested past the cap and a change without a usable id; the page goes on', async () => {
    // 10,000 levels of contained resources exhausted the stack of every recursive walker and
    // failed the whole page, again on every retry.
    let deep: Observation = O('deep-0', 'p1');
    for (let i = 1; i < 10_000; i++) {
      deep = { ...O('deep', 'p1'), contained: [deep] };
    }
    seed(P('p1'));
    seed(O('o1', 'p1'), deep, O('o2', 'p1'));
    changes.push({ ...changed(O('bad id', 'p1')), id: 'bad id' });
    await runPass(deps(), { instanceId: 'a', resourceType: 'Patient' });
    const s = await runPass(deps(), { instanceId: 'a', resourceType: 'Observation' });
    expect(s).toMatchObject({ resources: 2, quarantined: 2 });
    expect(global.get(`Observation/${ps('Observation', 'o1')}`)).toBeDefined();
    expect(global.get(`Observation/${ps('Observation', 'o2')}`)).toBeDefined();
    expect(global.get(`Observation/${ps('Observation', 'deep')}`)).toBeUndefined();
    const reason = (type: string, id: string): string | undefined =>
      parseQuarantine(global.get(`Basic/${quarantineId('forward', 'a', type, ps(type, id))}`) as Basic)?.reasonCode;
    expect(reason('Observation', 'deep')).toBe('SYNC_ERR_TOO_DEEP');
    expect(reason('Observation', 'bad id')).toBe('SYNC_ERR_CHANGE_INVALID');
    // The cursor passed all four Observation changes (two pages).
    expect(JSON.parse(cursorOnGlobal('Observation')!)).toEqual({ n: 4 });
  });

  it('prepares the next page while the previous one is written, committing in feed order', async () => {
    seed(P('p1'), P('p2'), P('p3'), P('p4'), P('p5'), P('p6'), P('p7'));
    const events: string[] = [];
    const transaction = global.transaction.bind(global);
    global.transaction = async (bundle, signal) => {
      const pages = (bundle.entry ?? []).filter((e) => e.request?.url?.startsWith('Patient/')).length;
      events.push(`write ${pages} start`);
      await new Promise((r) => setTimeout(r, 20)); // the global is slow: the next page is prepared meanwhile
      const answer = await transaction(bundle, signal);
      events.push(`write ${pages} end`);
      return answer;
    };
    const feed = arrayFeed(changes, 3);
    const pages = feed.pages.bind(feed);
    feed.pages = async function* (type, cursor, options) {
      for await (const page of pages(type, cursor, options)) {
        events.push(`read ${page.changes.length}`);
        yield page;
      }
    };
    const summary = await runPass(
      deps({
        openChannel: channelsOver(() => feed),
      }),
      { instanceId: 'a', resourceType: 'Patient' },
    );
    expect(summary).toMatchObject({ resources: 7, pages: 3 });
    // The cursor creation, then three pages; page 2 is read before page 1's write ends, and
    // page 2's write starts only after page 1's ended.
    expect(events).toEqual([
      'write 0 start',
      'write 0 end',
      'read 3',
      'write 3 start',
      'read 3',
      'write 3 end',
      'write 3 start',
      'read 1',
      'write 3 end',
      'write 1 start',
      'write 1 end',
    ]);
    expect(JSON.parse(cursorOnGlobal('Patient')!)).toEqual({ n: 7 });
  });

  it('stops at a failed commit: nothing after it is written and the cursor stays before it', async () => {
    seed(P('p1'), P('p2'), P('p3'), P('p4'), P('p5'), P('p6'));
    let transactions = 0;
    const transaction = global.transaction.bind(global);
    global.transaction = async (bundle, signal) => {
      if (++transactions === 2) {
        await new Promise((r) => setTimeout(r, 10)); // page 2 is prepared meanwhile
        global.failures.push('503');
      }
      return transaction(bundle, signal);
    };
    await expect(
      runPass(deps({ retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 } }), {
        instanceId: 'a',
        resourceType: 'Patient',
      }),
    ).rejects.toThrow();
    expect(global.get(`Patient/${ps('Patient', 'p4')}`)).toBeUndefined();
    expect(cursorOnGlobal('Patient')).toBeUndefined();
  });

  it('measures the lag as the newest change on the local minus the cursor position', async () => {
    seed(P('p1'));
    const feed = {
      kind: 'fake-ts',
      async *pages() {
        await Promise.resolve();
        // Delivered up to 09:59:30 (a key remembered inside the settle window), lo still at 09:59.
        const seen = [[Date.parse('2026-05-01T09:59:30.000Z'), ['Patient/p1/1']]];
        yield { changes, cursor: JSON.stringify({ c: 1, f: 'ts', lo: '2026-05-01T09:59:00.000Z', seen }) };
      },
      newestChangeAt: () => Promise.resolve(Date.parse('2026-05-01T10:00:30.000Z')),
    };
    const summary = await runPass(
      deps({
        openChannel: channelsOver(() => feed),
      }),
      { instanceId: 'a', resourceType: 'Patient' },
    );
    expect(summary.lagSeconds).toBe(60);
    // A feed that cannot tell (Aidbox versions, fakes): no lag rather than a made-up one.
    expect((await runPass(deps(), { instanceId: 'a', resourceType: 'Patient' })).lagSeconds).toBeUndefined();
  });

  it.each([
    ['in the returned resource only (Medplum)', true],
    ['nowhere in the answer (read back)', false],
  ])('keeps every cursor commit conditional when the new version is %s', async (_label, withResource) => {
    seed(P('p1'), P('p2'), P('p3'), P('p4'), P('p5'), P('p6'), P('p7'));
    const transaction = global.transaction.bind(global);
    const cursorWrites: (string | undefined)[] = [];
    global.transaction = async (bundle, signal) => {
      for (const e of bundle.entry ?? []) {
        if (e.request?.url === `Basic/${cursorId('forward', 'a', 'Patient')}`) {
          cursorWrites.push(e.request.ifMatch);
        }
      }
      const answer = await transaction(bundle, signal);
      const body = answer.body as Bundle;
      if (answer.status !== 200 || body.resourceType !== 'Bundle') {
        return answer;
      }
      const entry = (body.entry ?? []).map((e: BundleEntry) => {
        const version = /"(\d+)"/.exec(e.response?.etag ?? '')?.[1];
        const location = e.response?.location?.replace(/\/_history\/.*$/, '');
        return {
          ...(version === undefined || !withResource
            ? {}
            : { resource: { resourceType: 'Basic', meta: { versionId: version } } }),
          response: { status: e.response?.status ?? '200', ...(location === undefined ? {} : { location }) },
        };
      });
      return { status: 200, body: { ...body, entry } };
    };
    const summary = await runPass(deps(), { instanceId: 'a', resourceType: 'Patient' });
    expect(summary).toMatchObject({ resources: 7, pages: 3 });
    expect(JSON.parse(cursorOnGlobal('Patient')!)).toEqual({ n: 7 });
    // The creation is create-only (W/"0"), and every later commit is conditional on the version
    // the previous one made:
    // without the version, the writes fell back to unconditional PUTs.
    expect(cursorWrites).toEqual(['W/"0"', 'W/"1"', 'W/"2"', 'W/"3"']);
  });

  it('counts a delete of something the global never had as done, even when the whole transaction answers 404', async () => {
    // Medplum answers 404 for the whole transaction instead of for the entry.
    seed(P('p1'), P('p2'));
    changes.push(deleted('Patient', 'never-synced'));
    const transaction = global.transaction.bind(global);
    global.transaction = async (bundle, signal) => {
      const missing = (bundle.entry ?? []).some(
        (e) => e.request?.method === 'DELETE' && global.get(e.request.url) === undefined,
      );
      return missing
        ? { status: 404, body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] } }
        : transaction(bundle, signal);
    };
    const summary = await runPass(deps(), { instanceId: 'a', resourceType: 'Patient' });
    expect(summary).toMatchObject({ resources: 2, quarantined: 0 });
    expect(global.get(`Patient/${ps('Patient', 'p2')}`)).toBeDefined();
    expect(JSON.parse(cursorOnGlobal('Patient')!)).toEqual({ n: 3 });
  });

  it('learns a bundle cap from a refused bundle that went through split, and reports it once per page', async () => {
    // Like Medplum's cap on entries per transaction (50), here 2, against pages of 3 + the cursor.
    seed(P('p1'), P('p2'), P('p3'), P('p4'), P('p5'), P('p6'), P('p7'), P('p8'), P('p9'));
    const transaction = global.transaction.bind(global);
    global.transaction = async (bundle, signal) =>
      (bundle.entry?.length ?? 0) > 2
        ? {
            status: 400,
            body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'too-costly' }] },
          }
        : transaction(bundle, signal);
    const learned: [string, number, number][] = [];
    const summary = await runPass(
      deps({ onBundleCap: (target, refused, size) => void learned.push([target, refused, size]) }),
      { instanceId: 'a', resourceType: 'Patient' },
    );
    expect(summary).toMatchObject({ resources: 9, quarantined: 0 });
    expect(learned.length).toBeGreaterThan(0);
    expect(learned).toEqual([
      [global.base, 4, 2],
      [global.base, 4, 2],
      [global.base, 4, 2],
    ]);
  });

  it('stops with an explanation when the global refuses client-chosen ids (PUT to a new id: 404)', async () => {
    // Medplum for a client that is not a super admin: "404 Not found" and nothing more.
    seed(P('p1'));
    const transaction = global.transaction.bind(global);
    const notFound = {
      status: 404,
      body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] },
    };
    global.transaction = async (bundle, signal) =>
      (bundle.entry ?? []).some((e) => e.request?.method === 'PUT' && global.get(e.request.url) === undefined)
        ? notFound
        : transaction(bundle, signal);
    await expect(runPass(deps(), { instanceId: 'a', resourceType: 'Patient' })).rejects.toMatchObject({
      code: 'SINK_ERR_CLIENT_IDS_REFUSED',
      message: expect.stringContaining('ids chosen by the client') as unknown,
    });
    // Also when the cursor exists already and only the data is refused: no quarantine of everything.
    global.transaction = transaction;
    await runPass(deps(), { instanceId: 'a', resourceType: 'Observation' });
    global.transaction = async (bundle, signal) =>
      (bundle.entry ?? []).some((e) => e.request?.method === 'PUT' && global.get(e.request.url) === undefined)
        ? notFound
        : transaction(bundle, signal);
    seed(O('o1', 'p1'));
    changes.splice(0, changes.length, changed(O('o1', 'p1')));
    await expect(runPass(deps(), { instanceId: 'a', resourceType: 'Observation' })).rejects.toMatchObject({
      code: 'SINK_ERR_CLIENT_IDS_REFUSED',
    });
  });

  it('tries a transaction refused with 409 once more before treating it as a refusal', async () => {
    // Two channels creating the same dependency at once: HAPI answers the later one 409.
    seed(P('p1'), P('p2'));
    let transactions = 0;
    const transaction = global.transaction.bind(global);
    global.transaction = async (bundle, signal) =>
      ++transactions === 2
        ? { status: 409, body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'conflict' }] } }
        : transaction(bundle, signal);
    const summary = await runPass(deps(), { instanceId: 'a', resourceType: 'Patient' });
    expect(summary).toMatchObject({ resources: 2, quarantined: 0 });
    expect(transactions).toBe(3);
  });

  it('isolates what the server refuses (4xx) by bisecting, quarantines it, writes the rest', async () => {
    seed(...['a1', 'a2', 'a3', 'a4', 'a5'].map((id) => P(id)));
    global.refuse.add(ps('Patient', 'a4'));
    const s = await runPass(deps(), { instanceId: 'a', resourceType: 'Patient' });
    expect(s).toMatchObject({ resources: 4, quarantined: 1 });
    for (const id of ['a1', 'a2', 'a3', 'a5']) {
      expect(global.get(`Patient/${ps('Patient', id)}`)).toBeDefined();
    }
    const q = parseQuarantine(
      global.get(`Basic/${quarantineId('forward', 'a', 'Patient', ps('Patient', 'a4'))}`) as Basic,
    );
    expect(q).toMatchObject({ reasonCode: 'HAPI-1234', detail: 'HTTP 422 processing,HAPI-1234' });
    expect(JSON.parse(cursorOnGlobal('Patient')!)).toEqual({ n: 5 });
  });

  it('retries 5xx and network errors without moving the cursor, then completes', async () => {
    seed(P('p1'), P('p2'), P('p3'), P('p4'));
    global.failures.push('503', 'network');
    const s = await runPass(deps(), { instanceId: 'a', resourceType: 'Patient' });
    expect(s.resources).toBe(4);
    expect(JSON.parse(cursorOnGlobal('Patient')!)).toEqual({ n: 4 });
  });

  it('fails retryably after the last attempt; a rerun ends with exactly the expected set', async () => {
    seed(P('p1'), P('p2'), P('p3'), P('p4'), P('p5'));
    let n = 0;
    global.onTransaction = () => {
      n++;
      if (n === 3) {
        global.failures.push('503', '503', '503');
      }
    };
    await expect(runPass(deps(), { instanceId: 'a', resourceType: 'Patient' })).rejects.toMatchObject({
      code: 'SINK_ERR_UNAVAILABLE',
      retryable: true,
    });
    expect(JSON.parse(cursorOnGlobal('Patient')!)).toEqual({ n: 3 });
    global.onTransaction = undefined;
    await runPass(deps(), { instanceId: 'a', resourceType: 'Patient' });
    for (const id of ['p1', 'p2', 'p3', 'p4', 'p5']) {
      expect(global.versions(`Patient/${ps('Patient', id)}`)).toBe(1);
    }
    expect(JSON.parse(cursorOnGlobal('Patient')!)).toEqual({ n: 5 });
  });

  it('accepts its own commit when the answer was lost (412 after a retry)', async () => {
    seed(P('p1'));
    await runPass(deps(), { instanceId: 'a', resourceType: 'Patient' });
    seed(P('p2'));
    global.failures.push('commit-then-503');
    const s = await runPass(deps(), { instanceId: 'a', resourceType: 'Patient' });
    expect(s.resources).toBe(1);
    expect(JSON.parse(cursorOnGlobal('Patient')!)).toEqual({ n: 2 });
  });

  it('refuses to commit over a cursor moved by another pass', async () => {
    seed(P('p1'));
    await runPass(deps(), { instanceId: 'a', resourceType: 'Patient' });
    seed(P('p2'));
    global.onTransaction = (b) => {
      if (b.entry?.some((e) => e.request?.url === 'Patient/' + ps('Patient', 'p2'))) {
        global.onTransaction = undefined;
        const key = `Basic/${cursorId('forward', 'a', 'Patient')}`;
        global.put({ ...global.get(key)! });
      }
    };
    await expect(runPass(deps(), { instanceId: 'a', resourceType: 'Patient' })).rejects.toMatchObject({
      code: 'SYNC_ERR_CURSOR_CONFLICT',
    });
  });
});

describe('runPass (reverse)', () => {
  it('copies admin resources from the global to the local under the same id, skipping local-derived ones', async () => {
    const orgs: Change[] = [];
    const hq: Resource = {
      resourceType: 'Organization',
      id: 'hq',
      name: 'HQ',
      endpoint: [{ reference: 'Endpoint/e1' }],
      partOf: { reference: 'Organization/parent' },
    };
    global.put({ resourceType: 'Organization', id: 'parent', name: 'Parent' });
    orgs.push(
      changed(hq),
      changed({
        resourceType: 'Organization',
        id: 'copy',
        meta: { tag: [{ ...FROM_LOCAL_TAG }] },
        name: 'A clinic',
      }),
    );
    const reverseDeps = deps({
      openChannel: (req) =>
        Promise.resolve(
          reverseChannel({
            instance: config.instances[0]!,
            global: config.global,
            resourceType: req.resourceType,
            feed: arrayFeed(orgs, 5),
            local,
            globalStore: global,
          }),
        ),
    });
    const s = await runPass(reverseDeps, { instanceId: 'a', resourceType: 'Organization', direction: 'reverse' });
    expect(s).toMatchObject({ direction: 'reverse', resources: 1, skipped: 1, dependencies: 1, masked: 1 });
    const copy = local.get('Organization/hq') as Resource & { endpoint?: unknown; partOf?: unknown };
    expect(copy.meta?.tag).toContainEqual(FROM_GLOBAL_TAG);
    expect(copy.partOf).toEqual({ reference: 'Organization/parent' });
    expect(copy.endpoint).toEqual([
      { type: 'Endpoint', extension: [{ url: DATA_ABSENT_REASON, valueCode: 'masked' }] },
    ]);
    expect(local.get('Organization/parent')).toBeDefined();
    expect(local.get('Organization/copy')).toBeUndefined();
    expect(local.get(`Basic/${cursorId('reverse', 'a', 'Organization')}`)).toBeDefined();
    expect(global.get(`Basic/${cursorId('reverse', 'a', 'Organization')}`)).toBeUndefined();
    // Again: identical copies, no new versions on the local.
    orgs.push(changed(hq));
    await runPass(reverseDeps, { instanceId: 'a', resourceType: 'Organization', direction: 'reverse' });
    expect(local.versions('Organization/hq')).toBe(1);
  });
});
