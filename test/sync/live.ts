/**
 * Helpers of the sync engine's live tests (real HAPI servers, real Redis): unique instance
 * ids, an instances file in a temp dir, loading Synthea fixtures into a local, priming
 * cursors at "now" (the shared locals hold other tests' data, which these tests must not
 * sync), reading what landed on the global server, and the PHI strings of the inputs.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import pino from 'pino';
import { createAnonymizer, loadRulesFile, makeKey } from '../../src/anonymizer/index.ts';
import type { Anonymizer, DeidKey } from '../../src/anonymizer/index.ts';
import { parseInstances } from '../../src/instances/index.ts';
import type { InstancesConfig } from '../../src/instances/index.ts';
import { createFhirStore, createSyncEngine, rangeCursorFor, sealingCodec } from '../../src/sync/index.ts';
import type { CursorCodec, FhirStore, SyncEngine } from '../../src/sync/index.ts';
import { cursorResource } from '../../src/sync/state.ts';

export const FIXTURES = {
  luigi: 'test/fixtures/sync/Luigi_Wiegand_e27d88b0-c5e5-4042-ad49-184f6a900ee3.json',
  buster: 'test/fixtures/sync/Buster_Hoeger_ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423.json',
  liz: 'test/fixtures/sync/Liz_Conn_27c911c6-f045-4ffa-af5d-6eba57ac94b2.json',
} as const;

/** Clinical types of the fixtures (Practitioner is not sent: its references are masked). */
export const CLINICAL_TYPES = [
  'Patient',
  'Encounter',
  'Condition',
  'Observation',
  'Procedure',
  'Immunization',
  'MedicationRequest',
  'DiagnosticReport',
  'CarePlan',
  'Claim',
  'ExplanationOfBenefit',
] as const;

/** A short unique suffix. */
export function uniq(): string {
  return randomBytes(4).toString('hex');
}

/** The FHIR base without `/fhir`. */
export function rootOf(fhirBase: string): string {
  return fhirBase.replace(/\/fhir\/?$/, '/');
}

/** One local instance in a test's instances.yaml. */
export interface LiveInstance {
  readonly id: string;
  readonly fhirBase: string;
  readonly sendTypes: readonly string[];
  readonly receiveAdminTypes?: readonly string[];
  readonly localOnlyAdmin?: 'send' | 'mask' | 'drop';
  readonly pageSize?: number;
  /** @defaultValue 'fhir-history' */
  readonly feedKind?: 'fhir-history' | 'search-lastupdated' | 'auto';
}

/**
 * Writes an instances file for a test.
 * @returns its path and parsed content.
 */
export async function writeInstances(
  globalBase: string,
  instances: readonly LiveInstance[],
  options: { bundleSize?: number } = {},
): Promise<{ path: string; config: InstancesConfig }> {
  const lines = [
    'version: 1',
    'global:',
    `  baseUrl: ${rootOf(globalBase)}`,
    '  fhirUrlPath: fhir',
    `  bundleSize: ${options.bundleSize ?? 100}`,
    '  feed: { kind: fhir-history, settleMs: 1000 }',
    'instances:',
    ...instances.flatMap((i) => [
      `  - id: ${i.id}`,
      `    baseUrl: ${rootOf(i.fhirBase)}`,
      `    feed: { kind: ${i.feedKind ?? 'fhir-history'}, settleMs: 1000${i.pageSize === undefined ? '' : `, pageSize: ${i.pageSize}`} }`,
      `    sendTypes: [${i.sendTypes.join(', ')}]`,
      `    receiveAdminTypes: [${(i.receiveAdminTypes ?? []).join(', ')}]`,
      `    references: { unsynced: mask, localOnlyAdmin: ${i.localOnlyAdmin ?? 'mask'} }`,
      `    schedule: '0 0 1 1 *'`,
    ]),
  ];
  const dir = await mkdtemp(join(tmpdir(), 'sync-live-'));
  const path = join(dir, 'instances.yaml');
  const text = `${lines.join('\n')}\n`;
  await writeFile(path, text);
  return { path, config: parseInstances(text, { source: path }).config };
}

