/**
 * End to end through HTTP: the real service (API + worker roles, no scheduler so nothing
 * runs unless asked) against the real HAPI servers and Redis. A fresh instance id (pointing
 * at local-a) and a fresh Redis prefix keep this run apart from every other test.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Observation, Patient, Resource } from '@medplum/fhirtypes';
import { createAnonymizer, deidKeyFrom, loadRulesFile, RULES_VERSION_TAG_SYSTEM } from '../../src/anonymizer/index.ts';
import { parseDeidKeyEnv } from '../../src/shared/env.ts';
import type { Anonymizer } from '../../src/anonymizer/index.ts';
import { startService } from '../../src/main.ts';
import type { RunningService } from '../../src/main.ts';
import { fhirUrls } from '../servers/urls.ts';
import { sealingCodec } from '../../src/sync/index.ts';
import { primeCursors, storeAt } from '../sync/live.ts';

const OPERATOR = `op-${randomBytes(12).toString('hex')}`;
const COMPLIANCE = `co-${randomBytes(12).toString('hex')}`;
const run = randomBytes(4).toString('hex');
const INSTANCE = `apiit-${run}`;
const ids = {
  p1: `apiit-${run}-p1`,
  p2: `apiit-${run}-p2`,
  o1: `apiit-${run}-o1`,
  o2: `apiit-${run}-o2`,
  e1: `apiit-${run}-e1`,
};
const FAMILY = `Zyxwvutski${run}`;

interface Job {
  state: string;
  progress: { pages: number; resources: number; deletes: number; quarantined: number };
}

describe('API end to end against the HAPI servers', () => {
  let service: RunningService;
  let dir: string;
  let env: Record<string, string>;
  let oracle: Anonymizer;
  const urls = (): ReturnType<typeof fhirUrls> => fhirUrls();

  const api = async (
    method: string,
    path: string,
    token: string,
    body?: unknown,
    type = 'application/json',
  ): Promise<Response> =>
    fetch(`${service.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': type } : {}) },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
  const put = async (base: string, resource: Resource & { id: string }): Promise<void> => {
    const res = await fetch(`${base}/${resource.resourceType}/${resource.id}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify(resource),
    });
    expect(res.status, `PUT ${resource.resourceType}`).toBeLessThan(300);
  };
  const onGlobal = async (type: string, localId: string): Promise<Resource | undefined> => {
    const res = await fetch(`${urls().global}/${type}/${oracle.pseudonymousId(INSTANCE, type, localId)}`);
    return res.status === 200 ? ((await res.json()) as Resource) : undefined;
  };
  const count = async (base: string, type: string): Promise<number> =>
    ((await (await fetch(`${base}/${type}?_summary=count`)).json()) as { total: number }).total;
  const syncNow = async (type: string): Promise<Job> => {
    const res = await api('POST', `/sync/${INSTANCE}/${type}`, OPERATOR);
    expect(res.status).toBe(202);
    const { statusUrl } = (await res.json()) as { statusUrl: string };
    for (let i = 0; i < 240; i++) {
      const job = (await (await api('GET', statusUrl, OPERATOR)).json()) as Job;
      if (job.state === 'completed' || job.state === 'failed') {
        return job;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error('job did not finish in 60 s');
  };
  const patient = (id: string, given: string): Patient & { id: string } => ({
    resourceType: 'Patient',
    id,
    name: [{ family: FAMILY, given: [given] }],
    birthDate: '1961-07-04',
    gender: 'female',
  });
  const observation = (id: string): Observation & { id: string } => ({
    resourceType: 'Observation',
    id,
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }] },
    subject: { reference: `Patient/${ids.p1}` },
    valueQuantity: { value: 72, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
    note: [{ text: `Seen with ${FAMILY}, calm.` }],
  });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'api-int-'));
    const base = (u: string): string => u.replace(/fhir\/?$/, '');
    await writeFile(
      join(dir, 'instances.yaml'),
      [
        'version: 1',
        'global:',
        `  baseUrl: ${base(urls().global)}`,
        '  fhirUrlPath: fhir',
        '  auth: { type: none }',
        '  adminTypes: [Organization, Location]',
        'instances:',
        `  - id: ${INSTANCE}`,
        `    baseUrl: ${base(urls().localA)}`,
        '    fhirUrlPath: fhir',
        '    auth: { type: none }',
        '    feed: { kind: fhir-history }',
        '    sendTypes: [Patient, Observation, Encounter]',
        "    schedule: '0 0 1 1 *'",
        '',
      ].join('\n'),
    );
    await copyFile('config/anonymization.yaml', join(dir, 'anonymization.yaml'));
    env = {
      API_KEYS: `ops:operator+viewer:${OPERATOR},rules:compliance:${COMPLIANCE}`,
      DEID_HMAC_KEY: `hex:${randomBytes(32).toString('hex')}`,
      DEID_HMAC_KEY_ID: `it-${run}`,
      API_HOST: '127.0.0.1',
      API_PORT: '0',
      FHIR_SYNC_ROLES: 'api,worker',
      FHIR_SYNC_INSTANCES: join(dir, 'instances.yaml'),
      FHIR_SYNC_REDIS_PREFIX: `fhir-sync-apiit-${run}`,
      RULES_FILE: join(dir, 'anonymization.yaml'),
      RULES_VERSIONS_DIR: join(dir, 'versions'),
      RULES_WATCH_MS: '0',
      // Saves are in use at once here; four-eyes approval is tested by the web app's test.
      RULES_APPROVAL: 'one-step',
      ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : {}),
    };
    const key = deidKeyFrom(parseDeidKeyEnv(env));
    oracle = createAnonymizer({ rules: loadRulesFile(env.RULES_FILE!), key });
    // Start this instance's cursors just before its own writes, so its passes read what this
    // test wrote and not local-a's whole history (other test files load data there too).
    await primeCursors(
      storeAt(urls().global),
      sealingCodec(key.secret, key.id),
      INSTANCE,
      ['Patient', 'Observation', 'Encounter'],
      new Date(Date.now() - 2000),
    );
    service = await startService({ env, logger: pino({ level: 'warn' }) });
    await put(urls().localA, patient(ids.p1, 'Ida'));
    await put(urls().localA, patient(ids.p2, 'Una'));
    await put(urls().localA, observation(ids.o1));
    await put(urls().localA, {
      resourceType: 'Encounter',
      id: ids.e1,
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
      subject: { reference: `Patient/${ids.p2}` },
    });
  }, 120_000);

  afterAll(async () => {
    await service?.close();
    // Drop this run's queue, locks and status keys.
    const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    const keys = await redis.keys(`${env.FHIR_SYNC_REDIS_PREFIX}*`);
    if (keys.length > 0) {
      await redis.del(...keys);
    }
    redis.disconnect();
  });

  it('moves exactly the type asked for, and status, metrics and audit reflect the pass', async () => {
    const statusCursor = async (t: string): Promise<string | undefined> =>
      (
        (await (await api('GET', '/status', OPERATOR)).json()) as {
          types: { instanceId: string; resourceType: string; cursor?: string }[];
        }
      ).types.find((s) => s.instanceId === INSTANCE && s.resourceType === t)?.cursor;
    const encounterCursorBefore = await statusCursor('Encounter');
    const observationCursorBefore = await statusCursor('Observation');
    const job = await syncNow('Observation');
    expect(job.state).toBe('completed');
    expect(job.progress.resources).toBeGreaterThanOrEqual(1);

    const obs = (await onGlobal('Observation', ids.o1)) as Observation | undefined;
    expect(obs).toBeDefined();
    expect(JSON.stringify(obs)).not.toContain(FAMILY);
    expect(obs?.valueQuantity?.value).toBe(72);
    // Not asked for and not referenced by what was: stays on the local.
    expect(await onGlobal('Patient', ids.p2)).toBeUndefined();
    expect(await onGlobal('Encounter', ids.e1)).toBeUndefined();

    const status = (await (await api('GET', '/status', OPERATOR)).json()) as {
      types: {
        instanceId: string;
        resourceType: string;
        cursor?: string;
        lastPassAt?: string;
        lastPassResult?: string;
      }[];
    };
    const line = (t: string): (typeof status.types)[number] | undefined =>
      status.types.find((s) => s.instanceId === INSTANCE && s.resourceType === t);
    expect(line('Observation')).toMatchObject({ lastPassResult: 'ok' });
    expect(line('Observation')?.cursor).toBeDefined();
    expect(line('Observation')?.lastPassAt).toBeDefined();
    expect(line('Observation')?.cursor).not.toBe(observationCursorBefore);
    expect(line('Encounter')?.lastPassAt).toBeUndefined();
    // The Encounter cursor (primed before the test's writes) did not move.
    expect(line('Encounter')?.cursor).toBe(encounterCursorBefore);

    const metrics = await (await api('GET', '/metrics', OPERATOR)).text();
    const labels = `instance="${INSTANCE}",resource_type="Observation",direction="forward"`;
    expect(metrics).toMatch(new RegExp(`fhir_sync_passes_total\\{${labels},result="ok"\\} 1\\b`));
    expect(metrics).toMatch(new RegExp(`fhir_sync_resources_total\\{${labels}\\} [1-9]`));
    expect(metrics).toContain(`fhir_sync_lag_seconds{${labels}}`);
    expect(metrics).not.toContain(`instance="${INSTANCE}",resource_type="Encounter"`);
    expect(metrics).not.toContain(FAMILY);

    const audit = await fetch(
      `${urls().global}/AuditEvent?subtype=urn:fhir-sync:audit|sync.trigger&_count=200&_sort=-_lastUpdated`,
    );
    const events = JSON.stringify(await audit.json());
    expect(events).toContain(INSTANCE);
  });

  it('refuses a bad rules file with its line; the old rules keep working', async () => {
    const before = await (await api('GET', '/rules', COMPLIANCE)).text();
    const lines = before.split('\n');
    const at = lines.findIndex((l) => /^\s+method:/.test(l));
    lines[at] = lines[at]!.replace(/method: \S+/, 'method: scramble');
    const res = await api('PUT', '/rules', COMPLIANCE, lines.join('\n'), 'application/yaml');
    expect(res.status).toBe(422);
    const problem = (await res.json()) as { code: string; errors: { line: number; column: number }[] };
    expect(problem.code).toBe('API_ERR_RULES_INVALID');
    expect(problem.errors[0]).toMatchObject({ line: at + 1 });
    expect(await readFile(env.RULES_FILE!, 'utf8')).toBe(before);

    await put(urls().localA, observation(ids.o2));
    expect((await syncNow('Observation')).state).toBe('completed');
    const obs = await onGlobal('Observation', ids.o2);
    expect(obs?.meta?.tag).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ system: RULES_VERSION_TAG_SYSTEM, code: oracle.rulesVersion }),
      ]),
    );
    expect(JSON.stringify(obs)).not.toContain(FAMILY);
  });

  it('previews a change without writing anything anywhere', async () => {
    const rules = await (await api('GET', '/rules', COMPLIANCE)).text();
    const draft = rules.replace(
      /^rules:\n/m,
      'rules:\n  - name: keep-birth-date\n    select: { path: "$.birthDate", in: [Patient] }\n    method: keep\n',
    );
    const counts = async (): Promise<number[]> =>
      Promise.all([
        count(urls().global, 'Patient'),
        count(urls().localA, 'Patient'),
        count(urls().global, 'AuditEvent'),
      ]);
    const before = { counts: await counts(), files: await readdir(dir, { recursive: true }) };
    const res = await api('POST', '/rules/preview', COMPLIANCE, { resource: patient(ids.p1, 'Ida'), rules: draft });
    expect(res.status).toBe(200);
    const preview = (await res.json()) as { outcomes: { resource: Patient }[] };
    expect(preview.outcomes[0]?.resource.birthDate).toBe('1961-07-04');
    expect(JSON.stringify(preview)).not.toContain(FAMILY);
    expect({ counts: await counts(), files: await readdir(dir, { recursive: true }) }).toEqual(before);
    expect(await readFile(env.RULES_FILE!, 'utf8')).toBe(rules);
  });

  it('a newly accepted rules version is used by the running workers', async () => {
    const rules = await (await api('GET', '/rules', COMPLIANCE)).text();
    const edited = rules.replace(
      /^rules:\n/m,
      'rules:\n  - name: keep-heart-rate-unit\n    select: { path: "$.valueQuantity.unit", in: [Observation] }\n    method: keep\n',
    );
    const res = await api('PUT', '/rules', COMPLIANCE, edited, 'application/yaml');
    expect(res.status, await res.clone().text()).toBe(200);
    const accepted = (await res.json()) as { rulesVersion: string; author: string };
    expect(accepted.author).toBe('rules');
    expect(accepted.rulesVersion).not.toBe(oracle.rulesVersion);

    const o3 = `apiit-${run}-o3`;
    await put(urls().localA, observation(o3));
    expect((await syncNow('Observation')).state).toBe('completed');
    const obs = await onGlobal('Observation', o3);
    expect(obs?.meta?.tag).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ system: RULES_VERSION_TAG_SYSTEM, code: accepted.rulesVersion }),
      ]),
    );
  });
});
