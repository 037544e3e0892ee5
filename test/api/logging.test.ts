import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { bearer, KEYS, setup } from './helpers.ts';

describe('request logs', () => {
  it('carry method, path and status, never tokens, query values or bodies', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const ctx = await setup({ logger: pino({ level: 'debug' }, sink) });
    const phi = 'Oberhuber-Margarethe';
    await ctx.app.inject({
      method: 'GET',
      url: `/quarantine?instanceId=${phi.toLowerCase()}`,
      headers: bearer(KEYS.viewer),
    });
    await ctx.app.inject({
      method: 'POST',
      url: '/rules/preview',
      headers: bearer(KEYS.compliance),
      payload: { resource: { resourceType: 'Patient', name: [{ family: phi }] } },
    });
    await ctx.app.inject({
      method: 'POST',
      url: '/rules/preview',
      headers: { ...bearer(KEYS.compliance), 'content-type': 'application/json' },
      payload: `{"x": "${phi}"`,
    });
    await ctx.app.inject({ method: 'GET', url: '/status', headers: bearer('wrong-key-but-long-enough-000') });
    await ctx.app.close();
    const text = lines.join('');
    expect(text).toContain('"path":"/quarantine"');
    expect(text).toContain('"status":401');
    expect(text.toLowerCase()).not.toContain(phi.toLowerCase());
    for (const key of [...Object.values(KEYS), 'wrong-key-but-long-enough-000']) {
      expect(text).not.toContain(key);
    }
  });
});
