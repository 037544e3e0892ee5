/**
 * `npm run demo`: the whole service on this machine in a few minutes. With Redis running,
 * it starts (or reuses) the HAPI FHIR test servers (local-c, without _history, is started too but not used here), loads a few Synthea patients into
 * the two locals, starts the service (API + worker) in this process, pushes the global's
 * admin Organization down to the locals (reverse channel), syncs every configured type of
 * both locals through the HTTP API, and prints a short report: counts, one Patient before
 * and after de-identification, and the lag per type. The servers stay up afterwards
 * (`npm run servers:stop` stops them).
 *
 * The de-identification key is DEID_HMAC_KEY when set, else a demo key kept in
 * data/demo/hmac.key (git-ignored), so pseudonyms stay the same from one run to the next.
 * Synthea data is synthetic: printing the "before" Patient shows no real person.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import type { Bundle, Organization, Patient } from '@medplum/fhirtypes';
import { createAnonymizer, deidKeyFrom, loadRulesFile } from '../src/anonymizer/index.ts';
import { parseDeidKeyEnv } from '../src/shared/env.ts';
import { startService } from '../src/main.ts';
import type { RunningService } from '../src/main.ts';
import { startServers } from '../test/servers/servers.ts';
import type { FhirServerUrls } from '../test/servers/servers.ts';

const DEMO_DIR = 'data/demo';
const SEND_TYPES = [
  'Patient',
  'Encounter',
  'Condition',
  'Observation',
  'Procedure',
  'Immunization',
  'MedicationRequest',
  'DiagnosticReport',
  'CarePlan',
];
const ADMIN_TYPES = ['Organization', 'Location'];
const PATIENTS = {
  'local-a': ['test/fixtures/sync/Luigi_Wiegand_e27d88b0-c5e5-4042-ad49-184f6a900ee3.json'],
  'local-b': [
    'test/fixtures/sync/Buster_Hoeger_ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423.json',
    'test/fixtures/sync/Liz_Conn_27c911c6-f045-4ffa-af5d-6eba57ac94b2.json',
  ],
} as const;
const HQ_ORG_ID = 'demo-hq-network';

type Env = Record<string, string | undefined>;
interface Job {
  state: string;
  progress: { pages: number; resources: number; deletes: number; quarantined: number };
  failedCode?: string;
}
interface TypeLine {
  instanceId: string;
  resourceType: string;
  lagSeconds?: number;
  lastPassAt?: string;
  lastPassResult?: string;
}

const out = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};

async function checkRedis(url: string): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

async function demoKey(env: Env): Promise<Env> {
  if (env.DEID_HMAC_KEY || env.DEID_HMAC_KEY_FILE) {
    return {};
  }
  const file = join(DEMO_DIR, 'hmac.key');
  let key = await readFile(file, 'utf8').catch(() => undefined);
  if (key === undefined) {
    key = `hex:${randomBytes(32).toString('hex')}`;
    await writeFile(file, key, { mode: 0o600 });
  }
  out(`  key: the demo key in ${file} (set DEID_HMAC_KEY to use your own)`);
  return { DEID_HMAC_KEY: key.trim(), DEID_HMAC_KEY_ID: 'demo' };
}

async function writeInstances(urls: FhirServerUrls): Promise<string> {
  const root = (u: string): string => u.replace(/fhir\/?$/, '');
  const local = (id: string, base: string): string[] => [
    `  - id: ${id}`,
    `    baseUrl: ${root(base)}`,
    '    fhirUrlPath: fhir',
    '    auth: { type: none }',
    '    feed: { kind: fhir-history }',
    `    sendTypes: [${SEND_TYPES.join(', ')}]`,
    `    receiveAdminTypes: [${ADMIN_TYPES.join(', ')}]`,
    "    schedule: '*/5 * * * *'",
  ];
  const text = [
    '# Written by npm run demo: the test servers as one global and two locals.',
    'version: 1',
    'global:',
    `  baseUrl: ${root(urls.global)}`,
    '  fhirUrlPath: fhir',
    '  auth: { type: none }',
    `  adminTypes: [${ADMIN_TYPES.join(', ')}]`,
    'instances:',
    ...local('local-a', urls.localA),
    ...local('local-b', urls.localB),
    '',
  ].join('\n');
  const file = join(DEMO_DIR, 'instances.yaml');
  await writeFile(file, text);
  return file;
}

