/**
 * createFhirClient against real local HTTP(S) servers: base URLs, authentication modes,
 * token handling, TLS with a private CA, timeouts and typed network errors.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createFhirClient, DEFAULT_CONNECTION_POLICY, type FhirConnection } from '../../src/shared/fhir-client.ts';
import {
  FEED_ERR_CONFIG,
  FEED_ERR_CONNECTION,
  FEED_ERR_CREDENTIAL_MISSING,
  FEED_ERR_TIMEOUT,
  FEED_ERR_TLS_CA,
  FEED_ERR_TOKEN_REJECTED,
  FEED_ERR_TOKEN_UNAVAILABLE,
  isRetryable,
} from '../../src/shared/errors/index.ts';
import { failure, ok, sendJson, serverPool, type TestServer } from './support/http-server.ts';

const serve = serverPool();

describe('createFhirClient: base URLs and headers', () => {
  it('resolves FHIR paths under fhirPath, sends no X-Medplum header and no credentials without auth', async () => {
    const s = await serve(ok);
    const client = createFhirClient({ baseUrl: s.url, fhirPath: 'fhir' });
    await client.get(client.fhirUrl('Basic', 'x'));
    expect(s.requests[0]!.url).toBe('/fhir/Basic/x');
    expect(s.requests[0]!.headers['x-medplum']).toBeUndefined();
    expect(s.requests[0]!.headers.authorization).toBeUndefined();
  });

  it('does not retry a 5xx itself (the engine backs off instead)', async () => {
    const s = await serve((_req, res) => sendJson(res, 503, { resourceType: 'OperationOutcome', issue: [] }));
    const client = createFhirClient({ baseUrl: s.url });
    await failure(client.get(client.fhirUrl('Basic', 'x')));
    expect(s.requests).toHaveLength(1);
  });

  it.each<[string, Partial<FhirConnection>]>([
    ['a query in baseUrl', { baseUrl: 'http://h/?a=1' }],
    ['credentials in baseUrl', { baseUrl: 'http://u:p@h/' }],
    ['a relative baseUrl', { baseUrl: '/fhir' }],
    ['a zero timeout', { baseUrl: 'http://h/', timeoutMs: 0 }],
  ])('rejects %s as FEED_ERR_CONFIG', (_what, conn) => {
    expect(() => createFhirClient(conn as FhirConnection)).toThrow(
      expect.objectContaining({ code: FEED_ERR_CONFIG.code }),
    );
  });
});

describe('createFhirClient: authentication', () => {
  it('sends a bearer token read from the named environment variable, never to another origin', async () => {
    const s = await serve(ok);
    const other = await serve(ok);
    const client = createFhirClient(
      { baseUrl: s.url, auth: { type: 'bearer', tokenEnv: 'FHIR_SYNC_SECRET_FEED_TEST_TOKEN' } },
      { env: { FHIR_SYNC_SECRET_FEED_TEST_TOKEN: 'tok-123' } },
    );
    await client.get(client.fhirUrl('Basic', 'x'));
    await client.get(`${other.url}fhir/Basic/x`);
    expect(s.requests[0]!.headers.authorization).toBe('Bearer tok-123');
    expect(other.requests[0]!.headers.authorization).toBeUndefined();
  });

  it('sends HTTP Basic from two environment variables', async () => {
    const s = await serve(ok);
    const client = createFhirClient(
      { baseUrl: s.url, auth: { type: 'basic', usernameEnv: 'FHIR_SYNC_SECRET_U', passwordEnv: 'FHIR_SYNC_SECRET_P' } },
      { env: { FHIR_SYNC_SECRET_U: 'sync', FHIR_SYNC_SECRET_P: 'pa:ss' } },
    );
    await client.get(client.fhirUrl('Basic', 'x'));
    expect(s.requests[0]!.headers.authorization).toBe(`Basic ${Buffer.from('sync:pa:ss').toString('base64')}`);
  });

  it('names a missing variable without revealing anything else', () => {
    const err = (() => {
      try {
        createFhirClient(
          {
            baseUrl: 'http://h/',
            auth: { type: 'basic', usernameEnv: 'FHIR_SYNC_SECRET_U', passwordEnv: 'FHIR_SYNC_SECRET_MISSING_P' },
          },
          { env: { FHIR_SYNC_SECRET_U: 'sync' } },
        );
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(FEED_ERR_CREDENTIAL_MISSING.is(err)).toBe(true);
    expect(err?.message).toContain('MISSING_P');
    expect(err?.message).not.toContain('sync');
  });
});

describe('createFhirClient: OAuth2 client credentials', () => {
  interface TokenServer {
    server: TestServer;
    tokens: string[];
    answer: { status: number; body: unknown } | undefined;
    reject401Once: boolean;
  }

  async function oauthServer(): Promise<TokenServer> {
    const state: TokenServer = {
      server: undefined as unknown as TestServer,
      tokens: [],
      answer: undefined,
      reject401Once: false,
    };
    state.server = await serve((req, res, body) => {
      if (req.url === '/oauth/token') {
        if (state.answer) {
          sendJson(res, state.answer.status, state.answer.body);
          return;
        }
        expect(new URLSearchParams(body).get('grant_type')).toBe('client_credentials');
        // A JWT that names the client only in `azp` (MedplumClient's own login would refuse it).
        const payload = Buffer.from(JSON.stringify({ azp: 'sync-client', exp: 4_102_444_800 })).toString('base64url');
        const token = `eyJhbGciOiJub25lIn0.${payload}.${state.tokens.length}`;
        state.tokens.push(token);
        sendJson(res, 200, { access_token: token, token_type: 'Bearer', expires_in: 300 });
        return;
      }
      if (state.reject401Once) {
        state.reject401Once = false;
        sendJson(res, 401, { resourceType: 'OperationOutcome', issue: [] });
        return;
      }
      ok(req, res);
    });
    return state;
  }

  function client(t: TokenServer, clock: () => number = Date.now) {
    return createFhirClient(
      {
        baseUrl: t.server.url,
        auth: {
          type: 'client-credentials',
          tokenUrl: `${t.server.url}oauth/token`,
          clientIdEnv: 'FHIR_SYNC_SECRET_CID',
          clientSecretEnv: 'FHIR_SYNC_SECRET_CSECRET',
          scope: 'system/*.read',
        },
      },
      { env: { FHIR_SYNC_SECRET_CID: 'sync-client', FHIR_SYNC_SECRET_CSECRET: 's3cr3t' }, clock },
    );
  }

  it('fetches a token once, sends the client credentials as Basic, and reuses the token until near expiry', async () => {
    const t = await oauthServer();
    let now = 1_000_000;
    const c = client(t, () => now);
    await c.get(c.fhirUrl('Basic', 'x'));
    await c.get(c.fhirUrl('Basic', 'x'));
    const tokenRequest = t.server.requests.find((r) => r.url === '/oauth/token')!;
    expect(tokenRequest.headers.authorization).toBe(`Basic ${Buffer.from('sync-client:s3cr3t').toString('base64')}`);
    const fhir = t.server.requests.filter((r) => r.url.startsWith('/fhir/'));
    expect(fhir.map((r) => r.headers.authorization)).toEqual([`Bearer ${t.tokens[0]}`, `Bearer ${t.tokens[0]}`]);
    now += 300_000; // expires_in has passed
    await c.get(c.fhirUrl('Basic', 'x'));
    expect(t.tokens).toHaveLength(2);
    expect(t.server.requests.at(-1)!.headers.authorization).toBe(`Bearer ${t.tokens[1]}`);
  });

  it('renews the token once and repeats the request when the server answers 401', async () => {
    const t = await oauthServer();
    const c = client(t);
    await c.get(c.fhirUrl('Basic', 'x'));
    t.reject401Once = true;
    await expect(c.get(c.fhirUrl('Basic', 'x'))).resolves.toMatchObject({ id: 'x' });
    expect(t.tokens).toHaveLength(2);
  });

  it('reports a refusing token endpoint as not retryable and an unavailable one as retryable', async () => {
    const t = await oauthServer();
    t.answer = { status: 401, body: { error: 'invalid_client' } };
    const refused = await failure(client(t).get(`${t.server.url}fhir/Basic/x`));
    expect(FEED_ERR_TOKEN_REJECTED.is(refused)).toBe(true);
    expect(isRetryable(refused)).toBe(false);
    t.answer = { status: 503, body: {} };
    const down = await failure(client(t).get(`${t.server.url}fhir/Basic/x`));
    expect(FEED_ERR_TOKEN_UNAVAILABLE.is(down)).toBe(true);
    expect(isRetryable(down)).toBe(true);
    expect(down.message).not.toContain('s3cr3t');
  });
});

describe('createFhirClient: network failures', () => {
  it('turns a slow answer into a retryable FEED_ERR_TIMEOUT naming the path only', async () => {
    const s = await serve((req, res) => {
      setTimeout(() => ok(req, res), 400);
    });
    const c = createFhirClient({ baseUrl: s.url, timeoutMs: 100 });
    const err = await failure(c.get(`${s.url}fhir/Basic?identifier=123-45-6789`));
    expect(FEED_ERR_TIMEOUT.is(err)).toBe(true);
    expect(isRetryable(err)).toBe(true);
    expect(err.message).toContain('/fhir/Basic');
    expect(err.message).not.toContain('6789');
  });

  it('turns a refused connection into a retryable FEED_ERR_CONNECTION', async () => {
    const s = await serve(ok);
    const url = s.url;
    await s.close(); // closed again after the test: harmless
    const c = createFhirClient({ baseUrl: url });
    const err = await failure(c.get(c.fhirUrl('Basic', 'x')));
    expect(FEED_ERR_CONNECTION.is(err)).toBe(true);
    expect(err.message).toContain('ECONNREFUSED');
    expect(isRetryable(err)).toBe(true);
  });
});

describe('createFhirClient: TLS with a private CA', () => {
  function makeCerts(): { dir: string; ca: string; key: string; cert: string } {
    const dir = mkdtempSync(join(tmpdir(), 'feed-tls-'));
    const run = (...args: string[]): void => {
      execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    };
    run(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '2',
      '-subj',
      '/CN=feed-test-ca',
    );
    run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1');
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
    run(
      'x509',
      '-req',
      '-in',
      'srv.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'srv.crt',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
    );
    return { dir, ca: join(dir, 'ca.crt'), key: join(dir, 'srv.key'), cert: join(dir, 'srv.crt') };
  }

  it('trusts a server certificate signed by the configured CA, and refuses it without', async () => {
    const certs = makeCerts();
    const server = createHttpsServer({ key: readFileSync(certs.key), cert: readFileSync(certs.cert) }, (req, res) => {
      ok(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    try {
      const trusted = createFhirClient(
        { baseUrl: base, tls: { caFile: certs.ca } },
        { policy: { ...DEFAULT_CONNECTION_POLICY, caDir: certs.dir } },
      );
      await expect(trusted.get(trusted.fhirUrl('Basic', 'x'))).resolves.toMatchObject({ id: 'x' });
      const untrusted = createFhirClient({ baseUrl: base });
      const err = await failure(untrusted.get(untrusted.fhirUrl('Basic', 'x')));
      expect(FEED_ERR_CONNECTION.is(err)).toBe(true);
      expect(err.message).toMatch(/CERT|SIGNATURE|ISSUER/);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('reports an unreadable CA file at creation', () => {
    expect(() => createFhirClient({ baseUrl: 'https://h/', tls: { caFile: '/nonexistent/ca.pem' } })).toThrow(
      expect.objectContaining({ code: FEED_ERR_TLS_CA.code }),
    );
  });
});
