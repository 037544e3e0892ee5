import { copyFile, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openInstanceRegistry } from '../../src/instances/index.ts';
import { bearer, KEYS, setup } from './helpers.ts';
import type { TestContext } from './helpers.ts';

describe('instance routes over the real registry (config/instances.yaml copy)', () => {
  let ctx: TestContext;
  let file: string;
  beforeAll(async () => {
    file = join(await mkdtemp(join(tmpdir(), 'instances-')), 'instances.yaml');
    await copyFile('config/instances.yaml', file);
    // instanceSchemas undefined: the app's default, the registry's own record schema.
    ctx = await setup({ instances: await openInstanceRegistry(file), instanceSchemas: undefined });
  });
  afterAll(() => ctx.app.close());
  const op = bearer(KEYS.operator);

  it('lists the registered locals', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/instances', headers: bearer(KEYS.viewer) });
    expect(res.statusCode).toBe(200);
    const ids = res.json<{ instances: { id: string }[] }>().instances.map((i) => i.id);
    expect(ids).toContain('local-a');
  });

  it("documents and answers records in the registry's own shape (derived from its schema)", async () => {
    const doc = (await ctx.app.inject({ method: 'GET', url: '/docs/json' })).json<{
      paths: Record<
        string,
        Record<string, { responses: Record<string, { content: Record<string, { schema: unknown }> }> }>
      >;
    }>();
    const record = JSON.stringify(
      doc.paths['/instances/{id}']?.get?.responses['200']?.content['application/json']?.schema,
    );
    for (const field of ['sendTypes', 'receiveAdminTypes', 'feed', 'schedule', 'references', 'clientSecretEnv']) {
      expect(record).toContain(`"${field}"`);
    }
    const res = await ctx.app.inject({ method: 'GET', url: '/instances/local-a', headers: bearer(KEYS.viewer) });
    expect(res.json()).toMatchObject({ id: 'local-a', enabled: true, feed: { kind: expect.any(String) } });
  });

  it('registers, changes and removes an instance, persisting each change', async () => {
    const created = await ctx.app.inject({
      method: 'POST',
      url: '/instances',
      headers: op,
      payload: { id: 'clinic-c', baseUrl: 'http://127.0.0.1:8093/', fhirUrlPath: 'fhir', sendTypes: ['Patient'] },
    });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ id: 'clinic-c', enabled: true, sendTypes: ['Patient'] });
    expect(await readFile(file, 'utf8')).toContain('clinic-c');

    const patched = await ctx.app.inject({
      method: 'PATCH',
      url: '/instances/clinic-c',
      headers: { ...op, 'content-type': 'application/merge-patch+json' },
      payload: JSON.stringify({ enabled: false }),
    });
    expect(patched.statusCode).toBe(200);
    expect(patched.json()).toMatchObject({ id: 'clinic-c', enabled: false });

    expect((await ctx.app.inject({ method: 'DELETE', url: '/instances/clinic-c', headers: op })).statusCode).toBe(204);
    expect(await readFile(file, 'utf8')).not.toContain('clinic-c');
    expect(ctx.audit.map((e) => e.action)).toEqual(['instance.add', 'instance.update', 'instance.remove']);
  });

  it('answers an invalid instance with each problem and its path, and writes nothing', async () => {
    const before = await readFile(file, 'utf8');
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/instances',
      headers: op,
      payload: { id: 'Bad Id', baseUrl: 'http://x/', sendTypes: ['NotAType'] },
    });
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(res.statusCode).toBeLessThan(500);
    const body = res.json<{ code: string; errors: { location?: string; detail: string }[] }>();
    expect(body.code).toBe('SYNC_ERR_INSTANCE_INVALID');
    expect(body.errors.map((e) => e.location)).toEqual(expect.arrayContaining(['id']));
    expect(await readFile(file, 'utf8')).toBe(before);
  });

  it('answers 404 for an unknown instance', async () => {
    const res = await ctx.app.inject({
      method: 'PATCH',
      url: '/instances/nope',
      headers: op,
      payload: { enabled: true },
    });
    expect(res.statusCode).toBe(404);
    expect(res.json<{ code: string }>().code).toBe('SYNC_ERR_INSTANCE_UNKNOWN');
  });
});
