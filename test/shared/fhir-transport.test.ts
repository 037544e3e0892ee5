/**
 * Issue 10 at the FHIR client: instance secrets only from FHIR_SYNC_SECRET_*, the network
 * policy checked on the URL and on every DNS answer, no redirect to another origin, a size
 * cap on every answer (token answers included) and CA files only from the CA directory.
 * Real sockets on loopback; nothing leaves the machine.
 */
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  FEED_ERR_ADDRESS_REFUSED,
  FEED_ERR_CREDENTIAL_REFUSED,
  FEED_ERR_REDIRECT_REFUSED,
  FEED_ERR_RESPONSE_TOO_LARGE,
  FEED_ERR_TLS_CA,
  isRetryable,
} from '../../src/shared/errors/index.ts';
import { createFhirClient, DEFAULT_CONNECTION_POLICY } from '../../src/shared/fhir-client.ts';
import type { ConnectionPolicy } from '../../src/shared/fhir-client.ts';
import { createNetPolicy, ownEndpointRules } from '../../src/shared/net-policy.ts';
import { getJson } from '../../src/shared/fhir-http.ts';
import { failure, ok, sendJson, serverPool } from '../changes/support/http-server.ts';

const serve = serverPool();

function policy(options: Parameters<typeof createNetPolicy>[0]): ConnectionPolicy {
  const { policy: net, problems } = createNetPolicy(options);
  expect(problems).toEqual([]);
  return { net, caDir: DEFAULT_CONNECTION_POLICY.caDir };
}

describe('instance secrets come only from FHIR_SYNC_SECRET_*', () => {
  it.each([
    ['bearer', { type: 'bearer', tokenEnv: 'DEID_HMAC_KEY' }],
    ['basic', { type: 'basic', usernameEnv: 'FHIR_SYNC_SECRET_USER', passwordEnv: 'API_KEYS' }],
    [
      'client-credentials',
      {
        type: 'client-credentials',
        tokenUrl: 'http://127.0.0.1:9/token',
        clientIdEnv: 'FHIR_SYNC_SECRET_ID',
        clientSecretEnv: 'REDIS_URL',
      },
    ],
  ] as const)('refuses a %s credential named outside the set, although it is set', async (_kind, auth) => {
    const s = await serve(ok);
    const env = {
      DEID_HMAC_KEY: 'k'.repeat(40),
      API_KEYS: 'ops:operator:0123456789abcdef01234567',
      REDIS_URL: 'redis://secret@host',
      FHIR_SYNC_SECRET_USER: 'u',
      FHIR_SYNC_SECRET_ID: 'id',
    };
    const err = await failure(Promise.resolve().then(() => createFhirClient({ baseUrl: s.url, auth }, { env })));
    expect(err.code).toBe(FEED_ERR_CREDENTIAL_REFUSED.code);
    expect(err.message).not.toContain('kkkk');
    expect(s.requests).toEqual([]);
  });
});

