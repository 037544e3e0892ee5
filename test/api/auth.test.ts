import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import { bearer, KEYS, setup, testAuth } from './helpers.ts';
import type { TestContext } from './helpers.ts';
import { digestKey } from '../../src/api/index.ts';

describe('static API keys and roles', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await setup();
  });
  afterAll(() => ctx.app.close());

  it('answers 401 problem+json without a token, with a WWW-Authenticate challenge', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/status' });
    expect(res.statusCode).toBe(401);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="fhir-sync"');
    expect(res.json()).toMatchObject({
      status: 401,
      code: 'API_ERR_UNAUTHENTICATED',
      instance: '/status',
      title: 'Unauthorized',
    });
  });

  it('answers 401 for an unknown key and for a non-bearer header', async () => {
    const unknown = await ctx.app.inject({ method: 'GET', url: '/status', headers: bearer('x'.repeat(30)) });
    expect(unknown.statusCode).toBe(401);
    expect(unknown.json().code).toBe('API_ERR_INVALID_TOKEN');
    expect(unknown.headers['www-authenticate']).toContain('error="invalid_token"');
    const basic = await ctx.app.inject({ method: 'GET', url: '/status', headers: { authorization: 'Basic abc' } });
    expect(basic.statusCode).toBe(401);
    expect(basic.json().code).toBe('API_ERR_INVALID_TOKEN');
  });

  it('lets every role read and only operators trigger syncs', async () => {
    for (const key of Object.values(KEYS)) {
      const res = await ctx.app.inject({ method: 'GET', url: '/status', headers: bearer(key) });
      expect(res.statusCode).toBe(200);
    }
    const viewer = await ctx.app.inject({ method: 'POST', url: '/sync/a/Patient', headers: bearer(KEYS.viewer) });
    expect(viewer.statusCode).toBe(403);
    expect(viewer.json()).toMatchObject({
      code: 'API_ERR_FORBIDDEN',
      detail: 'This action needs one of the roles: operator',
    });
    const compliance = await ctx.app.inject({
      method: 'POST',
      url: '/sync/a/Patient',
      headers: bearer(KEYS.compliance),
    });
    expect(compliance.statusCode).toBe(403);
    const operator = await ctx.app.inject({ method: 'POST', url: '/sync/a/Patient', headers: bearer(KEYS.operator) });
    expect(operator.statusCode).toBe(202);
    expect(ctx.sync.triggers).toHaveLength(1);
  });

  it('keeps rule changes to compliance staff', async () => {
    const put = (key: string) =>
      ctx.app.inject({
        method: 'PUT',
        url: '/rules',
        headers: { ...bearer(key), 'content-type': 'application/yaml' },
        payload: 'rules: []\n',
      });
    expect((await put(KEYS.operator)).statusCode).toBe(403);
    expect((await put(KEYS.viewer)).statusCode).toBe(403);
    expect((await put(KEYS.compliance)).statusCode).toBe(200);
  });

  it('accepts a key configured by its SHA-256', async () => {
    const raw = 'hashed-key-for-the-dashboard-0001';
    const auth = { apiKeys: [{ name: 'hashed', roles: ['viewer' as const], digest: digestKey(raw) }] };
    const other = await setup({ auth });
    const res = await other.app.inject({ method: 'GET', url: '/status', headers: bearer(raw) });
    expect(res.statusCode).toBe(200);
    await other.app.close();
  });

  it('serves /healthz, /readyz, /docs and /ui without a token', async () => {
    expect((await ctx.app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await ctx.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    expect((await ctx.app.inject({ method: 'GET', url: '/docs/json' })).statusCode).toBe(200);
    const ui = await ctx.app.inject({ method: 'GET', url: '/ui' });
    expect(ui.statusCode).toBe(200);
    expect(ui.headers['content-type']).toMatch(/^text\/html/);
  });

  it('asks for a token before saying a route does not exist', async () => {
    expect((await ctx.app.inject({ method: 'GET', url: '/nope' })).statusCode).toBe(401);
    const res = await ctx.app.inject({ method: 'DELETE', url: '/nope', headers: bearer(KEYS.viewer) });
    expect(res.statusCode).toBe(404);
    expect(res.json().code).toBe('API_ERR_ROUTE_NOT_FOUND');
  });
});

