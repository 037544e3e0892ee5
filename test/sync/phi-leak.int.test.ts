/**
 * PHI never leaves the local side in clear, end to end: two Synthea patients, a Patient that
 * fails de-identification (a reference the rules cannot pseudonymise; DEID_ERR_REFERENCE)
 * and an Observation the global server refuses (it points at a "global-owned" Organization
 * the global does not have: HTTP 400) go through the real service (API + worker roles,
 * bullmq in Redis, real HAPI servers). Then every output is collected: each log line (pino
 * at trace), every Redis key and value under the run's prefix (job data, progress, return
 * values, failed reasons, locks, status), the API's /metrics, /status, /jobs/{id},
 * /quarantine and /instances answers, the AuditEvents and engine state records (cursors,
 * quarantine) on the global server, and every resource written there. None may contain any
 * identifying string of the input Patients, nor a local resource id (see phi-scan.ts for the
 * needles and their length threshold).
 *
 * Why not an element R4 does not define (`unknownElements: fail`): HAPI drops unknown
 * elements when it stores a resource, so such a resource cannot come out of a HAPI local.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bundle, Patient, Resource } from '@medplum/fhirtypes';
import { createAnonymizer, deidKeyFrom, loadRulesFile } from '../../src/anonymizer/index.ts';
import { parseDeidKeyEnv } from '../../src/shared/env.ts';
import type { Anonymizer } from '../../src/anonymizer/index.ts';
import { startService } from '../../src/main.ts';
import type { RunningService } from '../../src/main.ts';
import { FROM_GLOBAL_TAG } from '../../src/sync/index.ts';
import { fhirUrls } from '../servers/urls.ts';
import { FIXTURES, fixture, loadBundle, serviceFiles, waitFor } from './live.ts';
import { dumpRedis, needlesOf, scan } from './phi-scan.ts';
import type { Needle, Section } from './phi-scan.ts';

const run = randomBytes(4).toString('hex');
const INSTANCE = `phileak-${run}`;
const PREFIX = `fhir-sync-phileak-${run}`;
const OPERATOR = `op-${randomBytes(12).toString('hex')}`;
const TYPES = ['Patient', 'Encounter', 'Condition', 'Observation', 'Immunization'] as const;
/** Local ids of the two extra resources (client-chosen, so they are needles too). */
const BAD_PATIENT = `lp${run}bad`;
const REFUSED_OBS = `lo${run}refused`;
/** Global-owned Organization (id kept on the global by design, so not a needle). */
const GLOBAL_ORG = `go${run}`;

interface Job {
  id: string;
  state: string;
  progress?: { resources: number; quarantined: number };
}