describe('network policy', () => {
  it.each([
    ['the metadata service', 'http://169.254.169.254/'],
    ['the IPv6 metadata service', 'http://[fd00:ec2::254]/'],
    ['a mapped link-local address', 'http://[::ffff:169.254.169.254]/'],
    ['a NAT64 link-local address', 'http://[64:ff9b::a9fe:a9fe]/'],
    ['this host', 'http://0.0.0.0:8090/'],
  ])('refuses %s by default, before connecting', async (_what, baseUrl) => {
    const client = createFhirClient({ baseUrl, timeoutMs: 60_000 });
    const err = await failure(client.get(client.fhirUrl('Patient')));
    expect(err.code).toBe(FEED_ERR_ADDRESS_REFUSED.code);
    expect(isRetryable(err)).toBe(false);
  });

  it('allows loopback by default (the test servers and the demo use it)', async () => {
    const s = await serve(ok);
    const client = createFhirClient({ baseUrl: s.url });
    await expect(client.get(client.fhirUrl('Basic', 'x'))).resolves.toMatchObject({ id: 'x' });
  });

  it('normalises odd IPv4 notations before checking (0x7f000001, 127.1, 2130706433)', async () => {
    const s = await serve(ok);
    const port = new URL(s.url).port;
    const denyLoopback = policy({ deny: 'loopback' });
    for (const host of ['0x7f000001', '127.1', '2130706433', '017700000001', '[::ffff:7f00:1]']) {
      const client = createFhirClient({ baseUrl: `http://${host}:${port}/` }, { policy: denyLoopback });
      const err = await failure(client.get(client.fhirUrl('Basic', 'x')));
      expect(err.code, host).toBe(FEED_ERR_ADDRESS_REFUSED.code);
    }
    expect(s.requests).toEqual([]);
  });

  it("refuses the service's own Redis and API endpoints, other ports on the same host stay allowed", async () => {
    const s = await serve(ok);
    const port = Number(new URL(s.url).port);
    const own = policy({
      extraDeny: [...ownEndpointRules('127.0.0.1', port, []), ...ownEndpointRules('0.0.0.0', 6379, [])],
    });
    const client = createFhirClient({ baseUrl: `http://localhost:${port}/` }, { policy: own });
    expect((await failure(client.get(client.fhirUrl('Basic', 'x')))).code).toBe(FEED_ERR_ADDRESS_REFUSED.code);
    const redis = createFhirClient({ baseUrl: 'http://127.0.0.2:6379/' }, { policy: own });
    expect((await failure(redis.get(redis.fhirUrl('Basic', 'x')))).code).toBe(FEED_ERR_ADDRESS_REFUSED.code);
    expect(s.requests).toEqual([]);
    const other = await serve(ok);
    const allowed = createFhirClient({ baseUrl: other.url }, { policy: own });
    await expect(allowed.get(allowed.fhirUrl('Basic', 'x'))).resolves.toMatchObject({ id: 'x' });
  });

  it('checks the DNS answer at connect time and pins the connection to the vetted address', async () => {
    const s = await serve(ok);
    const port = new URL(s.url).port;
    const evil = createFhirClient(
      { baseUrl: `http://fhir.clinic.test:${port}/` },
      { lookup: () => Promise.resolve(['127.0.0.1', '169.254.169.254']) },
    );
    expect((await failure(evil.get(evil.fhirUrl('Basic', 'x')))).code).toBe(FEED_ERR_ADDRESS_REFUSED.code);
    expect(s.requests).toEqual([]);
    const good = createFhirClient(
      { baseUrl: `http://fhir.clinic.test:${port}/` },
      { lookup: () => Promise.resolve(['127.0.0.1']) },
    );
    await expect(good.get(good.fhirUrl('Basic', 'x'))).resolves.toMatchObject({ id: 'x' });
    expect(s.requests[0]!.headers.host).toBe(`fhir.clinic.test:${port}`);
  });

  it('applies an allow list when one is configured', async () => {
    const s = await serve(ok);
    const client = createFhirClient({ baseUrl: s.url }, { policy: policy({ allow: '10.0.0.0/8' }) });
    expect((await failure(client.get(client.fhirUrl('Basic', 'x')))).code).toBe(FEED_ERR_ADDRESS_REFUSED.code);
  });

  it('refuses a token endpoint on a forbidden address', async () => {
    const s = await serve(ok);
    const client = createFhirClient(
      {
        baseUrl: s.url,
        auth: {
          type: 'client-credentials',
          tokenUrl: 'http://169.254.169.254/latest/token',
          clientIdEnv: 'FHIR_SYNC_SECRET_ID',
          clientSecretEnv: 'FHIR_SYNC_SECRET_S',
        },
      },
      { env: { FHIR_SYNC_SECRET_ID: 'a', FHIR_SYNC_SECRET_S: 'b' } },
    );
    const err = await failure(client.get(client.fhirUrl('Basic', 'x')));
    expect(err.message).toContain(FEED_ERR_ADDRESS_REFUSED.code);
    expect(s.requests).toEqual([]);
  });
});

describe('redirects', () => {
  it('never follows a redirect to another origin (no credentials, no request there)', async () => {
    const elsewhere = await serve(ok);
    const s = await serve((_req, res) => {
      res.writeHead(302, { location: `${elsewhere.url}fhir/Basic/x` });
      res.end();
    });
    const client = createFhirClient(
      { baseUrl: s.url, auth: { type: 'bearer', tokenEnv: 'FHIR_SYNC_SECRET_T' } },
      { env: { FHIR_SYNC_SECRET_T: 'tok' } },
    );
    const err = await failure(client.get(client.fhirUrl('Basic', 'x')));
    expect(err.code).toBe(FEED_ERR_REDIRECT_REFUSED.code);
    expect(elsewhere.requests).toEqual([]);
    // The feeds' GET path refuses it the same way.
    const feed = await failure(getJson(client, client.fhirUrl('Basic', 'x').toString(), undefined, Date.now));
    expect(feed).toMatchObject({ code: FEED_ERR_REDIRECT_REFUSED.code });
  });

  it('follows a same-origin redirect (credentials kept), and stops after a few hops', async () => {
    const s = await serve((req, res) => {
      if (req.url === '/fhir/Basic/old') {
        res.writeHead(301, { location: '/fhir/Basic/x' });
        res.end();
      } else if (req.url === '/fhir/Basic/loop') {
        res.writeHead(302, { location: '/fhir/Basic/loop' });
        res.end();
      } else {
        ok(req, res);
      }
    });
    const client = createFhirClient(
      { baseUrl: s.url, auth: { type: 'bearer', tokenEnv: 'FHIR_SYNC_SECRET_T' } },
      { env: { FHIR_SYNC_SECRET_T: 'tok' } },
    );
    await expect(client.get(client.fhirUrl('Basic', 'old'))).resolves.toMatchObject({ id: 'x' });
    expect(s.requests.map((r) => r.headers.authorization)).toEqual(['Bearer tok', 'Bearer tok']);
    const err = await failure(client.get(client.fhirUrl('Basic', 'loop')));
    expect(err.code).toBe(FEED_ERR_REDIRECT_REFUSED.code);
    expect(s.requests.length).toBeLessThanOrEqual(2 + 6);
  });
});

