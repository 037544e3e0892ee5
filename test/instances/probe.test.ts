/**
 * What `fhir-sync doctor` finds, against stand-in servers over real HTTP: the feed kind `auto`
 * picks per type from the CapabilityStatement, refused credentials, an unreachable server.
 */
import { describe, expect, it } from 'vitest';
import { probeServer } from '../../src/instances/probe.ts';
import type { FeedConfig, ServerConnection } from '../../src/instances/index.ts';
import { serverPool } from '../changes/support/http-server.ts';

const serve = serverPool();
const conn = (baseUrl: string): ServerConnection =>
  ({ baseUrl, fhirUrlPath: 'fhir', auth: { type: 'none' }, timeoutMs: 5000 }) as ServerConnection;
const auto = { kind: 'auto' } as FeedConfig;

describe('probeServer', () => {
  it('reads version, clock skew and, per type, the feed kind auto picks and why', async () => {
    const server = await serve((_req, res) => {
      res.setHeader('content-type', 'application/fhir+json');
      res.setHeader('date', new Date(Date.now() + 30_000).toUTCString());
      res.end(
        JSON.stringify({
          resourceType: 'CapabilityStatement',
          fhirVersion: '4.0.1',
          software: { name: 'Medplum', version: '5.0.10' },
          rest: [
            {
              mode: 'server',
              resource: [
                { type: 'Patient', interaction: [{ code: 'read' }, { code: 'history-type' }] },
                { type: 'Observation', interaction: [{ code: 'read' }] },
              ],
            },
          ],
        }),
      );
    });
    const probe = await probeServer('local-m', conn(server.url), auto, ['Patient', 'Observation']);
    expect(probe).toMatchObject({ reachable: true, authOk: true, fhirVersion: '4.0.1', software: 'Medplum 5.0.10' });
    expect(probe.clockSkewSeconds).toBeGreaterThanOrEqual(28);
    expect(probe.clockSkewSeconds).toBeLessThanOrEqual(31);
    expect(probe.types.map((t) => [t.resourceType, t.kind])).toEqual([
      ['Patient', 'fhir-history'],
      ['Observation', 'search-lastupdated'],
    ]);
    expect(probe.types[1]!.why).toContain('back-dated');
  });

  it('checks a declared history by asking for it: declared but 405 means search-lastupdated', async () => {
    const server = await serve((req, res) => {
      res.setHeader('content-type', 'application/fhir+json');
      if ((req.url ?? '').includes('/_history')) {
        res.statusCode = 405;
        res.end(
          JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-supported' }] }),
        );
        return;
      }
      res.end(
        JSON.stringify({
          resourceType: 'CapabilityStatement',
          fhirVersion: '4.0.1',
          rest: [{ mode: 'server', resource: [{ type: 'Patient', interaction: [{ code: 'history-type' }] }] }],
        }),
      );
    });
    const probe = await probeServer('local-n', conn(server.url), auto, ['Patient']);
    expect(probe.types[0]).toMatchObject({ resourceType: 'Patient', kind: 'search-lastupdated' });
    expect(probe.types[0]!.why).toContain('answered 405');
  });

  it('tells refused credentials from an unreachable server', async () => {
    const server = await serve((_req, res) => {
      res.statusCode = 401;
      res.end();
    });
    expect(await probeServer('x', conn(server.url), auto, ['Patient'])).toMatchObject({
      reachable: true,
      authOk: false,
      problem: 'HTTP 401',
    });
    const down = await probeServer('y', conn('http://127.0.0.1:9/'), auto, ['Patient']);
    expect(down).toMatchObject({ reachable: false, authOk: false });
    expect(down.problem).toMatch(/^[A-Z]+_ERR_/);
  });
});
