import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, KEYS, setup } from './helpers.ts';
import type { TestContext } from './helpers.ts';

const PROBLEM_KEYS = ['code', 'detail', 'instance', 'retryable', 'status', 'title', 'type'];

describe('errors as application/problem+json', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await setup({ bodyLimit: 2048 });
  });
  afterAll(() => ctx.app.close());

  it('answers a schema violation with a JSON pointer per problem', async () => {
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/sync/a/Patient',
      headers: bearer(KEYS.operator),
      payload: { since: 'yesterday', versionRange: { lower: -1 }, extra: 1 },
    });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const body = res.json<Record<string, unknown>>();
    expect(Object.keys(body).sort()).toEqual([...PROBLEM_KEYS, 'errors'].sort());
    expect(body).toMatchObject({
      type: 'urn:fhir-sync:problem:API_ERR_VALIDATION',
      code: 'API_ERR_VALIDATION',
      status: 400,
      instance: '/sync/a/Patient',
    });
    const pointers = (body.errors as { pointer: string }[]).map((e) => e.pointer);
    expect(pointers).toEqual(expect.arrayContaining(['/body/since', '/body/versionRange/lower', '/body']));
    expect(ctx.sync.triggers).toHaveLength(0);
  });

  it('checks path parameters', async () => {
    const res = await ctx.app.inject({ method: 'POST', url: '/sync/a/not-a-type', headers: bearer(KEYS.operator) });
    expect(res.statusCode).toBe(400);
    expect(res.json().errors[0]).toMatchObject({ pointer: '/params/resourceType', code: 'pattern' });
  });

  it('refuses an inverted version range with the pointer of the bad field', async () => {
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/sync/a/Patient',
      headers: bearer(KEYS.operator),
      payload: { versionRange: { lower: 10, upper: 5 } },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().errors).toEqual([{ pointer: '/body/versionRange/upper', detail: 'must be >= lower' }]);
  });

  it('never echoes body values, not even of malformed JSON', async () => {
    const secret = 'Margarethe-Oberhuber-1957';
    const malformed = await ctx.app.inject({
      method: 'POST',
      url: '/rules/preview',
      headers: { ...bearer(KEYS.compliance), 'content-type': 'application/json' },
      payload: `{"resource": {"resourceType": "Patient", "name": "${secret}"`,
    });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().code).toBe('API_ERR_MALFORMED_BODY');
    expect(malformed.body).not.toContain(secret);

    const invalid = await ctx.app.inject({
      method: 'POST',
      url: '/rules/preview',
      headers: bearer(KEYS.compliance),
      payload: { resource: { resourceType: secret } },
    });
    expect(invalid.statusCode).toBe(400);
    expect(invalid.body).not.toContain(secret);
  });

  it('answers 413 above the body limit and 415 for an unknown content type', async () => {
    const big = await ctx.app.inject({
      method: 'PUT',
      url: '/rules',
      headers: { ...bearer(KEYS.compliance), 'content-type': 'application/yaml' },
      payload: `# ${'x'.repeat(4096)}\nrules: []\n`,
    });
    expect(big.statusCode).toBe(413);
    expect(big.json()).toMatchObject({
      code: 'API_ERR_BODY_TOO_LARGE',
      detail: 'The request body is larger than 2048 bytes',
    });
    const xml = await ctx.app.inject({
      method: 'PUT',
      url: '/rules',
      headers: { ...bearer(KEYS.compliance), 'content-type': 'application/xml' },
      payload: '<rules/>',
    });
    expect(xml.statusCode).toBe(415);
    expect(xml.json().code).toBe('API_ERR_UNSUPPORTED_MEDIA_TYPE');
  });

  it('maps a coded error from the sync side to its catalogue status', async () => {
    const unknown = await ctx.app.inject({ method: 'POST', url: '/sync/zz/Patient', headers: bearer(KEYS.operator) });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({
      code: 'TEST_ERR_UNKNOWN_INSTANCE',
      detail: 'Instance zz is not registered',
    });
    const type = await ctx.app.inject({ method: 'POST', url: '/sync/a/Encounter', headers: bearer(KEYS.operator) });
    expect(type.statusCode).toBe(422);
    expect(type.json().code).toBe('TEST_ERR_TYPE_NOT_SYNCED');
  });

  it('hides the message of an unexpected error behind API_ERR_INTERNAL', async () => {
    const original = ctx.sync.status.bind(ctx.sync);
    ctx.sync.status = () => Promise.reject(new TypeError('cannot read name "Oberhuber"'));
    const res = await ctx.app.inject({ method: 'GET', url: '/status', headers: bearer(KEYS.viewer) });
    ctx.sync.status = original;
    expect(res.statusCode).toBe(500);
    expect(res.json()).toMatchObject({ code: 'API_ERR_INTERNAL', detail: 'Internal error' });
    expect(res.body).not.toContain('Oberhuber');
  });
});

describe('rate limit', () => {
  it('answers 429 problem+json past the limit, but never limits the health probes', async () => {
    const ctx = await setup({ rateLimit: { max: 3, timeWindowMs: 60_000 } });
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) {
      codes.push((await ctx.app.inject({ method: 'GET', url: '/status', headers: bearer(KEYS.viewer) })).statusCode);
    }
    expect(codes).toEqual([200, 200, 200, 429]);
    const limited = await ctx.app.inject({ method: 'GET', url: '/status', headers: bearer(KEYS.viewer) });
    expect(limited.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(limited.headers['retry-after']).toBeDefined();
    expect(limited.json()).toMatchObject({ code: 'API_ERR_RATE_LIMITED', status: 429, retryable: true });
    expect((await ctx.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    await ctx.app.close();
  });
});
