/**
 * The newest change of a type, read from the answer shapes servers give: the first entry of a
 * history (a version, or a deletion with only `response.lastModified`) or of a search sorted by
 * `-_lastUpdated`; nothing for Aidbox version feeds or an empty type.
 */
import { describe, expect, it } from 'vitest';
import { newestChangeAt } from '../../src/changes/newest.ts';
import { createFhirClient } from '../../src/shared/fhir-client.ts';
import { serverPool } from './support/http-server.ts';

const serve = serverPool();

describe('newestChangeAt', () => {
  it('reads the newest change from history, deletions included, and from a sorted search', async () => {
    const server = await serve((req, res) => {
      res.setHeader('content-type', 'application/fhir+json');
      const url = req.url ?? '';
      if (url.startsWith('/fhir/Patient/_history?_count=1')) {
        res.end(
          JSON.stringify({
            resourceType: 'Bundle',
            type: 'history',
            entry: [
              {
                request: { method: 'DELETE', url: 'Patient/1' },
                response: { status: '204', lastModified: '2026-12-05T10:00:05Z' },
              },
            ],
          }),
        );
      } else if (url.startsWith('/fhir/Observation?_sort=-_lastUpdated&_count=1')) {
        res.end(
          JSON.stringify({
            resourceType: 'Bundle',
            type: 'searchset',
            entry: [
              { resource: { resourceType: 'Observation', id: 'o', meta: { lastUpdated: '2026-12-05T09:00:00.250Z' } } },
            ],
          }),
        );
      } else {
        res.end(JSON.stringify({ resourceType: 'Bundle', type: 'history', entry: [] }));
      }
    });
    const client = createFhirClient({ baseUrl: server.url, fhirPath: 'fhir' });
    expect(await newestChangeAt(client, 'fhir-history', 'Patient', undefined, Date.now)).toBe(
      Date.parse('2026-12-05T10:00:05Z'),
    );
    expect(await newestChangeAt(client, 'search-lastupdated', 'Observation', undefined, Date.now)).toBe(
      Date.parse('2026-12-05T09:00:00.250Z'),
    );
    expect(await newestChangeAt(client, 'fhir-history', 'Encounter', undefined, Date.now)).toBeUndefined();
    expect(await newestChangeAt(client, 'aidbox-changes', 'Patient', undefined, Date.now)).toBeUndefined();
    expect(server.requests).toHaveLength(3);
  });
});
