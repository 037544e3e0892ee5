/**
 * The HTTP transport under every FHIR client (fhir-client.ts): fetch with a timeout, plus
 * the hardening of issue 10 that must hold for every request the service makes to a
 * configured server (feed pages, searches, reads, transactions, token requests):
 *
 * - **Network policy** (net-policy.ts): the URL is checked before the request, and every
 *   address DNS returns is checked at connect time, then the connection is pinned to the
 *   vetted address (a second DNS answer cannot swap it: no rebinding).
 * - **Redirects**: followed only within the same origin (at most 5, and a non-GET only on
 *   307/308); a redirect elsewhere is refused, so neither credentials nor request bodies
 *   leave the configured server.
 * - **Size cap**: an answer larger than the cap (Content-Length, or counted while reading)
 *   fails with FEED_ERR_RESPONSE_TOO_LARGE instead of filling the heap.
 * - **CA files** only from the configured CA directory (symlinks resolved).
 */
import { lookup } from 'node:dns/promises';
import { readFileSync, realpathSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve, sep } from 'node:path';
import { Agent, buildConnector, fetch as undiciFetch } from 'undici';
import {
  AppError,
  FEED_ERR_ADDRESS_REFUSED,
  FEED_ERR_CONNECTION,
  FEED_ERR_REDIRECT_REFUSED,
  FEED_ERR_RESPONSE_TOO_LARGE,
  FEED_ERR_TIMEOUT,
  FEED_ERR_TLS_CA,
} from './errors/index.ts';
import { checkAddress, checkUrl, DEFAULT_NET_POLICY } from './net-policy.ts';
import type { NetPolicy } from './net-policy.ts';

/** Where connections may go and which CA files may be read (one policy per process). */
export interface ConnectionPolicy {
  readonly net: NetPolicy;
  /** Directory every `tls.caFile` must lie in. */
  readonly caDir: string;
}

/** Default CA directory (FHIR_SYNC_CA_DIR). */
export const DEFAULT_CA_DIR = 'config/ca';
/** Default cap of one answer's body: 32 MiB (a feed page of big resources fits easily). */
export const DEFAULT_MAX_RESPONSE_BYTES = 32 * 1_048_576;
/** Token answers are a few hundred bytes; 64 KiB is generous. */
export const TOKEN_MAX_RESPONSE_BYTES = 65_536;
const MAX_REDIRECTS = 5;

/** The default policy: built-in deny list, loopback allowed, CA files from config/ca. */
export const DEFAULT_CONNECTION_POLICY: ConnectionPolicy = Object.freeze({
  net: DEFAULT_NET_POLICY,
  caDir: DEFAULT_CA_DIR,
});

/** A fetch function as MedplumClient and undici understand it. */
export type FetchFn = (url: string, init?: RequestInit & { dispatcher?: unknown }) => Promise<Response>;

/** One request: URL, init and (optionally) a smaller size cap. */
export type Send = (url: string, init: RequestInit, maxBytes?: number) => Promise<Response>;

/** What {@link createTransport} needs. */
export interface TransportOptions {
  /** Injected fetch (tests); by default undici's fetch with a policy-checking dispatcher. */
  readonly fetch?: FetchFn;
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
  readonly policy: ConnectionPolicy;
  /** PEM file of a private CA (must lie in `policy.caDir`). */
  readonly caFile?: string;
  /** Resolves a host name to its addresses. @defaultValue node:dns lookup (all addresses) */
  readonly lookup?: Lookup;
}

/** Resolves a host name to its addresses, in the order to try them. */
export type Lookup = (hostname: string) => Promise<readonly string[]>;

const dnsLookup: Lookup = async (hostname) => (await lookup(hostname, { all: true })).map((a) => a.address);

/**
 * Builds the transport of one client.
 * @param opts - fetch, limits, policy and CA.
 * @returns the send function.
 */
