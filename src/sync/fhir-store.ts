/**
 * The FHIR operations the engine needs from one server (transaction, read, search, create),
 * over the shared MedplumClient factory (src/shared/fhir-client.ts: auth from environment
 * references, no client retries, timeouts as typed retryable errors).
 *
 * MedplumClient throws on HTTP >= 400 with the outcome but without the status, and the
 * writer must tell 412 (cursor conflict) from other 4xx (quarantine) from 5xx/429 (retry).
 * So the client's `onResponse` hook records each response's status in an AsyncLocalStorage
 * slot owned by the calling operation: concurrency-safe and nothing extra on the wire.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { MedplumClient } from '@medplum/core';
import type { Bundle, Resource, ResourceType } from '@medplum/fhirtypes';
import { codedCause, createFhirClient, DEFAULT_TIMEOUT_MS, networkError } from '../shared/fhir-client.ts';
import type { FhirClientOptions, FhirConnection } from '../shared/fhir-client.ts';
import { nextLink } from '../shared/paging.ts';
import { AppError, onSide, SINK_ERR_REQUEST, SINK_ERR_SERVER } from '../shared/errors/index.ts';
import type { ErrorSide } from '../shared/errors/index.ts';

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

interface Slot {
  status?: number;
}

/**
 * Builds a store over a configured server.
 * @param conn - connection (base URL, FHIR path, auth by env reference, timeout).
 * @param opts - injected fetch/env/clock for the client.
 * @returns the store.
 */
export function createFhirStore(conn: FhirConnection, opts: FhirClientOptions = {}): FhirStore {
  const als = new AsyncLocalStorage<Slot>();
  const recording = (status: number): void => {
    const slot = als.getStore();
    if (slot !== undefined) {
      slot.status = status;
    }
    opts.onResponse?.(status);
  };
  const client = createFhirClient(conn, { ...opts, onResponse: recording });
  return storeOverClient(client, als, conn.timeoutMs ?? DEFAULT_TIMEOUT_MS);
}

function storeOverClient(client: MedplumClient, als: AsyncLocalStorage<Slot>, timeoutMs: number): FhirStore {
  const base = client.fhirUrl().toString();
  /** Runs one client call and returns the HTTP status with the body or the error's outcome. */
  const call = async (fn: () => Promise<unknown>): Promise<FhirAnswer> => {
    const slot: Slot = {};
    try {
      const body = await als.run(slot, fn);
      return { status: slot.status ?? 200, body };
    } catch (err) {
      const name = (err as { name?: string }).name;
      const coded = codedCause(err);
      if (coded !== undefined && coded !== err) {
        throw coded; // raised while reading the body (size cap)
      }
      if (slot.status === undefined || err instanceof AppError || name === 'AbortError') {
        throw err; // no HTTP answer: network error, timeout, abort; or a coded refusal
      }
      if (name === 'TimeoutError') {
        // The status line came but the body did not arrive in time: whether a transaction
        // was applied is unknown, so this must be a retryable timeout (replays are
        // idempotent PUTs and the cursor is guarded by ifMatch), never a 200 without body.
        throw networkError(err, base, timeoutMs);
      }
      return { status: slot.status, body: (err as { outcome?: unknown }).outcome };
    }
  };
  const failed = (method: string, path: string, status: number): AppError =>
    status === 429 || status >= 500
      ? SINK_ERR_SERVER.create(status, method, path)
      : SINK_ERR_REQUEST.create(method, path, status);
  const searchPages: FhirStore['searchPages'] = async function* (type, query, signal) {
    let url: string | undefined = client.fhirSearchUrl(type as ResourceType, { ...query }).toString();
    for (let page = 0; url !== undefined && page < 10_000; page++) {
      const target: string = url;
      const ans = await call(() => client.get(target, { signal }));
      if (ans.status >= 400) {
        throw failed('GET', `${type}?…`, ans.status);
      }
      const bundle = ans.body as Bundle;
      yield (bundle.entry ?? [])
        .filter((e) => e.search?.mode !== 'include')
        .flatMap((e) => (e.resource === undefined ? [] : [e.resource]));
      url = nextLink(bundle, base, target);
    }
  };
  return {
    base,
    transaction: (bundle, signal) => call(() => client.executeBatch(bundle, { signal })),
    read: async (type, id, signal) => {
      const ans = await call(() => client.readResource(type as ResourceType, id, { signal }));
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
      const ans = await call(() => client.createResource(resource, { signal }));
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