/** POSTs a Synthea transaction bundle; returns the local id of its Patient. */
async function loadBundle(base: string, file: string): Promise<{ patientId: string; entries: number }> {
  const bundle = JSON.parse(await readFile(file, 'utf8')) as Bundle;
  const res = await fetch(base, {
    method: 'POST',
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify(bundle),
  });
  if (!res.ok) {
    throw new Error(`loading ${file} answered ${res.status}`);
  }
  const answer = (await res.json()) as Bundle;
  const location = answer.entry?.map((e) => e.response?.location ?? '').find((l) => l.startsWith('Patient/'));
  return { patientId: location?.split('/')[1] ?? '', entries: bundle.entry?.length ?? 0 };
}

async function putHqOrganization(globalBase: string): Promise<void> {
  const org: Organization = {
    resourceType: 'Organization',
    id: HQ_ORG_ID,
    active: true,
    name: `Demo Health Network (HQ), ${new Date().toISOString().slice(0, 16)}`,
    type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/organization-type', code: 'prov' }] }],
  };
  const res = await fetch(`${globalBase}/Organization/${HQ_ORG_ID}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify(org),
  });
  if (!res.ok) {
    throw new Error(`writing the HQ Organization answered ${res.status}`);
  }
}

function apiClient(service: RunningService, token: string) {
  return async <T>(method: string, path: string): Promise<T> => {
    const res = await fetch(`${service.url}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
    const body = (await res.json()) as T & { detail?: string; code?: string };
    if (!res.ok) {
      throw new Error(`${method} ${path}: ${res.status} ${body.code ?? ''} ${body.detail ?? ''}`);
    }
    return body;
  };
}