export function createTransport(opts: TransportOptions): Send {
  const ca = opts.caFile === undefined ? undefined : readCa(opts.caFile, opts.policy.caDir);
  const dispatcher =
    opts.fetch === undefined || ca !== undefined
      ? guardedAgent(opts.policy.net, ca, opts.lookup ?? dnsLookup)
      : undefined;
  const baseFetch: FetchFn = opts.fetch ?? (undiciFetch as unknown as FetchFn);
  return async (url, init, maxBytes = opts.maxResponseBytes) => {
    const timeout = AbortSignal.timeout(opts.timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    const limit = Math.min(maxBytes, opts.maxResponseBytes);
    let current = url;
    try {
      for (let hop = 0; ; hop++) {
        refuseAddress(opts.policy.net, current);
        const res = await baseFetch(current, {
          ...init,
          signal,
          redirect: 'manual',
          ...(dispatcher ? { dispatcher } : {}),
        });
        const next = redirectTarget(res, current, init.method ?? 'GET', hop);
        if (next === undefined) {
          return capped(res, current, limit);
        }
        await res.body?.cancel();
        current = next;
      }
    } catch (err) {
      throw networkError(err, current, opts.timeoutMs);
    }
  };
}

function refuseAddress(policy: NetPolicy, url: string): void {
  const why = checkUrl(policy, url);
  if (why !== undefined) {
    throw FEED_ERR_ADDRESS_REFUSED.create(urlPath(url), why);
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** The same-origin URL to follow, undefined for a final answer; throws for a refused redirect. */
function redirectTarget(res: Response, url: string, method: string, hop: number): string | undefined {
  if (!REDIRECTS.has(res.status)) {
    return undefined;
  }
  const location = res.headers.get('location');
  if (location === null) {
    return undefined;
  }
  let next: URL;
  try {
    next = new URL(location, url);
  } catch {
    throw FEED_ERR_REDIRECT_REFUSED.create(urlPath(url), 'Location is not a URL');
  }
  if (next.origin !== new URL(url).origin) {
    throw FEED_ERR_REDIRECT_REFUSED.create(urlPath(url), 'another origin');
  }
  const safe = method === 'GET' || method === 'HEAD' || res.status === 307 || res.status === 308;
  if (!safe) {
    throw FEED_ERR_REDIRECT_REFUSED.create(urlPath(url), `HTTP ${res.status} for ${method}`);
  }
  if (hop >= MAX_REDIRECTS) {
    throw FEED_ERR_REDIRECT_REFUSED.create(urlPath(url), 'too many redirects');
  }
  return next.toString();
}

const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/** The answer with a body that fails once more than `limit` bytes have arrived. */
function capped(res: Response, url: string, limit: number): Response {
  const declared = Number(res.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limit) {
    void res.body?.cancel().catch(() => undefined);
    throw FEED_ERR_RESPONSE_TOO_LARGE.create(urlPath(url), limit);
  }
  if (res.body === null || NULL_BODY.has(res.status)) {
    return res;
  }
  let total = 0;
  const counter = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      total += chunk.byteLength;
      if (total > limit) {
        controller.error(FEED_ERR_RESPONSE_TOO_LARGE.create(urlPath(url), limit));
        return;
      }
      controller.enqueue(chunk);
    },
  });
  return new Response(res.body.pipeThrough(counter), {
    status: res.status,
    statusText: res.statusText,
    headers: res.headers,
  });
}

/**
 * An undici Agent whose connections go only to addresses the policy allows: names are
 * resolved here, every address is checked, and the socket is opened to the first one (the
 * TLS server name stays the host name, so certificates are checked against it).
 */
