/**
 * Issue 10.4 at the HTTP API: every error answer is problem+json (bad URLs, malformed HTTP,
 * slow clients, oversized headers), error lists are capped, 403s are audited, JSONPaths of
 * 64+ steps and stack-deep preview samples are refused without a 5xx, and a stalled Redis
 * gives a 503 instead of a hanging request.
 */
import { copyFile, mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anonymizerRulesEngine, createFileRulesStore } from '../../src/anonymizer/index.ts';
import { makeKey } from '../../src/anonymizer/index.ts';
import { openSyncControl } from '../../src/sync/index.ts';
import { bearer, KEYS, setup } from './helpers.ts';
import type { TestContext } from './helpers.ts';

const json = { ...bearer(KEYS.compliance), 'content-type': 'application/json' };
const yaml = { ...bearer(KEYS.compliance), 'content-type': 'application/yaml' };

/** Sends raw bytes to a listening app and returns everything it answers until it closes. */
async function raw(port: number, bytes: string, waitMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket: Socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no answer'));
    }, waitMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    socket.on('error', () => undefined);
  });
}

function problemOf(answer: string): { status: number; type: string; body: Record<string, unknown> } {
  const [head = '', body = ''] = answer.split('\r\n\r\n');
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]),
    type: /content-type: ([^\r\n]+)/i.exec(head)?.[1] ?? '',
    body: JSON.parse(body) as Record<string, unknown>,
  };
}

describe('API hardening', () => {
  let ctx: TestContext;
  let port: number;
  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'api-hard-'));
    const file = join(dir, 'anonymization.yaml');
    await copyFile('config/anonymization.yaml', file);
    const engine = anonymizerRulesEngine({ previewKey: makeKey('preview', 'p'.repeat(32)) });
    const rules = await createFileRulesStore({ file, versionsDir: join(dir, 'versions'), engine });
    ctx = await setup({ rules, requestTimeoutMs: 1000 });
    await ctx.app.listen({ host: '127.0.0.1', port: 0 });
    port = (ctx.app.server.address() as AddressInfo).port;
  }, 60_000);
  afterAll(() => ctx.app.close());

  describe('every error answer is problem+json', () => {
    it.each(['/x%ff', '/%', '/rules/%zz', '/instances/%c0%af'])('%s', async (url) => {
      for (const headers of [{}, bearer(KEYS.viewer)]) {
        const res = await ctx.app.inject({ method: 'GET', url, headers });
        expect(res.statusCode).toBeGreaterThanOrEqual(400);
        expect(res.statusCode).toBeLessThan(500);
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(res.json()).toMatchObject({ code: expect.stringMatching(/^API_ERR_/), status: res.statusCode });
        expect(res.body).not.toContain('not a valid url component');
      }
    });

    it('answers a slow client with 408 problem+json and closes the connection', async () => {
      const started = Date.now();
      const answer = await raw(port, 'GET /status HTTP/1.1\r\nHost: x\r\nX-Slow: ');
      const p = problemOf(answer);
      expect(p.status).toBe(408);
      expect(p.type).toMatch(/^application\/problem\+json/);
      expect(p.body).toMatchObject({ code: 'API_ERR_REQUEST_TIMEOUT' });
      expect(Date.now() - started).toBeLessThan(8000);
    });

    it('answers oversized headers and malformed HTTP with problem+json', async () => {
      const big = problemOf(await raw(port, `GET /status HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`));
      expect(big.status).toBe(431);
      expect(big.body).toMatchObject({ code: 'API_ERR_HEADERS_TOO_LARGE' });
      const bad = problemOf(await raw(port, 'GARBAGE\r\n\r\n'));
      expect(bad.status).toBe(400);
      expect(bad.type).toMatch(/^application\/problem\+json/);
      expect(bad.body).toMatchObject({ code: 'API_ERR_BAD_REQUEST' });
    });
  });

  describe('error lists are capped', () => {
    const manyBad = (n: number): string =>
      'version: 1\nprofile: p\nrules:\n' +
      Array.from(
        { length: n },
        (_, i) => `  - name: r${i}\n    select: { type: HumanName }\n    method: bogus${i}\n`,
      ).join('');

    it('a 480 KB rules file with thousands of problems gets a small answer with the exact count', async () => {
      const text = manyBad(8000);
      expect(text.length).toBeGreaterThan(450_000);
      const res = await ctx.app.inject({ method: 'PUT', url: '/rules', headers: yaml, payload: text });
      expect(res.statusCode).toBe(422);
      expect(res.body.length).toBeLessThan(100_000);
      const body = res.json<{ detail: string; errors: { detail: string }[] }>();
      expect(body.errors.length).toBeLessThanOrEqual(101);
      expect(body.errors.at(-1)?.detail).toMatch(/^\d+ more problem\(s\) not shown$/);
      const validated = await ctx.app.inject({ method: 'POST', url: '/rules/validate', headers: yaml, payload: text });
      expect(validated.statusCode).toBe(200);
      expect(validated.body.length).toBeLessThan(100_000);
      expect(validated.json<{ errors: unknown[] }>().errors.length).toBeLessThanOrEqual(101);
    });
  });

  describe('403s are audited', () => {
    it('records who was refused which route (template only)', async () => {
      const before = ctx.audit.length;
      const res = await ctx.app.inject({
        method: 'POST',
        url: '/sync/a/Patient?since=2020-01-01',
        headers: bearer(KEYS.viewer),
      });
      expect(res.statusCode).toBe(403);
      const events = ctx.audit.slice(before);
      expect(events).toEqual([
        expect.objectContaining({
          action: 'api.forbidden',
          outcome: 'failure',
          failureCode: 'API_ERR_FORBIDDEN',
          actor: expect.objectContaining({ subject: 'dash', roles: ['viewer'] }),
          target: { method: 'POST', route: '/sync/:instance/:resourceType' },
        }),
      ]);
      expect(JSON.stringify(events)).not.toContain('2020-01-01');
    });
  });

  describe('no 5xx from the rules engine', () => {
    const draft = (steps: number): string =>
      `version: 1\nprofile: p\nrules:\n  - name: deep\n    select: { path: "$.${Array.from({ length: steps }, () => 'extension[*]').join('.')}", in: Patient }\n    method: remove\n`;

    it.each([64, 65, 100, 1000])('refuses a JSONPath of %s steps with a coded problem', async (steps) => {
      const validated = await ctx.app.inject({
        method: 'POST',
        url: '/rules/validate',
        headers: yaml,
        payload: draft(steps),
      });
      expect(validated.statusCode).toBe(200);
      expect(validated.json()).toMatchObject({
        valid: false,
        errors: [expect.objectContaining({ code: 'CFG_ERR_RULES_JSONPATH' })],
      });
      const put = await ctx.app.inject({ method: 'PUT', url: '/rules', headers: yaml, payload: draft(steps) });
      expect(put.statusCode).toBe(422);
      const preview = await ctx.app.inject({
        method: 'POST',
        url: '/rules/preview',
        headers: json,
        payload: JSON.stringify({ resource: { resourceType: 'Patient', id: 'p' }, rules: draft(steps) }),
      });
      expect(preview.statusCode).toBe(422);
    });

    it('refuses a sample nested 10,000 deep (contained, extensions) with 422', async () => {
      const n = 10_000;
      const contained =
        '{"resource":' +
        '{"resourceType":"Basic","id":"b","contained":['.repeat(n) +
        '{"resourceType":"Basic","id":"z"}' +
        ']}'.repeat(n) +
        '}';
      for (const payload of [contained, nestedExtensions(n)]) {
        const res = await ctx.app.inject({ method: 'POST', url: '/rules/preview', headers: json, payload });
        expect(res.statusCode).toBe(422);
        expect(res.json()).toMatchObject({ code: 'API_ERR_INPUT_TOO_DEEP' });
      }
    });

    it('previews a sample just under the depth limit without a 5xx, with short locations', async () => {
      const n = 120;
      const res = await ctx.app.inject({
        method: 'POST',
        url: '/rules/preview',
        headers: json,
        payload: nestedExtensions(n),
      });
      expect(res.statusCode).toBeLessThan(500);
      for (const o of res.json<{ outcomes?: { location?: string }[] }>().outcomes ?? []) {
        expect((o.location ?? '').length).toBeLessThanOrEqual(301);
      }
    });
  });
});