async function syncType(
  call: ReturnType<typeof apiClient>,
  instanceId: string,
  type: string,
): Promise<Job & { ms: number }> {
  const started = Date.now();
  const { statusUrl } = await call<{ statusUrl: string }>('POST', `/sync/${instanceId}/${type}`);
  for (;;) {
    const job = await call<Job>('GET', statusUrl);
    if (job.state === 'completed' || job.state === 'failed') {
      return { ...job, ms: Date.now() - started };
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}

function brief(p: Patient | undefined): string {
  if (!p) {
    return '  (not found)';
  }
  const pick = {
    id: p.id,
    name: p.name,
    birthDate: p.birthDate,
    gender: p.gender,
    address: p.address,
    telecom: p.telecom,
    identifier: p.identifier?.map((i) => ({ system: i.system, value: i.value })),
    'meta.tag': p.meta?.tag,
  };
  return JSON.stringify(pick, null, 2)
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

async function main(): Promise<number> {
  const env: Env = { ...process.env };
  const redisUrl = env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  out('fhir-sync demo');
  out(`1. Redis at ${redisUrl}`);
  if (!(await checkRedis(redisUrl))) {
    out('   Redis does not answer. Start it (e.g. `redis-server --daemonize yes`) or set REDIS_URL, then run again.');
    return 1;
  }
  out('2. HAPI FHIR test servers (the first start builds them: several minutes)');
  const t0 = Date.now();
  const { urls, started } = await startServers({ owner: 'cli', log: (line) => out(`   ${line}`) });
  out(
    `   ${started.length === 0 ? 'reused running servers' : `started ${started.join(', ')}`} in ${Math.round((Date.now() - t0) / 1000)} s`,
  );

  await mkdir(DEMO_DIR, { recursive: true });
  await writeFile(join(DEMO_DIR, '.gitignore'), '*\n');
  out('3. Synthea patients into the locals');
  const before: { instanceId: string; patientId: string }[] = [];
  for (const [instanceId, files] of Object.entries(PATIENTS)) {
    const base = instanceId === 'local-a' ? urls.localA : urls.localB;
    for (const file of files) {
      const loaded = await loadBundle(base, file);
      before.push({ instanceId, patientId: loaded.patientId });
      out(`   ${instanceId}: ${loaded.entries} resources (Patient/${loaded.patientId})`);
    }
  }
  await putHqOrganization(urls.global);
  out(`   global: Organization/${HQ_ORG_ID} (admin data owned by headquarters)`);

  out('4. The service (API + worker) in this process');
  const token = randomBytes(24).toString('hex');
  const serviceEnv: Env = {
    ...env,
    ...(await demoKey(env)),
    API_KEYS: `demo:operator+viewer+compliance:${token}`,
    API_HOST: '127.0.0.1',
    API_PORT: '0',
    FHIR_SYNC_ROLES: 'api,worker',
    FHIR_SYNC_INSTANCES: await writeInstances(urls),
    RULES_WATCH_MS: '0',
  };
  const service = await startService({
    env: serviceEnv,
    logger: pino({ level: env.LOG_LEVEL ?? 'warn' }, pino.destination(2)),
  });
  try {
    return await runDemo(service, token, serviceEnv, urls, before);
  } finally {
    await service.close();
  }
}

async function runDemo(
  service: RunningService,
  token: string,
  env: Env,
  urls: FhirServerUrls,
  before: readonly { instanceId: string; patientId: string }[],
): Promise<number> {
  const call = apiClient(service, token);
  out(
    `   API at ${service.url} (OpenAPI at ${service.url}/docs), rules version ${service.rules.current().rulesVersion}`,
  );
  out('5. Reverse push: global admin data down to the locals');
  for (const instanceId of Object.keys(PATIENTS)) {
    const job = await syncType(call, instanceId, 'Organization');
    out(`   ${instanceId} Organization: ${job.state}, ${job.progress.resources} written (${job.ms} ms)`);
  }
  out('6. Sync: every configured type of both locals, through POST /sync/{instance}/{type}');
  const totals = { resources: 0, deletes: 0, quarantined: 0, failed: 0 };
  for (const instanceId of Object.keys(PATIENTS)) {
    for (const type of SEND_TYPES) {
      const job = await syncType(call, instanceId, type);
      totals.resources += job.progress.resources;
      totals.deletes += job.progress.deletes;
      totals.quarantined += job.progress.quarantined;
      totals.failed += job.state === 'failed' ? 1 : 0;
      out(
        `   ${instanceId.padEnd(8)} ${type.padEnd(18)} ${String(job.progress.resources).padStart(5)} written, ` +
          `${job.progress.deletes} deleted, ${job.progress.quarantined} quarantined (${job.ms} ms)` +
          `${job.state === 'failed' ? ` FAILED ${job.failedCode ?? ''}` : ''}`,
      );
    }
  }
  await report(call, env, urls, before, totals);
  return totals.failed === 0 ? 0 : 1;
}

async function report(
  call: ReturnType<typeof apiClient>,
  env: Env,
  urls: FhirServerUrls,
  before: readonly { instanceId: string; patientId: string }[],
  totals: { resources: number; deletes: number; quarantined: number; failed: number },
): Promise<void> {
  out();
  out('Report');
  out(
    `  written ${totals.resources}, deleted ${totals.deletes}, quarantined ${totals.quarantined}, failed passes ${totals.failed}`,
  );
  const first = before[0];
  if (first) {
    const anonymizer = createAnonymizer({
      rules: loadRulesFile(env.RULES_FILE ?? 'config/anonymization.yaml'),
      key: deidKeyFrom(parseDeidKeyEnv(env)),
    });
    const local = (await (await fetch(`${urls.localA}/Patient/${first.patientId}`)).json()) as Patient;
    const globalId = anonymizer.pseudonymousId(first.instanceId, 'Patient', first.patientId);
    const res = await fetch(`${urls.global}/Patient/${globalId}`);
    const global = res.ok ? ((await res.json()) as Patient) : undefined;
    out(`  Patient on ${first.instanceId} (synthetic Synthea data), before:`);
    out(brief(local));
    out('  the same Patient on the global server, after de-identification:');
    out(brief(global));
  }
  const org = await fetch(`${urls.localA}/Organization/${HQ_ORG_ID}`);
  out(
    `  reverse push: local-a has Organization/${HQ_ORG_ID}: ${org.ok ? `"${((await org.json()) as Organization).name}"` : 'no'}`,
  );
  const status = await call<{ types: TypeLine[] }>('GET', '/status');
  out('  lag (newest change on the local minus the cursor position) and last pass:');
  for (const line of status.types.filter((t) => t.resourceType === 'Patient' || t.resourceType === 'Observation')) {
    out(
      `    ${line.instanceId.padEnd(8)} ${line.resourceType.padEnd(12)} lag ${line.lagSeconds === undefined ? 'n/a' : line.lagSeconds.toFixed(1)} s, ` +
        `last pass ${line.lastPassAt ?? 'never'} ${line.lastPassResult ?? ''}`,
    );
  }
  out();
  out('Next: `npm start` runs the service (API, scheduler, workers); /docs has the API, /ui the rules page.');
}

const exitCode = await main().catch((err: unknown) => {
  const code = (err as { code?: unknown }).code;
  process.stderr.write(
    `demo failed: ${typeof code === 'string' ? `${code}: ` : ''}${err instanceof Error ? err.message : String(err)}\n`,
  );
  return 1;
});
// Open handles (HTTP keep-alive sockets to the servers) must not keep the demo alive.
process.exit(exitCode);
