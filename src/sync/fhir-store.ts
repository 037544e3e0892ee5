/**
 * The FHIR operations the engine needs from one server (transaction, read, search, create),
 * over the one request layer (src/shared/fhir-http.ts): every answer comes with its HTTP status,
 * since the writer must tell 412 (cursor conflict) from other 4xx (quarantine) from 5xx/429
 * (retry).
 */
import type { MedplumClient } from '@medplum/core';
import type { Bundle, Resource, ResourceType } from '@medplum/fhirtypes';
import { createFhirClient } from '../shared/fhir-client.ts';
import { fhirRequest, nextLink } from '../shared/fhir-http.ts';
import type { FhirHttpRequest } from '../shared/fhir-http.ts';
import type { FhirClientOptions, FhirConnection } from '../shared/fhir-client.ts';

import { onSide, SINK_ERR_REQUEST, SINK_ERR_SERVER } from '../shared/errors/index.ts';
import type { ErrorSide, AppError } from '../shared/errors/index.ts';

/** An HTTP answer: status and parsed body. */
export interface FhirAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** One FHIR server as the engine uses it. */
export interface FhirStore {
  /** FHIR base URL (no credentials), for logs and messages. */
  readonly base: string;
  /**
   * POSTs a transaction (or batch) bundle.
   * @returns status and body for any HTTP answer; throws only for network errors and timeouts
   *   (retryable AppErrors) or an abort.
   */
  transaction(bundle: Bundle, signal?: AbortSignal): Promise<FhirAnswer>;
  /** Reads one resource; undefined when 404/410. */
  read(type: string, id: string, signal?: AbortSignal): Promise<Resource | undefined>;
  /** Every match of a search, following `next` links. */
  searchAll(type: string, query: Readonly<Record<string, string>>, signal?: AbortSignal): Promise<Resource[]>;
  /** The same search one page at a time (following `next` links), so memory stays at one page. */
  searchPages(type: string, query: Readonly<Record<string, string>>, signal?: AbortSignal): AsyncIterable<Resource[]>;
  /** POSTs a new resource (AuditEvent); returns its id. */
  create(resource: Resource, signal?: AbortSignal): Promise<string | undefined>;
}

/**
 * Builds a store over a configured server.
 * @param conn - connection (base URL, FHIR path, auth by env reference, timeout).
 * @param opts - injected fetch/env/clock for the client.
 * @returns the store.
 */
export function createFhirStore(conn: FhirConnection, opts: FhirClientOptions = {}): FhirStore {
  return storeOverClient(createFhirClient(conn, opts));
}

function storeOverClient(client: MedplumClient): FhirStore {
  const base = client.fhirUrl().toString();
  const call = async (method: FhirHttpRequest['method'], url: string, body?: unknown, signal?: AbortSignal) => {
    const answer = await fhirRequest(client, url, {
      method,
      ...(body === undefined ? {} : { body }),
      ...(signal === undefined ? {} : { signal }),
    });
    return { status: answer.status, body: answer.body };
  };
  const failed = (method: string, path: string, status: number): AppError =>
    status === 429 || status >= 500
      ? SINK_ERR_SERVER.create(status, method, path)
      : SINK_ERR_REQUEST.create(method, path, status);
  const searchPages: FhirStore['searchPages'] = async function* (type, query, signal) {
    let url: string | undefined = client.fhirSearchUrl(type as ResourceType, { ...query }).toString();
    for (let page = 0; url !== undefined && page < 10_000; page++) {
      const target: string = url;
      const ans = await call('GET', target, undefined, signal);
      if (ans.status >= 400) {
        throw failed('GET', `${type}?…`, ans.status);
      }
      const bundle = (ans.body ?? {}) as Bundle;
      yield (bundle.entry ?? [])
        .filter((e) => e.search?.mode !== 'include')
        .flatMap((e) => (e.resource === undefined ? [] : [e.resource]));
      url = nextLink(bundle, base, target);
    }
  };
  return {
    base,
    transaction: (bundle, signal) => call('POST', base, bundle, signal),
    read: async (type, id, signal) => {
      const ans = await call('GET', client.fhirUrl(type, id).toString(), undefined, signal);
      if (ans.status === 404 || ans.status === 410) {
        return undefined;
      }
      if (ans.status >= 400) {
        throw failed('GET', `${type}/{id}`, ans.status);
      }
      return ans.body as Resource;
    },
    searchPages,
    searchAll: async (type, query, signal) => {
      const out: Resource[] = [];
      for await (const page of searchPages(type, query, signal)) {
        out.push(...page);
      }
      return out;
    },
    create: async (resource, signal) => {
      const ans = await call('POST', client.fhirUrl(resource.resourceType).toString(), resource, signal);
      if (ans.status >= 400) {
        throw failed('POST', resource.resourceType, ans.status);
      }
      return (ans.body as Resource | undefined)?.id;
    },
  };
}

/**
 * The same store, its failures reported for one side (shared/errors/family.ts): FEED_ERR_* for
 * the server a channel reads from, SINK_ERR_* for the one it writes to.
 * @param store - a store.
 * @param side - source or target.
 * @returns the store whose errors carry that side's codes.
 */
export function storeOnSide(store: FhirStore, side: ErrorSide): FhirStore {
  const recode = <T>(p: Promise<T>): Promise<T> =>
    p.catch((err: unknown) => {
      throw onSide(err, side);
    });
  return {
    base: store.base,
    transaction: (bundle, signal) => recode(store.transaction(bundle, signal)),
    read: (type, id, signal) => recode(store.read(type, id, signal)),
    searchAll: (type, query, signal) => recode(store.searchAll(type, query, signal)),
    searchPages: (type, query, signal) => pagesOnSide(store.searchPages(type, query, signal), side),
    create: (resource, signal) => recode(store.create(resource, signal)),
  };
}

async function* pagesOnSide<T>(pages: AsyncIterable<T>, side: ErrorSide): AsyncGenerator<T> {
  try {
    yield* pages;
  } catch (err) {
    throw onSide(err, side);
  }
}