describe('answer size cap', () => {
  const big = { resourceType: 'Basic', id: 'x', text: { div: 'a'.repeat(300_000) } };

  it('refuses an answer whose Content-Length is above the cap', async () => {
    const s = await serve((_req, res) => sendJson(res, 200, big));
    const client = createFhirClient({ baseUrl: s.url, maxResponseBytes: 100_000 });
    expect((await failure(client.get(client.fhirUrl('Basic', 'x')))).code).toBe(FEED_ERR_RESPONSE_TOO_LARGE.code);
  });

  it('stops reading a chunked answer once it passes the cap (feeds and searches too)', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = 'x'.repeat(64 * 1024);
      res.write(`{"resourceType":"Bundle","type":"history","entry":[],"pad":"`);
      let sent = 0;
      const more = (): void => {
        while (sent < 200 && res.write(chunk)) {
          sent++;
        }
        if (sent < 200) {
          res.once('drain', more);
        } else {
          res.end('"}');
        }
      };
      more();
    });
    const client = createFhirClient({ baseUrl: s.url, maxResponseBytes: 1_000_000 });
    const err = await failure(getJson(client, `${s.url}fhir/Basic/_history`, undefined, Date.now));
    expect(err.code).toBe(FEED_ERR_RESPONSE_TOO_LARGE.code);
    expect(isRetryable(err)).toBe(false);
    const viaClient = await failure(client.get(client.fhirUrl('Basic', '_history')));
    expect(viaClient.code ?? (viaClient.cause as { code?: string } | undefined)?.code).toBe(
      FEED_ERR_RESPONSE_TOO_LARGE.code,
    );
  });

  it('caps token answers at 64 KiB', async () => {
    const s = await serve((req, res) => {
      if (req.url === '/token') {
        sendJson(res, 200, { access_token: 't'.repeat(100_000), token_type: 'Bearer' });
      } else {
        ok(req, res);
      }
    });
    const client = createFhirClient(
      {
        baseUrl: s.url,
        auth: {
          type: 'client-credentials',
          tokenUrl: `${s.url}token`,
          clientIdEnv: 'FHIR_SYNC_SECRET_ID',
          clientSecretEnv: 'FHIR_SYNC_SECRET_S',
        },
      },
      { env: { FHIR_SYNC_SECRET_ID: 'a', FHIR_SYNC_SECRET_S: 'b' } },
    );
    const err = await failure(client.get(client.fhirUrl('Basic', 'x')));
    expect(err.message).toContain(FEED_ERR_RESPONSE_TOO_LARGE.code);
    expect(s.requests.filter((r) => r.url.startsWith('/fhir'))).toEqual([]);
  });
});

describe('tls.caFile only from the CA directory', () => {
  it('refuses a CA file outside the directory, also through a symlink inside it', () => {
    const root = mkdtempSync(join(tmpdir(), 'ca-dir-'));
    const caDir = join(root, 'ca');
    mkdirSync(caDir);
    writeFileSync(join(caDir, 'good.pem'), 'not really a PEM, but readable\n');
    writeFileSync(join(root, 'secret.txt'), 'DEID_HMAC_KEY=...\n');
    symlinkSync(join(root, 'secret.txt'), join(caDir, 'link.pem'));
    const p = { ...DEFAULT_CONNECTION_POLICY, caDir };
    for (const caFile of [
      join(root, 'secret.txt'),
      join(caDir, '..', 'secret.txt'),
      join(caDir, 'link.pem'),
      '/etc/passwd',
    ]) {
      expect(() => createFhirClient({ baseUrl: 'https://h/', tls: { caFile } }, { policy: p }), caFile).toThrow(
        expect.objectContaining({ code: FEED_ERR_TLS_CA.code }),
      );
    }
    expect(() =>
      createFhirClient({ baseUrl: 'https://h/', tls: { caFile: join(caDir, 'good.pem') } }, { policy: p }),
    ).not.toThrow();
  });
});
