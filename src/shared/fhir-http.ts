/**
 * The one request layer over a FHIR client (fhir-client.ts): every request of the feeds and of
 * the stores goes through {@link fhirRequest}, which answers the HTTP status, the headers and
 * the parsed JSON body. Nothing here throws for an HTTP status; callers decide what a status
 * means (a feed: 5xx retry, 4xx refuse; the writer: 412 cursor conflict, 4xx quarantine). It
 * throws only when no answer came (network, timeout, network policy, size cap) with the
 * transport's typed errors, or when a 2xx body is not JSON.
 *
 * For reads that must fail on an HTTP error status (the feeds), {@link getJson} classifies it:
 * 5xx and 429 retryable, other 4xx not; messages name the URL path only.
 *
 * Paging links are followed by one rule too ({@link nextLink}): only on the server's own origin,
 * since credentials go with the request (a server reached at 127.0.0.1 that names itself
 * localhost is the same server).
 *
 * It uses the client's `wrappedFetch` (authentication, same-origin rules, transport), not
 * MedplumClient's resource methods: those throw on HTTP >= 400 without the status, print
 * parse failures with console.error, and would need the status smuggled back out.
 */
import type { MedplumClient } from '@medplum/core';
import type { Bundle } from '@medplum/fhirtypes';
import {
  FEED_ERR_BAD_RESPONSE,
  FEED_ERR_FOREIGN_LINK,
  FEED_ERR_RATE_LIMITED,
  FEED_ERR_REJECTED,
  FEED_ERR_SERVER,
  FEED_ERR_UNAUTHORIZED,
} from './errors/index.ts';
import { fhirClientInfo } from './fhir-client.ts';
import { networkError, urlPath } from './fhir-transport.ts';

/** An answer: status, headers, and the parsed body (undefined when empty or not JSON on an error). */
export interface FhirHttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
}

/** What to send. */
export interface FhirHttpRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Sent as JSON with `Content-Type: application/fhir+json`. */
  readonly body?: unknown;
  readonly signal?: AbortSignal;
}

const ACCEPT = 'application/fhir+json, application/json;q=0.9';

/**
 * Sends one request.
 * @param client - a client from createFhirClient.
 * @param url - absolute URL.
 * @param req - method, JSON body, abort signal.
 * @returns status, headers and parsed body.
 */
export async function fhirRequest(client: MedplumClient, url: string, req: FhirHttpRequest): Promise<FhirHttpAnswer> {
  const { timeoutMs } = fhirClientInfo(client);
  // No cache: HAPI reuses search results for 60 s otherwise, and a feed must see the newest data.
  const headers: Record<string, string> = { Accept: ACCEPT, 'Cache-Control': 'no-cache' };
  const init: RequestInit = { method: req.method, headers };
  if (req.body !== undefined) {
    headers['Content-Type'] = 'application/fhir+json';
    init.body = JSON.stringify(req.body);
  }
  if (req.signal !== undefined) {
    init.signal = req.signal;
  }
  let res: Response;
  try {
    res = await client.wrappedFetch(url, init);
  } catch (err) {
    throw networkError(err, url, timeoutMs);
  }
  if (res.status === 204 || res.status === 304) {
    await res.body?.cancel();
    return { status: res.status, headers: res.headers, body: undefined };
  }
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    // The status line came but the body did not: for a transaction, whether it was applied is
    // unknown, so this is a retryable timeout or connection error, never an empty answer.
    throw networkError(err, url, timeoutMs);
  }
  if (text.trim() === '') {
    return { status: res.status, headers: res.headers, body: undefined };
  }
  try {
    return { status: res.status, headers: res.headers, body: JSON.parse(text) as unknown };
  } catch {
    if (res.status >= 400) {
      return { status: res.status, headers: res.headers, body: undefined }; // an HTML error page
    }
    throw FEED_ERR_BAD_RESPONSE.create(urlPath(url), 'body is not JSON');
  }
}

/**
 * The bundle's `next` link, checked to stay on the server's origin (credentials go with it).
 * @param bundle - a search or history bundle.
 * @param baseUrl - the server's base URL.
 * @param url - the URL the bundle came from, for messages.
 * @returns the absolute next URL, or undefined on the last page.
 */
export function nextLink(bundle: Bundle, baseUrl: string, url: string): string | undefined {
  const href = bundle.link?.find((l) => l.relation === 'next')?.url;
  if (!href) {
    return undefined;
  }
  let next: URL;
  try {
    next = new URL(href, url);
  } catch {
    throw FEED_ERR_BAD_RESPONSE.create(urlPath(url), 'next link is not a URL');
  }
  const base = new URL(baseUrl);
  if (next.origin === base.origin) {
    return next.toString();
  }
  // A server reached at 127.0.0.1 that names itself localhost (Medplum) is the same server:
  // the link is followed at the registered address, so the request goes where the network
  // policy and the credentials were checked for.
  if (
    next.protocol === base.protocol &&
    portOf(next) === portOf(base) &&
    isLoopbackName(next.hostname) &&
    isLoopbackName(base.hostname)
  ) {
    next.host = base.host;
    return next.toString();
  }
  throw FEED_ERR_FOREIGN_LINK.create(urlPath(url), next.origin);
}

/**
 * Whether a bundle has a `next` link, without following or checking it (keyset paging only
 * needs to know whether more pages exist).
 * @param bundle - a searchset or history bundle.
 * @returns true when a `next` link is present.
 */
export function hasNextLink(bundle: Bundle): boolean {
  return bundle.link?.some((l) => l.relation === 'next' && typeof l.url === 'string' && l.url !== '') === true;
}

function portOf(u: URL): string {
  return u.port !== '' ? u.port : u.protocol === 'https:' ? '443' : '80';
}

function isLoopbackName(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

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
