import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, KEYS, setup } from './helpers.ts';
import type { TestContext } from './helpers.ts';

describe('sync, jobs, status, quarantine, instances, health, metrics', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await setup({ readyTimeoutMs: 100, now: () => new Date('2026-01-02T03:04:05Z') });
  });
  afterAll(() => ctx.app.close());
  const op = bearer(KEYS.operator);
  const viewer = bearer(KEYS.viewer);

  it('triggers one pass of one type, answers 202 with a job id and audits it', async () => {
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/sync/a/Observation',
      headers: op,
      payload: { since: '2025-01-01T00:00:00Z' },
    });
    expect(res.statusCode).toBe(202);
    const { jobId, statusUrl } = res.json<{ jobId: string; statusUrl: string }>();
    expect(ctx.sync.triggers).toEqual([
      { instanceId: 'a', resourceType: 'Observation', range: { since: '2025-01-01T00:00:00Z' } },
    ]);
    expect(statusUrl).toBe(`/jobs/${encodeURIComponent(jobId)}`);
    expect(ctx.audit.at(-1)).toEqual({
      action: 'sync.trigger',
      outcome: 'success',
      actor: { subject: 'ops', via: 'api-key', roles: ['operator'] },
      at: '2026-01-02T03:04:05.000Z',
      rulesVersion: ctx.rules.current().rulesVersion,
      target: { instanceId: 'a', resourceType: 'Observation', since: '2025-01-01T00:00:00Z', jobId },
    });

    const job = await ctx.app.inject({ method: 'GET', url: statusUrl, headers: viewer });
    expect(job.statusCode).toBe(200);
    expect(job.json()).toMatchObject({
      id: jobId,
      kind: 'pass',
      state: 'waiting',
      progress: { pages: 0, resources: 0 },
    });
  });

  it('passes a version range for a backfill', async () => {
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/sync/a/Patient',
      headers: op,
      payload: { versionRange: { lower: 5 } },
    });
    expect(res.statusCode).toBe(202);
    expect(ctx.sync.triggers.at(-1)).toEqual({
      instanceId: 'a',
      resourceType: 'Patient',
      range: { versionRange: { lower: 5 } },
    });
  });

  it('triggers a reconciliation (operator only, audited)', async () => {
    const refused = await ctx.app.inject({ method: 'POST', url: '/sync/a/Patient/reconcile', headers: viewer });
    expect(refused.statusCode).toBe(403);
    expect(ctx.sync.reconciles).toEqual([]);
    const res = await ctx.app.inject({ method: 'POST', url: '/sync/a/Patient/reconcile', headers: op });
    expect(res.statusCode).toBe(202);
    const { jobId } = res.json<{ jobId: string }>();
    expect(ctx.sync.reconciles).toEqual([{ instanceId: 'a', resourceType: 'Patient' }]);
    expect(ctx.audit.at(-1)).toMatchObject({
      action: 'sync.reconcile.trigger',
      outcome: 'success',
      target: { instanceId: 'a', resourceType: 'Patient', jobId },
    });
    const unknownType = await ctx.app.inject({ method: 'POST', url: '/sync/a/Claim/reconcile', headers: op });
    expect(unknownType.statusCode).toBe(422);
  });

  it('audits a refused trigger with its code', async () => {
    const res = await ctx.app.inject({ method: 'POST', url: '/sync/b/Patient', headers: op });
    expect(res.statusCode).toBe(404);
    expect(ctx.audit.at(-1)).toMatchObject({
      action: 'sync.trigger',
      outcome: 'failure',
      failureCode: 'TEST_ERR_UNKNOWN_INSTANCE',
    });
  });

  it('answers 404 problem for an unknown job', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/jobs/none', headers: viewer });
    expect(res.statusCode).toBe(404);
    expect(res.json().code).toBe('API_ERR_JOB_NOT_FOUND');
  });

  it('shows status per instance and type', async () => {
    ctx.sync.statusLines = [
      {
        instanceId: 'a',
        resourceType: 'Patient',
        cursor: '42',
        lagSeconds: 3.5,
        lastPassAt: '2026-01-01T00:00:00Z',
        lastPassResult: 'ok',
        quarantineCount: 1,
      },
    ];
    const res = await ctx.app.inject({ method: 'GET', url: '/status', headers: viewer });
    expect(res.json()).toEqual({
      generatedAt: '2026-01-02T03:04:05.000Z',
      rulesVersion: ctx.rules.current().rulesVersion,
      types: ctx.sync.statusLines,
    });
  });

  it('lists and retries the quarantine', async () => {
    ctx.sync.quarantine = [
      {
        id: 'q1',
        instanceId: 'a',
        resourceType: 'Patient',
        pseudonymousId: 'p1',
        reasonCode: 'DEID_ERR_X',
        rulesVersion: 'v',
        at: 't',
      },
      {
        id: 'q2',
        instanceId: 'a',
        resourceType: 'Observation',
        pseudonymousId: 'p2',
        reasonCode: 'DEID_ERR_Y',
        rulesVersion: 'v',
        at: 't',
      },
    ];
    const list = await ctx.app.inject({ method: 'GET', url: '/quarantine?resourceType=Observation', headers: viewer });
    expect(list.json()).toEqual({ count: 1, items: [ctx.sync.quarantine[1]] });
    expect((await ctx.app.inject({ method: 'POST', url: '/quarantine/retry', headers: viewer })).statusCode).toBe(403);
    const retry = await ctx.app.inject({
      method: 'POST',
      url: '/quarantine/retry',
      headers: op,
      payload: { ids: ['0b6f3c1e-7a2d-5c4e-9f10-2a3b4c5d6e7f'] },
    });
    expect(retry.statusCode).toBe(202);
    // Free text (e.g. a name typed by mistake) is refused, so it never reaches a job payload.
    const refused = await ctx.app.inject({
      method: 'POST',
      url: '/quarantine/retry',
      headers: op,
      payload: { ids: ['Wiegand'] },
    });
    expect(refused.statusCode).toBe(400);
    expect(refused.body).not.toContain('Wiegand');
    expect(ctx.audit.at(-1)).toMatchObject({ action: 'quarantine.retry', outcome: 'success', counts: { ids: 1 } });
  });

  it('manages the instance registry and audits every change', async () => {
    const before = ctx.audit.length;
    expect((await ctx.app.inject({ method: 'GET', url: '/instances', headers: viewer })).json()).toEqual({
      instances: [{ id: 'a', baseUrl: 'http://a/' }],
    });
    expect(
      (await ctx.app.inject({ method: 'POST', url: '/instances', headers: viewer, payload: { id: 'b' } })).statusCode,
    ).toBe(403);
    const created = await ctx.app.inject({
      method: 'POST',
      url: '/instances',
      headers: op,
      payload: { id: 'b', baseUrl: 'http://b/' },
    });
    expect(created.statusCode).toBe(201);
    expect(created.headers.location).toBe('/instances/b');
    const dup = await ctx.app.inject({ method: 'POST', url: '/instances', headers: op, payload: { id: 'b' } });
    expect(dup.statusCode).toBe(409);
    const patched = await ctx.app.inject({
      method: 'PATCH',
      url: '/instances/b',
      headers: op,
      payload: { enabled: false },
    });
    expect(patched.json()).toEqual({ id: 'b', baseUrl: 'http://b/', enabled: false });
    expect((await ctx.app.inject({ method: 'DELETE', url: '/instances/b', headers: op })).statusCode).toBe(204);
    const gone = await ctx.app.inject({ method: 'GET', url: '/instances/b', headers: viewer });
    expect(gone.statusCode).toBe(404);
    expect(gone.json().code).toBe('API_ERR_INSTANCE_NOT_FOUND');
    expect(ctx.audit.slice(before).map((e) => `${e.action}:${e.outcome}:${e.target?.instanceId}`)).toEqual([
      'api.forbidden:failure:undefined', // the viewer's POST (issue 10: 403s are audited)
      'instance.add:success:b',
      'instance.add:failure:b',
      'instance.update:success:b',
      'instance.remove:success:b',
    ]);
  });

  it('exposes the injected registry as Prometheus text', async () => {
    expect((await ctx.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
    const res = await ctx.app.inject({ method: 'GET', url: '/metrics', headers: viewer });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe(ctx.metrics.contentType);
    expect(res.body).toContain('# TYPE fhir_sync_passes_total counter');
    expect(res.body).toContain('fhir_sync_passes_total{instance="a",type="Patient"} 3');
  });

  it('reports readiness from the sync side, 503 when a dependency is down or silent', async () => {
    expect((await ctx.app.inject({ method: 'GET', url: '/readyz' })).json()).toEqual({
      ready: true,
      checks: { redis: true, global: true },
    });
    ctx.sync.readiness = { redis: true, global: false };
    const down = await ctx.app.inject({ method: 'GET', url: '/readyz' });
    expect(down.statusCode).toBe(503);
    expect(down.json()).toEqual({ ready: false, checks: { redis: true, global: false } });
    ctx.sync.readiness = 'hang';
    const silent = await ctx.app.inject({ method: 'GET', url: '/readyz' });
    expect(silent.statusCode).toBe(503);
    ctx.sync.readiness = { redis: true, global: true };
  });

  it('documents every route with schemas in OpenAPI', async () => {
    interface Op {
      parameters: { name: string }[];
      responses: Record<string, { content: Record<string, { schema: { $ref: string } }> }>;
      security?: unknown[];
    }
    const doc = (await ctx.app.inject({ method: 'GET', url: '/docs/json' })).json<{
      openapi: string;
      paths: Record<string, Record<string, Op>>;
      components: { securitySchemes: Record<string, unknown> };
    }>();
    expect(doc.openapi).toBe('3.1.0');
    const paths = Object.keys(doc.paths).sort();
    expect(paths).toEqual(
      [
        '/healthz',
        '/instances',
        '/instances/{id}',
        '/jobs/{id}',
        '/metrics',
        '/quarantine',
        '/quarantine/retry',
        '/readyz',
        '/rules',
        '/rules/coverage',
        '/rules/preview',
        '/rules/validate',
        '/rules/versions',
        '/rules/versions/{version}',
        '/rules/versions/{version}/approve',
        '/rules/versions/{version}/reject',
        '/rules/versions/{version}/revert',
        '/status',
        '/sync/{instance}/{resourceType}',
        '/sync/{instance}/{resourceType}/reconcile',
      ].sort(),
    );
    const trigger = doc.paths['/sync/{instance}/{resourceType}']!.post!;
    expect(trigger.parameters.map((p) => p.name)).toEqual(['instance', 'resourceType']);
    expect(trigger.responses['202']).toBeDefined();
    expect(trigger.responses['403']!.content['application/json']!.schema.$ref).toBe('#/components/schemas/Problem');
    expect(doc.paths['/healthz']!.get!.security).toEqual([]);
    expect(doc.components.securitySchemes.bearerAuth).toEqual({ type: 'http', scheme: 'bearer' });
  });
});
