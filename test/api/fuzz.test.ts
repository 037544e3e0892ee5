/**
 * Issue 10: 2,400 hostile requests over loopback against the real app (real rules store and
 * engine with the shipped profile, real instance registry on a copy of config/instances.yaml):
 * random methods, paths, headers, roles and bodies (wrong JSON shapes, truncated JSON, mutated
 * rules YAML, invalid UTF-8, stack-deep samples, hostile addresses). Seeded, so a failure
 * reproduces. Asserts no 5xx, every error answer problem+json, no API key ever echoed, the
 * process still serving, and bounded heap growth (measured after forced GCs, not timed).
 */
import { copyFile, mkdtemp, readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anonymizerRulesEngine, createFileRulesStore } from '../../src/anonymizer/index.ts';
import { makeKey } from '../../src/anonymizer/index.ts';
import { openInstanceRegistry } from '../../src/instances/index.ts';
import { ADDRESSES, heapAfterGc, hostileValue, pick, prng, SEGMENTS } from '../shared/hostile.ts';
import type { Gen } from '../shared/hostile.ts';
import { KEYS, setup } from './helpers.ts';
import type { TestContext } from './helpers.ts';

const REQUESTS = 2400;
const CONCURRENCY = 8;
const HEAP_GROWTH_LIMIT = 96 * 1024 * 1024;

const ROUTES = [
  '/healthz',
  '/readyz',
  '/metrics',
  '/status',
  '/instances',
  '/instances/:x',
  '/jobs/:x',
  '/quarantine',
  '/quarantine/retry',
  '/rules',
  '/rules/coverage',
  '/rules/preview',
  '/rules/validate',
  '/rules/versions',
  '/rules/versions/:x',
  '/sync/:x/:x',
  '/ui',
  '/ui/:x',
  '/:x',
  '/:x/:x/:x',
];
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'];
/** The real endpoints, so most requests get past routing and authentication to the handlers. */
const ENDPOINTS: readonly [string, string][] = [
  ['POST', '/instances'],
  ['PATCH', '/instances/:x'],
  ['DELETE', '/instances/:x'],
  ['GET', '/instances/:x'],
  ['POST', '/quarantine/retry'],
  ['GET', '/quarantine'],
  ['PUT', '/rules'],
  ['POST', '/rules/preview'],
  ['POST', '/rules/validate'],
  ['GET', '/rules/versions/:x'],
  ['POST', '/sync/:x/:x'],
  ['GET', '/jobs/:x'],
  ['GET', '/status'],
];
const CONTENT_TYPES = [
  'application/json',
  'application/json',
  'application/yaml',
  'application/merge-patch+json',
  'application/fhir+json',
  'text/plain',
  'multipart/form-data; boundary=x',
  'application/x-www-form-urlencoded',
  undefined,
];
function body(r: Gen, rulesText: string, fhir: readonly unknown[]): string | Uint8Array | undefined {
  const k = Math.floor(r() * 10);
  switch (k) {
    case 0:
      return undefined;
    case 1:
      return JSON.stringify(hostileValue(r)).slice(0, Math.floor(r() * 200)); // truncated JSON
    case 2: {
      // the shipped rules with a few lines cut, duplicated or garbled
      const lines = rulesText.split('\n');
      for (let i = Math.floor(r() * 8) + 1; i > 0; i--) {
        const at = Math.floor(r() * lines.length);
        const op = Math.floor(r() * 3);
        if (op === 0) {
          lines.splice(at, 1);
        } else if (op === 1) {
          lines.splice(at, 0, lines[Math.floor(r() * lines.length)] ?? '');
        } else {
          lines[at] =
            `${' '.repeat(Math.floor(r() * 6))}${String(hostileValue(r, 4)).slice(0, 40)}: ${pick(r, SEGMENTS)}`;
        }
      }
      return lines.join('\n');
    }
    case 3:
      return Uint8Array.from({ length: 64 + Math.floor(r() * 512) }, () => Math.floor(r() * 256)); // not UTF-8
    case 4: {
      // a real resource with one element replaced by something hostile
      const res = structuredClone(pick(r, fhir)) as Record<string, unknown>;
      const keys = Object.keys(res);
      res[pick(r, [...keys, 'extension', 'contained', 'unknownElement'])] = hostileValue(r);
      return JSON.stringify(pick(r, [{ resource: res }, { resources: [res, res] }, res]));
    }
    case 5:
      return JSON.stringify({
        id: pick(r, SEGMENTS),
        baseUrl: pick(r, ADDRESSES),
        fhirUrlPath: pick(r, ['fhir', '../..', '', '%ff']),
        sendTypes: hostileValue(r),
        auth: pick(r, [
          { type: 'bearer', tokenEnv: 'DEID_HMAC_KEY' },
          {
            type: 'client-credentials',
            tokenUrl: pick(r, ADDRESSES),
            clientIdEnv: 'PATH',
            clientSecretEnv: 'API_KEYS',
          },
          { type: 'basic', usernameEnv: 'FHIR_SYNC_SECRET_U', passwordEnv: 'HOME' },
          hostileValue(r),
        ]),
        tls: { caFile: pick(r, ['/etc/shadow', '../../secret.pem', 'config/ca/x.pem']) },
      });
    case 6:
      return 'x'.repeat(1_100_000); // past the body limit
    case 7: {
      // nested far past what a recursive JSON.stringify can write: built as text
      const n = pick(r, [5_000, 20_000, 100_000]);
      const open = '{"resourceType":"Observation","status":"final","code":{"text":"x"},"contained":[';
      return `{"resource":${open.repeat(n)}{}${']}'.repeat(n)}}`;
    }
    default:
      return JSON.stringify(hostileValue(r));
  }
}