describe('JWTs verified against the issuer JWKS', () => {
  const issuer = 'https://issuer.test/realms/fhir-sync';
  let server: Server;
  let jwksUrl: string;
  let privateKey: CryptoKey;
  let jwksRequests = 0;
  let ctx: TestContext;

  beforeAll(async () => {
    const pair = await generateKeyPair('ES256');
    privateKey = pair.privateKey;
    const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    server = createServer((req, res) => {
      jwksRequests++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
    ctx = await setup({
      auth: {
        ...testAuth(),
        jwt: {
          issuer,
          jwksUrl,
          audience: 'fhir-sync',
          rolesClaim: 'realm_access.roles',
          algorithms: ['ES256'],
          clockToleranceSeconds: 0,
        },
      },
    });
  });
  afterAll(async () => {
    await ctx.app.close();
    await new Promise((resolve) => server.close(resolve));
  });

  const sign = (claims: Record<string, unknown>, opts: { iss?: string; exp?: string | number; key?: CryptoKey } = {}) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(opts.iss ?? issuer)
      .setAudience('fhir-sync')
      .setSubject('alice@example.org')
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? '5m')
      .sign(opts.key ?? privateKey);

  it('accepts a valid token and takes roles from the configured claim', async () => {
    const token = await sign({ realm_access: { roles: ['operator', 'offline_access'] } });
    const res = await ctx.app.inject({ method: 'POST', url: '/sync/a/Observation', headers: bearer(token) });
    expect(res.statusCode).toBe(202);
    expect(jwksRequests).toBeGreaterThan(0);
    expect(ctx.audit.at(-1)).toMatchObject({
      action: 'sync.trigger',
      actor: { subject: 'alice@example.org', via: 'jwt', roles: ['operator'] },
    });
  });

  it('answers 403 when the token carries no role for the route', async () => {
    const token = await sign({ realm_access: { roles: ['viewer'] } });
    expect((await ctx.app.inject({ method: 'GET', url: '/status', headers: bearer(token) })).statusCode).toBe(200);
    expect((await ctx.app.inject({ method: 'POST', url: '/sync/a/Patient', headers: bearer(token) })).statusCode).toBe(
      403,
    );
  });

  it('refuses an expired token, another issuer, and a key not in the JWKS', async () => {
    const expired = await sign({ realm_access: { roles: ['viewer'] } }, { exp: Math.floor(Date.now() / 1000) - 60 });
    const res = await ctx.app.inject({ method: 'GET', url: '/status', headers: bearer(expired) });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({
      code: 'API_ERR_INVALID_TOKEN',
      detail: 'The bearer token is not valid (ERR_JWT_EXPIRED)',
    });

    const otherIssuer = await sign({ realm_access: { roles: ['viewer'] } }, { iss: 'https://evil.test' });
    const res2 = await ctx.app.inject({ method: 'GET', url: '/status', headers: bearer(otherIssuer) });
    expect(res2.statusCode).toBe(401);
    expect(res2.json().detail).toContain('ERR_JWT_CLAIM_VALIDATION_FAILED');

    const stranger = await generateKeyPair('ES256');
    const forged = await sign({ realm_access: { roles: ['operator'] } }, { key: stranger.privateKey });
    const res3 = await ctx.app.inject({ method: 'POST', url: '/sync/a/Patient', headers: bearer(forged) });
    expect(res3.statusCode).toBe(401);
    expect(res3.json().detail).toContain('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  });

  it('refuses a token without exp (a leaked one would never expire)', async () => {
    const forever = await new SignJWT({ realm_access: { roles: ['viewer'] } })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(issuer)
      .setAudience('fhir-sync')
      .setSubject('alice@example.org')
      .setIssuedAt()
      .sign(privateKey);
    const res = await ctx.app.inject({ method: 'GET', url: '/status', headers: bearer(forever) });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ code: 'API_ERR_INVALID_TOKEN' });
    expect(res.json().detail).toContain('ERR_JWT_CLAIM_VALIDATION_FAILED');
  });

  it('still accepts the static keys next to JWTs', async () => {
    expect((await ctx.app.inject({ method: 'GET', url: '/status', headers: bearer(KEYS.viewer) })).statusCode).toBe(
      200,
    );
  });
});
