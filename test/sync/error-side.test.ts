/**
 * A failure says which side failed: the shared HTTP transport raises FEED_ERR_*, and a channel
 * reports what the server it writes to does as SINK_ERR_* (before: the global's connection
 * errors carried FEED_ERR_CONNECTION, as if a clinic's feed had failed).
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { parseInstances } from '../../src/instances/index.ts';
import { FEED_ERR_CONNECTION, onSide, SINK_ERR_SERVER } from '../../src/shared/errors/index.ts';
import type { AppError } from '../../src/shared/errors/index.ts';
import { createSyncEngine } from '../../src/sync/engine.ts';
import { storeOnSide } from '../../src/sync/fhir-store.ts';
import type { FhirStore } from '../../src/sync/fhir-store.ts';
import { plainCodec } from '../../src/sync/seal.ts';
import { serverPool } from '../changes/support/http-server.ts';
import { fakeAnonymizer } from './fakes.ts';

const serve = serverPool();

async function failure(p: Promise<unknown>): Promise<AppError> {
  return p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e as AppError,
  );
}

function failingStore(err: Error): FhirStore {
  const fail = (): Promise<never> => Promise.reject(err);
  return {
    base: 'http://x/fhir',
    transaction: fail,
    read: fail,
    searchAll: fail,
    create: fail,
    searchPages: async function* () {
      yield await Promise.resolve([]);
      throw err;
    },
  };
}

describe('errors by side', () => {
  it('recodes transport errors for the target and HTTP refusals for the source, keeping message and cause', async () => {
    const refused = FEED_ERR_CONNECTION.create('/fhir', 'ECONNREFUSED');
    const target = await failure(
      storeOnSide(failingStore(refused), 'target').transaction({ resourceType: 'Bundle', type: 'transaction' }),
    );
    expect(target).toMatchObject({ code: 'SINK_ERR_CONNECTION', retryable: true, message: refused.message });
    expect(target.cause).toBe(refused);
    expect(await failure(storeOnSide(failingStore(refused), 'source').read('Patient', 'p'))).toBe(refused);

    const busy = SINK_ERR_SERVER.create(503, 'GET', 'Patient?…');
    const pages = storeOnSide(failingStore(busy), 'source').searchPages('Patient', {});
    const seen: unknown[] = [];
    const err = await failure(
      (async () => {
        for await (const page of pages) {
          seen.push(page);
        }
      })(),
    );
    expect(seen).toEqual([[]]);
    expect(err).toMatchObject({ code: 'FEED_ERR_SERVER', retryable: true });
    const bug = new TypeError('boom');
    expect(onSide(bug, 'target')).toBe(bug);
  });

  it('an engine channel reports the global as the target forward and as the source in reverse', async () => {
    const local = await serve((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' }).end('{}');
    });
    const { config } = parseInstances(
      `version: 1
global: { baseUrl: http://127.0.0.1:9/, bundleSize: 10, adminTypes: [Organization] }
instances:
  - id: a
    baseUrl: ${local.url}
    fhirUrlPath: fhir
    sendTypes: [Patient]
    receiveAdminTypes: [Organization]
    feed: { kind: fhir-history }
`,
      { source: 'test' },
    );
    const engine = createSyncEngine({
      config: () => Promise.resolve(config),
      anonymizer: fakeAnonymizer(),
      codec: plainCodec,
      logger: pino({ level: 'silent' }),
    });
    const forward = await engine.openChannel({ instanceId: 'a', resourceType: 'Patient' });
    expect((await failure(forward.target.read('Basic', 'x'))).code).toBe('SINK_ERR_CONNECTION');
    expect((await failure(forward.source.read('Patient', 'p'))).code).toBe('FEED_ERR_SERVER');
    expect((await failure((await engine.globalStore()).read('Basic', 'x'))).code).toBe('SINK_ERR_CONNECTION');
    const reverse = await engine.openChannel({ instanceId: 'a', resourceType: 'Organization', direction: 'reverse' });
    expect((await failure(reverse.source.read('Organization', 'o'))).code).toBe('FEED_ERR_CONNECTION');
    expect((await failure(reverse.target.read('Organization', 'o'))).code).toBe('SINK_ERR_SERVER');
  });
});
