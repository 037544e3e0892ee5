import { describe, expect, it } from 'vitest';
import type { Bundle } from '@medplum/fhirtypes';
import { createFhirStore } from '../../src/sync/index.ts';

const conn = { baseUrl: 'http://fhir.test/', fhirPath: 'fhir', timeoutMs: 50 };
const tx: Bundle = { resourceType: 'Bundle', type: 'transaction', entry: [] };

/** A response whose status line arrives but whose body stream fails as a timeout would. */
function stalledBody(status: number): Response {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.error(new DOMException('The operation timed out.', 'TimeoutError'));
    },
  });
  return new Response(body, { status, headers: { 'content-type': 'application/fhir+json' } });
}

describe('FHIR store over MedplumClient', () => {
  it('turns a body that times out after the status line into a retryable timeout, not an empty 200', async () => {
    const store = createFhirStore(conn, { fetch: () => Promise.resolve(stalledBody(200)) });
    const err = await store.transaction(tx).then(
      () => undefined,
      (e: unknown) => e as { code?: string; retryable?: boolean; message?: string },
    );
    expect(err?.code).toBe('FEED_ERR_TIMEOUT');
    expect(err?.retryable).toBe(true);
    expect(err?.message).toContain('/fhir');
  });

  it('answers the HTTP status and outcome of a refused transaction', async () => {
    const outcome = { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid' }] };
    const store = createFhirStore(conn, {
      fetch: () =>
        Promise.resolve(
          new Response(JSON.stringify(outcome), { status: 400, headers: { 'content-type': 'application/fhir+json' } }),
        ),
    });
    const answer = await store.transaction(tx);
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual(outcome);
  });
});
