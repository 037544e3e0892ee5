/**
 * JSON reads for the feeds, over the one request layer (shared/fhir-http.ts): statuses are
 * classified here, 5xx and 429 retryable, other 4xx not; messages name the URL path only.
 */
import type { Bundle } from '@medplum/fhirtypes';
import type { MedplumClient } from '@medplum/core';
import {
  FEED_ERR_BAD_RESPONSE,
  FEED_ERR_RATE_LIMITED,
  FEED_ERR_REJECTED,
  FEED_ERR_SERVER,
  FEED_ERR_UNAUTHORIZED,
} from '../shared/errors/index.ts';
import { urlPath } from '../shared/fhir-client.ts';
import { fhirRequest } from '../shared/fhir-http.ts';
// Paging links are followed the same way by feeds and stores (one owner: shared/fhir-http.ts).
export { hasNextLink, nextLink } from '../shared/fhir-http.ts';

export interface JsonAnswer {
  readonly status: number;
  /** Parsed body; undefined for 204/304. */
  readonly body: unknown;
  /** The server's clock (HTTP `Date`, 1 s resolution) minus the request's duration, if sent. */
  readonly serverTime: number | undefined;
}

/**
 * GETs a URL and parses its JSON body.
 * @param client - a client from createFhirClient.
 * @param url - absolute URL.
 * @param signal - caller's abort signal.
 * @param clock - local clock, to measure the request's duration.
 * @returns status, body and server time.
 */
export async function getJson(
  client: MedplumClient,
  url: string,
  signal: AbortSignal | undefined,
  clock: () => number,
): Promise<JsonAnswer> {
  const started = clock();
  const answer = await fhirRequest(client, url, { method: 'GET', ...(signal === undefined ? {} : { signal }) });
  const serverTime = parseDate(answer.headers.get('date'), clock() - started);
  if (answer.status >= 400) {
    throw statusError(answer.status, url);
  }
  return { status: answer.status, body: answer.body, serverTime };
}

/**
 * The typed error for an HTTP failure status.
 * @param status - HTTP status >= 400.
 * @param url - request URL (only its path is used).
 * @returns the error.
 */
export function statusError(status: number, url: string): Error {
  const path = urlPath(url);
  if (status === 429) {
    return FEED_ERR_RATE_LIMITED.create(path);
  }
  if (status >= 500) {
    return FEED_ERR_SERVER.create(status, path);
  }
  if (status === 401 || status === 403) {
    return FEED_ERR_UNAUTHORIZED.create(path, status);
  }
  return FEED_ERR_REJECTED.create(path, status);
}

function parseDate(header: string | null, elapsedMs: number): number | undefined {
  const ms = header ? Date.parse(header) : Number.NaN;
  // The header is truncated to the second and was stamped after the query ran.
  return Number.isFinite(ms) ? ms - elapsedMs : undefined;
}

/**
 * Checks that a body is a Bundle of the expected type.
 * @param body - parsed body.
 * @param type - expected Bundle.type.
 * @param url - request URL, for messages.
 * @returns the bundle.
 */
export function asBundle(body: unknown, type: Bundle['type'], url: string): Bundle {
  const b = body as Bundle | undefined;
  if (!b || b.resourceType !== 'Bundle') {
    throw FEED_ERR_BAD_RESPONSE.create(urlPath(url), 'not a Bundle');
  }
  if (b.type !== type) {
    throw FEED_ERR_BAD_RESPONSE.create(urlPath(url), `Bundle.type is not ${type}`);
  }
  if (b.entry !== undefined && !Array.isArray(b.entry)) {
    throw FEED_ERR_BAD_RESPONSE.create(urlPath(url), 'Bundle.entry is not a list');
  }
  return b;
}

/**
 * Parses a FHIR instant to epoch milliseconds.
 * @param value - the instant.
 * @returns milliseconds, or undefined when absent or malformed.
 */
export function instantMs(value: string | undefined): number | undefined {
  if (!value) {
    return undefined;
  }
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}
