/**
 * The engine keeps one FHIR client per connection across passes, so an OAuth token is fetched
 * once and reused until it expires (before: a new client, hence a new token, for every pass).
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { parseInstances } from '../../src/instances/index.ts';
import { createSyncEngine } from '../../src/sync/engine.ts';
import { plainCodec } from '../../src/sync/seal.ts';
import { serverPool } from '../changes/support/http-server.ts';
import { fakeAnonymizer } from './fakes.ts';

const serve = serverPool();

describe('engine FHIR clients', () => {
  it('fetches one OAuth token for several passes over the same connection', async () => {
    const server = await serve((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/token') {
        res.end(JSON.stringify({ access_token: 'tok', token_type: 'Bearer', expires_in: 3600 }));
        return;
      }
      res.end(JSON.stringify({ resourceType: 'Bundle', type: 'history', entry: [] }));
    });
    const { config } = parseInstances(
      `version: 1
global: { baseUrl: http://127.0.0.1:9/, bundleSize: 10 }
instances:
  - id: a
    baseUrl: ${server.url}
    fhirUrlPath: fhir
    sendTypes: [Patient, Observation]
    feed: { kind: fhir-history }
    auth:
      type: client-credentials
      tokenUrl: ${server.url}token
      clientIdEnv: FHIR_SYNC_SECRET_CID
      clientSecretEnv: FHIR_SYNC_SECRET_CS
`,
      { source: 'test' },
    );
    const engine = createSyncEngine({
      config: () => Promise.resolve(config),
      anonymizer: fakeAnonymizer(),
      codec: plainCodec,
      logger: pino({ level: 'silent' }),
      clientOptions: { env: { FHIR_SYNC_SECRET_CID: 'id', FHIR_SYNC_SECRET_CS: 'secret' } },
    });
    for (const resourceType of ['Patient', 'Observation', 'Patient']) {
      const channel = await engine.openChannel({ instanceId: 'a', resourceType });
      for await (const page of channel.feed.pages(resourceType, undefined, {})) {
        expect(page.changes).toEqual([]);
      }
    }
    const feedReads = server.requests.filter((r) => r.url.startsWith('/fhir/'));
    expect(feedReads.length).toBeGreaterThanOrEqual(3);
    expect(feedReads.every((r) => r.headers.authorization === 'Bearer tok')).toBe(true);
    expect(server.requests.filter((r) => r.url === '/token')).toHaveLength(1);
  });
});
