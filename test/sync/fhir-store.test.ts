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

describe('FHIR store paging', () => {
  const page = (entries: string[], next?: string): Response =>
    new Response(
      JSON.stringify({
        resourceType: 'Bundle',
        type: 'searchset',
        entry: entries.map((id) => ({ resource: { resourceType: 'Patient', id } })),
        ...(next === undefined ? {} : { link: [{ relation: 'next', url: next }] }),
      }),
      { status: 200, headers: { 'content-type': 'application/fhir+json' } },
    );

  it('follows next links on the server, and refuses one to another origin (credentials go with it)', async () => {
    const asked: string[] = [];
    const store = createFhirStore(conn, {
      fetch: (url: string) => {
        asked.push(url);
        if (url.includes('evil')) {
          return Promise.resolve(page(['stolen']));
        }
        return Promise.resolve(
          url.includes('page=2')
            ? page(['p2'], 'http://evil.test/fhir?page=3')
            : page(['p1'], 'http://fhir.test/fhir?page=2'),
        );
      },
    });
    const seen: string[] = [];
    const err = await (async () => {
      for await (const rs of store.searchPages('Patient', {})) {
        seen.push(...rs.map((r) => r.id ?? ''));
      }
    })().then(
      () => undefined,
      (e: unknown) => e as { code?: string },
    );
    expect(seen).toEqual(['p1', 'p2']);
    expect(err?.code).toBe('FEED_ERR_FOREIGN_LINK');
    expect(asked.some((u) => u.includes('evil'))).toBe(false);
  });
});