describe('a stalled Redis gives 503, not a hanging request', () => {
  let stalled: Server;
  const sockets: Socket[] = [];
  afterAll(async () => {
    sockets.forEach((s) => s.destroy());
    await new Promise<void>((resolve) => stalled.close(() => resolve()));
  });

  it('answers sync triggers, job reads and readiness within the deadline', async () => {
    // A "Redis" that accepts connections and never answers a command.
    stalled = createServer((s) => {
      sockets.push(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve));
    const redisUrl = `redis://127.0.0.1:${(stalled.address() as AddressInfo).port}`;
    const dir = await mkdtemp(join(tmpdir(), 'api-redis-'));
    await writeFile(
      join(dir, 'instances.yaml'),
      'version: 1\nglobal:\n  baseUrl: http://127.0.0.1:9/\ninstances:\n  - id: a\n    baseUrl: http://127.0.0.1:9/\n    sendTypes: [Patient]\n',
    );
    const control = await openSyncControl({
      instances: join(dir, 'instances.yaml'),
      redisUrl,
      prefix: 'stall-test',
      logger: pino({ level: 'silent' }),
      redisTimeoutMs: 500,
    });
    const ctx = await setup({ sync: control.control, readyTimeoutMs: 2000 });
    try {
      const started = Date.now();
      const trigger = await ctx.app.inject({ method: 'POST', url: '/sync/a/Patient', headers: bearer(KEYS.operator) });
      expect(trigger.statusCode).toBe(503);
      expect(trigger.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(trigger.json()).toMatchObject({ code: 'SYNC_ERR_QUEUE_UNAVAILABLE', retryable: true });
      const job = await ctx.app.inject({ method: 'GET', url: '/jobs/pass:a:Patient:1', headers: bearer(KEYS.viewer) });
      expect(job.statusCode).toBe(503);
      const ready = await ctx.app.inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await ctx.app.close();
      await control.close();
    }
  }, 30_000);
});

/** A preview body whose Patient nests `n` extensions inside each other (built as text: no recursion here). */
function nestedExtensions(n: number): string {
  return (
    '{"resource":{"resourceType":"Patient","id":"p","extension":[' +
    '{"url":"http://x","extension":['.repeat(n) +
    '{"url":"http://x","valueString":"a"}' +
    ']}'.repeat(n) +
    ']}}'
  );
}