function headers(r: Gen, hasBody: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  const valid = [`Bearer ${KEYS.operator}`, `Bearer ${KEYS.compliance}`, `Bearer ${KEYS.viewer}`];
  const auth =
    r() < 0.7
      ? pick(r, valid)
      : pick(r, [
          `Bearer ${KEYS.operator}`,
          `Bearer ${KEYS.compliance}`,
          `Bearer ${KEYS.viewer}`,
          `Bearer ${KEYS.compliance}`,
          'Bearer short',
          'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
          'Basic b3A6b3A=',
          `bearer  ${KEYS.operator} trailing`,
          undefined,
        ]);
  if (auth !== undefined) {
    out.authorization = auth;
  }
  const type = hasBody ? pick(r, CONTENT_TYPES) : undefined;
  if (type !== undefined) {
    out['content-type'] = type;
  }
  if (r() < 0.1) {
    out['if-match'] = pick(r, ['"v1"', 'W/"x"', '*', '%ff', 'x'.repeat(500)]);
  }
  if (r() < 0.05) {
    out.accept = pick(r, ['text/html', 'application/fhir+json', '*/*;q=0']);
  }
  return out;
}

describe('fuzz: hostile requests over loopback', () => {
  let ctx: TestContext;
  let base: string;
  let rulesText: string;
  let fhir: unknown[];
  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'api-fuzz-'));
    const file = join(dir, 'anonymization.yaml');
    await copyFile('config/anonymization.yaml', file);
    await copyFile('config/instances.yaml', join(dir, 'instances.yaml'));
    rulesText = await readFile(file, 'utf8');
    const fixture = async (rel: string): Promise<unknown> =>
      JSON.parse(await readFile(join('test/fixtures/anonymizer', rel), 'utf8')) as unknown;
    fhir = await Promise.all(
      [
        'smart-forms/questionnaire-response-sample.json',
        'r4-examples/patient-example.json',
        'r4-examples/observation-example-bloodpressure-dar.json',
        'r4-examples/bundle-transaction.json',
        'r4-examples/relatedperson-example-peter.json',
      ].map(fixture),
    );
    const engine = anonymizerRulesEngine({ previewKey: makeKey('preview', 'p'.repeat(32)) });
    const rules = await createFileRulesStore({ file, versionsDir: join(dir, 'versions'), engine });
    ctx = await setup({ rules, instances: await openInstanceRegistry(join(dir, 'instances.yaml')) });
    await ctx.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(ctx.app.server.address() as AddressInfo).port}`;
  }, 60_000);
  afterAll(() => ctx.app.close());

  it(`answers ${REQUESTS} hostile requests without a 5xx or a leak, and keeps serving with bounded memory`, async () => {
    const r = prng(0x5eed10);
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    const secrets = Object.values(KEYS);
    const send = async (n: number): Promise<void> => {
      const [method, template] = r() < 0.7 ? pick(r, ENDPOINTS) : [pick(r, METHODS), pick(r, ROUTES)];
      const path = template.replace(/:x/g, () => pick(r, SEGMENTS));
      const query = r() < 0.2 ? `?${pick(r, SEGMENTS)}=${pick(r, SEGMENTS)}&instanceId=${pick(r, SEGMENTS)}` : '';
      const withBody = method !== 'GET' && method !== 'HEAD' && r() < 0.9;
      const payload = withBody ? body(r, rulesText, fhir) : undefined;
      const res = await fetch(`${base}${path}${query}`, {
        method,
        headers: headers(r, payload !== undefined),
        body: payload,
        redirect: 'manual',
      }).catch((err: unknown) => ({ status: -1, err }));
      if (!('headers' in res)) {
        failures.push(`#${n} ${method} ${path.slice(0, 80)}: no answer (${String(res.err)})`);
        return;
      }
      const text = await res.text();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const type = res.headers.get('content-type') ?? '';
      if (res.status >= 500) {
        failures.push(`#${n} ${method} ${path.slice(0, 80)}: ${res.status} ${text.slice(0, 200)}`);
      } else if (res.status >= 400 && method !== 'HEAD' && !type.startsWith('application/problem+json')) {
        failures.push(`#${n} ${method} ${path.slice(0, 80)}: ${res.status} as ${type}`);
      }
      if (secrets.some((s) => text.includes(s))) {
        failures.push(`#${n} ${method} ${path.slice(0, 80)}: an API key in the answer`);
      }
    };

    const heapBefore = heapAfterGc();
    for (let i = 0; i < REQUESTS; i += CONCURRENCY) {
      await Promise.all(Array.from({ length: Math.min(CONCURRENCY, REQUESTS - i) }, (_, j) => send(i + j)));
    }
    const heapGrowth = heapAfterGc() - heapBefore;
    console.log('DIST', JSON.stringify([...statuses]), heapGrowth);

    expect(failures.slice(0, 20)).toEqual([]);
    // The mix reached the routes: many refusals of each kind, and accepted requests too.
    expect([...statuses.values()].reduce((a, b) => a + b, 0)).toBe(REQUESTS);
    for (const status of [200, 400, 401, 403, 404, 413, 415]) {
      expect(statuses.get(status) ?? 0, `answers with ${status}`).toBeGreaterThan(0);
    }
    expect(heapGrowth).toBeLessThan(HEAP_GROWTH_LIMIT);
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
  }, 240_000);
});