function guardedAgent(policy: NetPolicy, ca: string | undefined, resolveHost: Lookup): Agent {
  const base = buildConnector(ca === undefined ? {} : { ca });
  return new Agent({
    connect: (options, callback) => {
      const port = Number(options.port) || (options.protocol === 'https:' ? 443 : 80);
      const host = options.hostname.replace(/^\[|\]$/g, '');
      vetted(policy, host, port, resolveHost).then(
        (address) =>
          base(
            {
              ...options,
              hostname: address,
              ...(options.protocol === 'https:' && isIP(host) === 0 ? { servername: options.servername ?? host } : {}),
            },
            callback,
          ),
        (err: unknown) => callback(err as Error, null),
      );
    },
  });
}

async function vetted(policy: NetPolicy, host: string, port: number, resolveHost: Lookup): Promise<string> {
  const addresses = isIP(host) !== 0 ? [host] : await resolveHost(host);
  for (const address of addresses) {
    const why = checkAddress(policy, address, port);
    if (why !== undefined) {
      // No path here: the connector knows only the origin.
      throw FEED_ERR_ADDRESS_REFUSED.create('/', `${why}, resolved address`);
    }
  }
  const first = addresses[0];
  if (first === undefined) {
    throw FEED_ERR_CONNECTION.create('/', 'ENOTFOUND');
  }
  return first;
}

/**
 * Reads a CA file, which must lie in the CA directory (after resolving symlinks), so an
 * operator cannot make the worker read arbitrary files.
 * @param file - the configured path.
 * @param caDir - the allowed directory.
 * @returns the PEM text.
 */
export function readCa(file: string, caDir: string): string {
  let real: string;
  let dir: string;
  try {
    dir = realpathSync(resolve(caDir));
    real = realpathSync(resolve(file));
  } catch (err) {
    throw FEED_ERR_TLS_CA.create(file, (err as NodeJS.ErrnoException).code ?? 'unreadable');
  }
  if (!real.startsWith(dir + sep)) {
    throw FEED_ERR_TLS_CA.create(file, 'outside the CA directory (FHIR_SYNC_CA_DIR)');
  }
  try {
    return readFileSync(real, 'utf8');
  } catch (err) {
    throw FEED_ERR_TLS_CA.create(file, (err as NodeJS.ErrnoException).code ?? 'unreadable');
  }
}

/**
 * The path of a URL, for error messages: never the query, which may hold PHI.
 * @param url - an absolute URL.
 * @returns its path, or a placeholder when it does not parse.
 */
export function urlPath(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return '(unparseable URL)';
  }
}

/**
 * Maps a fetch rejection to a typed error; the caller's own abort passes through unchanged,
 * and a coded error raised below fetch (policy, size cap) comes back out as itself.
 * @param err - what fetch (or reading a body) threw.
 * @param url - the request URL (only its path is used).
 * @param timeoutMs - the configured limit, for the message.
 * @returns the error to throw.
 */
export function networkError(err: unknown, url: string, timeoutMs: number): unknown {
  const coded = codedCause(err);
  if (coded !== undefined) {
    return coded;
  }
  const name = (err as { name?: unknown } | null)?.name;
  if (name === 'TimeoutError') {
    return FEED_ERR_TIMEOUT.create(urlPath(url), timeoutMs);
  }
  if (name === 'AbortError') {
    return err;
  }
  return FEED_ERR_CONNECTION.create(urlPath(url), systemCode(err));
}

/**
 * The coded error behind a rejection: the error itself, or one of its causes (a body read
 * that failed on the size cap rejects with a TypeError whose cause is the coded error).
 * @param err - what was thrown.
 * @returns the coded error, or undefined for an uncoded one.
 */
export function codedCause(err: unknown): AppError | undefined {
  let cur: unknown = err;
  for (let depth = 0; depth < 4 && cur && typeof cur === 'object'; depth++) {
    if (cur instanceof AppError) {
      return cur;
    }
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

function systemCode(err: unknown): string {
  let cur: unknown = err;
  for (let depth = 0; depth < 4 && cur && typeof cur === 'object'; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z0-9_]+$/.test(code)) {
      return code;
    }
    cur = (cur as { cause?: unknown }).cause;
  }
  return 'network error';
}