let rules: ReturnType<typeof loadRulesFile> | undefined;

/** The real anonymizer with the project's rules and a per-run random key. */
export function testAnonymizer(key: DeidKey = makeKey('sync-test', randomBytes(32))): {
  anonymizer: Anonymizer;
  key: DeidKey;
  codec: CursorCodec;
} {
  rules ??= loadRulesFile('config/anonymization.yaml');
  return { anonymizer: createAnonymizer({ rules, key }), key, codec: sealingCodec(key.secret, key.id) };
}

/** An engine over a config, without Redis. */
export function testEngine(config: InstancesConfig, anonymizer: Anonymizer, codec: CursorCodec): SyncEngine {
  return createSyncEngine({
    config: () => Promise.resolve(config),
    anonymizer,
    codec,
    logger: pino({ level: 'silent' }),
    retry: { attempts: 4, baseDelayMs: 200, maxDelayMs: 2000 },
  });
}

/** A lock function that does not lock (tests running the engine directly). */
export const noLock = <T>(_id: string, fn: (signal: AbortSignal | undefined) => Promise<T>): Promise<T> =>
  fn(undefined);

/** A store over a FHIR base URL (no auth). */
export function storeAt(fhirBase: string): FhirStore {
  return createFhirStore({ baseUrl: rootOf(fhirBase), fhirPath: 'fhir' });
}

/** Reads a fixture bundle. */
export async function fixture(path: string): Promise<Bundle> {
  return JSON.parse(await readFile(path, 'utf8')) as Bundle;
}

/**
 * POSTs a transaction bundle to a local and returns the created ids per type.
 * @returns `Type` → local ids.
 */
export async function loadBundle(fhirBase: string, bundle: Bundle): Promise<Map<string, string[]>> {
  const res = await fetch(fhirBase, {
    method: 'POST',
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify(bundle),
  });
  if (res.status !== 200) {
    throw new Error(`loading a bundle answered ${res.status}`);
  }
  const answer = (await res.json()) as Bundle;
  const out = new Map<string, string[]>();
  for (const e of answer.entry ?? []) {
    const m = /^([A-Za-z]+)\/([^/]+)\/_history/.exec(e.response?.location ?? '');
    if (m !== null) {
      out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
    }
  }
  return out;
}

/**
 * Writes the forward cursors of an instance at an instant, so passes only see later changes.
 */
export async function primeCursors(
  global: FhirStore,
  codec: CursorCodec,
  instanceId: string,
  types: readonly string[],
  since: Date,
  direction: 'forward' | 'reverse' = 'forward',
): Promise<void> {
  const make = rangeCursorFor({ kind: 'fhir-history' })!;
  const entry = types.map((t) => {
    const basic = cursorResource({
      direction,
      instanceId,
      resourceType: t,
      updatedAt: since.toISOString(),
      cursor: codec.seal(make(since.toISOString())!),
    });
    return { resource: basic, request: { method: 'PUT' as const, url: `Basic/${basic.id}` } };
  });
  const ans = await global.transaction({ resourceType: 'Bundle', type: 'transaction', entry });
  if (ans.status !== 200) {
    throw new Error(`priming cursors answered ${ans.status}`);
  }
}

/** GET as JSON (tests only). */
export async function getJson<T = Resource>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { headers: { accept: 'application/fhir+json', 'cache-control': 'no-cache' } });
  return { status: res.status, body: (res.status === 200 ? await res.json() : undefined) as T };
}

/**
 * Strings of a bundle's Patients that must never reach the global server: names, phone
 * numbers, address lines and cities, identifier values, birth dates.
 */
