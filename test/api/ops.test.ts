import { Registry, Gauge } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { buildOpsApp } from '../../src/api/index.ts';
import { bearer, KEYS, setup, testAuth } from './helpers.ts';

describe('ops-only app of a worker or scheduler process', () => {
  it('serves /healthz openly and /metrics with a token, nothing else', async () => {
    const metrics = new Registry();
    new Gauge({ name: 'fhir_sync_lag_seconds', help: 'Lag', labelNames: ['instance'], registers: [metrics] })
      .labels('a')
      .set(4);
    const app = await buildOpsApp({ metrics, auth: testAuth() });
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
    const res = await app.inject({ method: 'GET', url: '/metrics', headers: bearer(KEYS.viewer) });
    expect(res.body).toContain('fhir_sync_lag_seconds{instance="a"} 4');
    expect((await app.inject({ method: 'GET', url: '/status', headers: bearer(KEYS.viewer) })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(401);
    await app.close();
  });
});

describe('docs switch', () => {
  it('leaves /docs out when docs are off', async () => {
    const ctx = await setup({ docs: false });
    expect((await ctx.app.inject({ method: 'GET', url: '/docs/json', headers: bearer(KEYS.viewer) })).statusCode).toBe(
      404,
    );
    await ctx.app.close();
  });
});
