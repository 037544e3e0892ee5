/**
 * POST /hooks/fhir/{instance}/{type}: push wake-ups from the locals, authenticated by the
 * instance's token (derived from the push secret), body never read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushToken } from '../../src/sync/index.ts';
import { bearer, KEYS, setup } from './helpers.ts';
import type { TestContext } from './helpers.ts';

const SECRET = Buffer.from('push-secret-for-tests-0123456789abcdef');

describe('push wake-up route', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await setup({ pushSecret: SECRET });
  });
  afterAll(() => ctx.app.close());
  const hook = (path: string, token: string | undefined, payload?: string) =>
    ctx.app.inject({
      method: 'POST',
      url: path,
      headers: {
        ...(token === undefined ? {} : { 'x-fhir-sync-token': token }),
        'content-type': 'application/x-www-form-urlencoded; charset=UTF-8',
      },
      ...(payload === undefined ? {} : { payload }),
    });

  it("queues a pass for the instance's type with its token, and only with it", async () => {
    const ok = await hook('/hooks/fhir/a/Patient', pushToken(SECRET, 'a'));
    expect(ok.statusCode).toBe(202);
    expect(ctx.sync.wakes).toEqual([{ instanceId: 'a', resourceType: 'Patient' }]);
    const other = await hook('/hooks/fhir/a/Patient', pushToken(SECRET, 'b'));
    expect(other.statusCode).toBe(401);
    expect(other.json<{ code: string }>().code).toBe('API_ERR_PUSH_TOKEN');
    expect((await hook('/hooks/fhir/a/Patient', undefined)).statusCode).toBe(401);
    expect((await hook('/hooks/fhir/a/Patient', pushToken(Buffer.from('x'.repeat(40)), 'a'))).statusCode).toBe(401);
    expect(ctx.sync.wakes).toHaveLength(1);
  });

  it('refuses unknown instances and types, ignores a payload unread and caps it', async () => {
    expect((await hook('/hooks/fhir/zz/Patient', pushToken(SECRET, 'zz'))).statusCode).toBe(404);
    expect((await hook('/hooks/fhir/a/Claim', pushToken(SECRET, 'a'))).statusCode).toBe(422);
    const phi = JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Oyelaran' }] });
    const withBody = await hook('/hooks/fhir/a/Observation', pushToken(SECRET, 'a'), phi);
    expect(withBody.statusCode).toBe(202);
    expect(withBody.body).not.toContain('Oyelaran');
    expect((await hook('/hooks/fhir/a/Observation', pushToken(SECRET, 'a'), 'x'.repeat(70_000))).statusCode).toBe(413);
  });

  it('does not exist without a push secret', async () => {
    const plain = await setup();
    try {
      const res = await plain.app.inject({
        method: 'POST',
        url: '/hooks/fhir/a/Patient',
        headers: { ...bearer(KEYS.operator), 'x-fhir-sync-token': pushToken(SECRET, 'a') },
      });
      expect(res.statusCode).toBe(404);
      expect(plain.sync.wakes).toEqual([]);
    } finally {
      await plain.app.close();
    }
  });
});