export function phiStrings(bundle: Bundle): string[] {
  const out = new Set<string>();
  for (const e of bundle.entry ?? []) {
    const r = e.resource;
    if (r?.resourceType !== 'Patient') {
      continue;
    }
    for (const n of r.name ?? []) {
      [...(n.given ?? []), n.family].forEach((s) => s !== undefined && s.length >= 4 && out.add(s));
    }
    for (const t of r.telecom ?? []) {
      if (t.value !== undefined) {
        out.add(t.value);
      }
    }
    for (const a of r.address ?? []) {
      [...(a.line ?? [])].forEach((s) => out.add(s));
    }
    for (const i of r.identifier ?? []) {
      if (i.value !== undefined && i.value.length >= 6) {
        out.add(i.value);
      }
    }
    if (r.birthDate !== undefined) {
      out.add(r.birthDate);
    }
  }
  return [...out];
}

/** Waits until `check` returns true. */
export async function waitFor(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  label: string,
  everyMs = 250,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) {
      return;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${label}`);
}

/** What a test that starts the whole service (`startService`) configures. */
export interface ServiceSetup {
  /** Short name: the temp dir, key id and Redis prefix are derived from it and a random suffix. */
  readonly name: string;
  readonly globalBase: string;
  /** Extra lines of the `global:` section (two-space indented). */
  readonly globalLines?: readonly string[];
  readonly instanceId: string;
  readonly localBase: string;
  readonly sendTypes: readonly string[];
  /** The instance's feed. @defaultValue `{ kind: fhir-history, settleMs: 500 }` */
  readonly feed?: string;
  /** Extra lines of the instance (four-space indented). */
  readonly instanceLines?: readonly string[];
  /** API_KEYS. */
  readonly apiKeys: string;
  /** Environment added to (or replacing) the defaults. */
  readonly env?: Readonly<Record<string, string>>;
}

/**
 * The files and environment of a service started by a test: an instances file with the global
 * and one local that is never scheduled (cron once a year), a copy of the shipped rules, and an
 * environment pointing at them with API and worker roles, a random key and a unique Redis prefix.
 * @returns the temp dir and the environment.
 */
export async function serviceFiles(s: ServiceSetup): Promise<{ dir: string; env: Record<string, string> }> {
  const run = uniq();
  const dir = await mkdtemp(join(tmpdir(), `${s.name}-`));
  await writeFile(
    join(dir, 'instances.yaml'),
    [
      'version: 1',
      'global:',
      `  baseUrl: ${rootOf(s.globalBase)}`,
      '  fhirUrlPath: fhir',
      ...(s.globalLines ?? []),
      'instances:',
      `  - id: ${s.instanceId}`,
      `    baseUrl: ${rootOf(s.localBase)}`,
      '    fhirUrlPath: fhir',
      `    feed: ${s.feed ?? '{ kind: fhir-history, settleMs: 500 }'}`,
      `    sendTypes: [${s.sendTypes.join(', ')}]`,
      ...(s.instanceLines ?? []),
      "    schedule: '0 0 1 1 *'",
      '',
    ].join('\n'),
  );
  await copyFile('config/anonymization.yaml', join(dir, 'anonymization.yaml'));
  const env: Record<string, string> = {
    API_KEYS: s.apiKeys,
    DEID_HMAC_KEY: `hex:${randomBytes(32).toString('hex')}`,
    DEID_HMAC_KEY_ID: `${s.name}-${run}`,
    API_HOST: '127.0.0.1',
    API_PORT: '0',
    FHIR_SYNC_ROLES: 'api,worker',
    FHIR_SYNC_INSTANCES: join(dir, 'instances.yaml'),
    FHIR_SYNC_REDIS_PREFIX: `fhir-sync-${s.name}-${run}`,
    RULES_FILE: join(dir, 'anonymization.yaml'),
    RULES_VERSIONS_DIR: join(dir, 'versions'),
    RULES_WATCH_MS: '0',
    ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : {}),
    ...s.env,
  };
  return { dir, env };
}