describe('PHI leak: nothing identifying leaves the local side', () => {
  const urls = fhirUrls();
  const logLines: string[] = [];
  const sections: Section[] = [];
  const jobs: Job[] = [];
  let service: RunningService;
  let oracle: Anonymizer;
  let needles: Needle[] = [];
  const localIds: { type: string; id: string }[] = [];
  let luigiPatientId: string;
  let redis: Redis;
  /** Lower bound of the global's records of this run (AuditEvents, state records). */
  const jobsStart = new Date(Date.now() - 60_000).toISOString();

  const api = async (method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${service.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${OPERATOR}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  const keep = async (name: string, res: Response | Promise<Response>): Promise<string> => {
    const text = await (await res).text();
    sections.push({ name, text });
    return text;
  };
  const put = async (resource: Resource & { id: string }): Promise<void> => {
    const res = await fetch(`${urls.localA}/${resource.resourceType}/${resource.id}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify(resource),
    });
    expect(res.status, `PUT ${resource.resourceType}`).toBeLessThan(300);
  };
  const awaitJob = async (statusUrl: string): Promise<Job> => {
    let job: Job | undefined;
    await waitFor(
      async () => {
        job = (await (await api('GET', statusUrl)).json()) as Job;
        return job.state === 'completed' || job.state === 'failed';
      },
      90_000,
      `job ${statusUrl}`,
    );
    sections.push({ name: `GET ${statusUrl}`, text: JSON.stringify(job) });
    return job!;
  };

  beforeAll(async () => {
    const { env } = await serviceFiles({
      name: 'phi-leak',
      globalBase: urls.global,
      globalLines: ['  bundleSize: 50', '  adminTypes: [Organization, Location]'],
      instanceId: INSTANCE,
      localBase: urls.localA,
      sendTypes: TYPES,
      instanceLines: ['    references: { unsynced: mask, localOnlyAdmin: mask }'],
      apiKeys: `ops:operator+viewer:${OPERATOR}`,
      env: { DEID_HMAC_KEY_ID: `phi-${run}`, FHIR_SYNC_REDIS_PREFIX: PREFIX },
    });
    oracle = createAnonymizer({ rules: loadRulesFile(env.RULES_FILE!), key: deidKeyFrom(parseDeidKeyEnv(env)) });
    const sink = new Writable({
      write(chunk: Buffer, _enc, done): void {
        logLines.push(
          ...chunk
            .toString('utf8')
            .split('\n')
            .filter((l) => l.length > 0),
        );
        done();
      },
    });
    service = await startService({ env, logger: pino({ level: 'trace' }, sink) });
    redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');

    const since = new Date(Date.now() - 1000).toISOString();
    const bundles: Bundle[] = [await fixture(FIXTURES.luigi), await fixture(FIXTURES.buster)];
    for (const b of bundles) {
      for (const [type, ids] of await loadBundle(urls.localA, b)) {
        localIds.push(...ids.map((id) => ({ type, id })));
      }
    }
    const luigi = bundles[0]!.entry!.find((e) => e.resource?.resourceType === 'Patient')!.resource as Patient;
    luigiPatientId = localIds.filter((x) => x.type === 'Patient')[0]!.id;
    const mrn = luigi.identifier!.find((i) => i.type?.coding?.[0]?.code === 'MR')!.value!;
    // Fails de-identification: a reference the rules cannot pseudonymise, carrying the MRN.
    await put({
      ...luigi,
      id: BAD_PATIENT,
      extension: [
        ...(luigi.extension ?? []),
        { url: 'http://example.org/fhir/StructureDefinition/referrer', valueReference: { reference: `Zzzq/${mrn}` } },
      ],
    });
    // Refused by the global: a "global-owned" Organization (from-global mark) it does not have.
    await put({
      resourceType: 'Organization',
      id: GLOBAL_ORG,
      meta: { tag: [{ ...FROM_GLOBAL_TAG }] },
      name: 'Pushed-down clinic',
    });
    const telecom = luigi.telecom?.[0]?.value ?? '';
    await put({
      resourceType: 'Observation',
      id: REFUSED_OBS,
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }] },
      subject: { reference: `Patient/${luigiPatientId}` },
      performer: [{ reference: `Organization/${GLOBAL_ORG}` }],
      valueQuantity: { value: 72, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
      note: [{ text: `Called ${luigi.name?.[0]?.family ?? ''} at ${telecom}` }],
    });
    localIds.push({ type: 'Patient', id: BAD_PATIENT }, { type: 'Observation', id: REFUSED_OBS });
    needles = needlesOf(
      bundles,
      localIds.map((x) => ({ id: x.id, origin: `local id ${x.type}` })),
    );

    await new Promise((r) => setTimeout(r, 1500)); // past the feed's settle window
    for (const type of TYPES) {
      const res = await api('POST', `/sync/${INSTANCE}/${type}`, { since });
      const text = await keep(`POST /sync/${INSTANCE}/${type}`, Promise.resolve(res));
      expect(res.status, text).toBe(202);
      jobs.push({ ...(await awaitJob((JSON.parse(text) as { statusUrl: string }).statusUrl)) });
    }
    // A retry of the quarantine while the causes remain: the failure paths run a second time.
    const retry = await api('POST', '/quarantine/retry', { instanceId: INSTANCE });
    const retryText = await keep('POST /quarantine/retry', Promise.resolve(retry));
    expect(retry.status, retryText).toBe(202);
    jobs.push(await awaitJob((JSON.parse(retryText) as { statusUrl: string }).statusUrl));
    await hostileRequests(luigi);
    await collect();
  }, 300_000);

  /**
   * Requests carrying PHI in their bodies and query strings (most are refused; a well-formed
   * but unknown resourceType filter just finds nothing): the answers, the request logs and
   * the audit trail must not echo the values.
   */
  async function hostileRequests(luigi: Patient): Promise<void> {
    const ssn = luigi.identifier!.find((i) => i.type?.coding?.[0]?.code === 'SS')!.value!;
    const family = luigi.name![0]!.family!;
    const maiden = luigi.extension!.find((e) => e.url.endsWith('mothersMaidenName'))!.valueString!;
    const phone = luigi.telecom![0]!.value!;
    const refused: [string, string, unknown][] = [
      ['POST', `/sync/${INSTANCE}/Patient`, { since: ssn }],
      ['POST', `/sync/${INSTANCE}/Patient`, { since: new Date().toISOString(), note: family }],
      ['POST', `/sync/${INSTANCE}/Patient`, { versionRange: { lower: phone } }],
      ['GET', `/quarantine?instanceId=${encodeURIComponent(maiden)}`, undefined],
      ['GET', `/quarantine?resourceType=${encodeURIComponent(family)}`, undefined],
      ['POST', '/quarantine/retry', { instanceId: INSTANCE, ids: [{ family }] }],
    ];
    for (const [method, path, body] of refused) {
      const res = await api(method, path, body);
      const text = await keep(`hostile ${method} ${path.split('?')[0]!}`, Promise.resolve(res));
      expect(res.status, `${method} ${path}: ${text}`).toBeLessThan(500);
    }
  }

  /** Every output the run produced, as named text sections. */
  async function collect(): Promise<void> {
    await keep('GET /metrics', api('GET', '/metrics'));
    await keep('GET /status', api('GET', '/status'));
    await keep('GET /quarantine', api('GET', `/quarantine?instanceId=${INSTANCE}`));
    await keep('GET /instances', api('GET', '/instances'));
    await keep(`GET /instances/${INSTANCE}`, api('GET', `/instances/${INSTANCE}`));
    for (const j of jobs) {
      await keep(`GET /jobs/${j.id}`, api('GET', `/jobs/${encodeURIComponent(j.id)}`));
    }
    sections.push(...(await dumpRedis(redis, PREFIX)));
    // On the global: every resource written for the inputs (under its pseudonym) ...
    for (const { type, id } of localIds) {
      const res = await fetch(`${urls.global}/${type}/${oracle.pseudonymousId(INSTANCE, type, id)}`);
      if (res.status === 200) {
        sections.push({ name: `global ${type} from local ${type}`, text: await res.text() });
      }
    }
    // ... the engine's state records (cursors, quarantine) and the audit trail of this run.
    const searchAll = async (query: string): Promise<Resource[]> => {
      const out: Resource[] = [];
      let next: string | undefined = `${urls.global}/${query}`;
      while (next !== undefined) {
        const page = (await (await fetch(next, { headers: { 'cache-control': 'no-cache' } })).json()) as Bundle;
        out.push(...(page.entry ?? []).flatMap((e) => (e.resource ? [e.resource] : [])));
        next = page.link?.find((l) => l.relation === 'next')?.url;
      }
      return out;
    };
    const state = await searchAll(`Basic?_tag=urn:fhir-sync|sync-state&_count=500&_lastUpdated=ge${jobsStart}`);
    const audit = (await searchAll(`AuditEvent?_count=500&_lastUpdated=ge${jobsStart}`)).filter((a) =>
      JSON.stringify(a).includes(INSTANCE),
    );
    sections.push(...state.map((r) => ({ name: `global Basic/${r.id}`, text: JSON.stringify(r) })));
    sections.push(...audit.map((r) => ({ name: `global AuditEvent/${r.id}`, text: JSON.stringify(r) })));
    sections.push({ name: 'logs', text: logLines.join('\n') });
    if (process.env.PHI_LEAK_DUMP !== undefined) {
      // Debugging aid: every collected section, one file each.
      await mkdir(process.env.PHI_LEAK_DUMP, { recursive: true });
      for (const [i, s] of sections.entries()) {
        await writeFile(join(process.env.PHI_LEAK_DUMP, `${String(i).padStart(4, '0')}.txt`), `${s.name}\n${s.text}`);
      }
    }
  }
  afterAll(async () => {
    await service?.close();
    // The deliberately broken resources stay on local-a otherwise, and any later test that
    // reads local-a's history from an earlier point would quarantine them too.
    for (const [type, id] of [
      ['Observation', REFUSED_OBS],
      ['Patient', BAD_PATIENT],
      ['Organization', GLOBAL_ORG],
    ] as const) {
      await fetch(`${urls.localA}/${type}/${id}`, { method: 'DELETE' });
    }
    if (redis !== undefined) {
      const keys = await redis.keys(`${PREFIX}*`);
      if (keys.length > 0) {
        await redis.del(...keys);
      }
      redis.disconnect();
    }
  });

  it('ran the real thing: data reached the global, both failure paths were taken', () => {
    expect(jobs.slice(0, TYPES.length).map((j) => j.state)).toEqual(TYPES.map(() => 'completed'));
    expect(sections.some((s) => s.name === 'global Patient from local Patient')).toBe(true);
    const quarantine = JSON.parse(sections.find((s) => s.name === 'GET /quarantine')!.text) as {
      items: { resourceType: string; reasonCode: string }[];
    };
    const reasons = quarantine.items.map((i) => `${i.resourceType} ${i.reasonCode}`).sort();
    expect(reasons).toContain('Patient DEID_ERR_REFERENCE');
    expect(reasons.some((r) => /^Observation (?!DEID_ERR_)/.test(r))).toBe(true);
    expect(logLines.length).toBeGreaterThan(20);
    expect(logLines.filter((l) => /"quarantined":[1-9].*"pass finished"/.test(l)).length).toBeGreaterThanOrEqual(2);
    expect(sections.filter((s) => s.name.startsWith('hostile ')).length).toBe(6);
    expect(sections.filter((s) => s.name.startsWith('redis ')).length).toBeGreaterThan(3);
    expect(sections.some((s) => s.name.startsWith('global AuditEvent/'))).toBe(true);
    expect(sections.some((s) => s.name.startsWith('global Basic/'))).toBe(true);
  });

  it('the scanner finds a needle planted anywhere in a copy of the collected text', () => {
    expect(needles.length).toBeGreaterThan(20);
    for (const n of needles) {
      const target = sections[Math.floor(Math.random() * sections.length)]!;
      const mid = Math.floor(target.text.length / 2);
      const planted = {
        name: target.name,
        // Spaced: a needle of digits counts only where it stands alone (not inside a timestamp).
        text: `${target.text.slice(0, mid)} ${n.value.toUpperCase()} ${target.text.slice(mid)}`,
      };
      expect(scan([planted], [n]).length, n.value).toBe(1);
      expect(scan([{ name: 'json', text: JSON.stringify({ v: n.value }) }], [n]).length).toBe(1);
      expect(scan([{ name: 'url', text: `/x?q=${encodeURIComponent(n.value)}` }], [n]).length).toBe(1);
    }
    const zip = { value: '01002', origin: 'postalCode' };
    expect(scan([{ name: 'log', text: '{"time":1796472010027}' }], [zip])).toEqual([]);
    expect(scan([{ name: 'id', text: '"id":"f9c01002-e1b3-5f4e-ab38-6355476f629a"' }], [zip])).toEqual([]);
    expect(scan([{ name: 'log', text: 'zip 01002-1234' }], [zip])).toHaveLength(1);
    // The kinds of needles the brief names are all there.
    const origins = needles.map((n) => n.origin).join('\n');
    for (const kind of [
      '.name.given',
      '.name.family',
      'identifier[SS]',
      'identifier[MR]',
      'identifier[DL]',
      'identifier[PPN]',
      '.telecom.phone',
      '.address.line',
      '.address.city',
      '.address.postalCode',
      '.birthDate',
      'local id Patient',
      'mothersMaidenName',
    ]) {
      expect(origins, kind).toContain(kind);
    }
  });

  it('no needle appears in any output', () => {
    const hits = scan(sections, needles);
    expect(
      hits.map((h) => `${h.needle.value} (${h.needle.origin}) in ${h.section}: …${h.excerpt}…`),
      `${sections.length} sections, ${needles.length} needles`,
    ).toEqual([]);
  });
});
