/**
 * One way to build a FHIR client for a configured server, used by the change feeds and the
 * sync writer: a MedplumClient (`@medplum/core`) pointed at `baseUrl` + `fhirPath`, with
 * `extendedMode: false`, no response cache and **no retries of its own** (`maxRetries: 0`).
 *
 * Why no MedplumClient retries: it retries 429/5xx for every method, POST transactions
 * included, with at most ~2 s of backoff. The engine already retries on our typed,
 * `retryable` errors with its own backoff (and its cursor never moves past an unwritten
 * page), so client retries would only multiply attempts (engine attempts x 3), hide outages
 * from metrics, and re-send non-idempotent requests behind the writer's back.
 *
 * Why authentication lives in the fetch wrapper, not in MedplumClient's auth state:
 * - MedplumClient clears a static `accessToken` for good after one 401 it cannot refresh.
 * - Its client-credentials login checks the JWT `cid`/`client_id` claim against the client
 *   id and rejects issuers that carry the client only in `azp`; for Medplum tokens it also
 *   calls `auth/me`, which other servers do not have.
 * The wrapper instead adds the header per request (only for URLs under `baseUrl`'s origin, so
 * a foreign link never receives credentials), caches the OAuth2 token until shortly before
 * `expires_in`, and on a 401 fetches a new token once and repeats the request.
 *
 * Credentials are referenced by environment variable *name* in the configuration and read
 * once, here, and only names in the declared set (`FHIR_SYNC_SECRET_*`) are read. Their
 * values are never logged nor put in error messages. Every request goes through the
 * transport of fhir-transport.ts (network policy, same-origin redirects, size cap).
 */
import { ClientStorage, MedplumClient, MemoryStorage } from '@medplum/core';
import {
  FEED_ERR_CONFIG,
  FEED_ERR_CREDENTIAL_MISSING,
  FEED_ERR_CREDENTIAL_REFUSED,
  FEED_ERR_TOKEN_REJECTED,
  FEED_ERR_TOKEN_UNAVAILABLE,
} from './errors/index.ts';
import { AppError } from './errors/define.ts';
import {
  codedCause,
  createTransport,
  DEFAULT_CONNECTION_POLICY,
  DEFAULT_MAX_RESPONSE_BYTES,
  TOKEN_MAX_RESPONSE_BYTES,
  urlPath,
} from './fhir-transport.ts';
import type { ConnectionPolicy, FetchFn, Lookup, Send } from './fhir-transport.ts';

export { codedCause, networkError, urlPath, DEFAULT_CA_DIR, DEFAULT_CONNECTION_POLICY } from './fhir-transport.ts';
export type { ConnectionPolicy, FetchFn, Lookup } from './fhir-transport.ts';

/**
 * Instance secrets come only from environment variables with this prefix (issue 10): a
 * registered instance can never make the worker send the service's own keys
 * (DEID_HMAC_KEY, API_KEYS, ...) to a URL of the operator's choice.
 */
export const SECRET_ENV_PREFIX = 'FHIR_SYNC_SECRET_';

/**
 * Whether an environment variable name is in the declared set of instance secrets.
 * @param name - the name from the configuration.
 * @returns true for `FHIR_SYNC_SECRET_<A-Z0-9_>+`.
 */
export function isSecretEnvName(name: string): boolean {
  return name.startsWith(SECRET_ENV_PREFIX) && /^[A-Z0-9_]{1,110}$/.test(name.slice(SECRET_ENV_PREFIX.length));
}

/** How to authenticate to a FHIR server. Secrets are named by environment variable. */
export type FhirAuth =
  | { readonly type: 'none' }
  | { readonly type: 'bearer'; readonly tokenEnv: string }
  | { readonly type: 'basic'; readonly usernameEnv: string; readonly passwordEnv: string }
  | {
      readonly type: 'client-credentials';
      /** Absolute token endpoint URL. */
      readonly tokenUrl: string;
      readonly clientIdEnv: string;
      readonly clientSecretEnv: string;
      readonly scope?: string;
      /**
       * Where the client credentials go in the token request.
       * @defaultValue 'header' (HTTP Basic, RFC 6749 §2.3.1)
       */
      readonly credentialsIn?: 'header' | 'body';
    };

/** A configured FHIR server. */
export interface FhirConnection {
  /** Server root, e.g. `http://127.0.0.1:8091/` (Aidbox's `$changes` lives here). */
  readonly baseUrl: string;
  /**
   * Path of the FHIR base below `baseUrl`.
   * @defaultValue 'fhir'
   */
  readonly fhirPath?: string;
  /** @defaultValue `{ type: 'none' }` */
  readonly auth?: FhirAuth;
  /** Trust exactly this CA (PEM file) for TLS instead of the system roots. */
  readonly tls?: { readonly caFile: string };
  /**
   * Limit for one request, body included, in milliseconds.
   * @defaultValue 30000
   */
  readonly timeoutMs?: number;
  /**
   * Largest answer body accepted, in bytes (token answers: at most 64 KiB).
   * @defaultValue 33554432 (32 MiB)
   */
  readonly maxResponseBytes?: number;
}

/** I/O for {@link createFhirClient}; all optional. */
export interface FhirClientOptions {
  /** @defaultValue undici's fetch over a dispatcher that enforces the network policy */
  readonly fetch?: FetchFn;
  /** Milliseconds since the epoch; used for token expiry. @defaultValue Date.now */
  readonly clock?: () => number;
  /** Where `*Env` names are looked up. @defaultValue process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Network policy and CA directory. @defaultValue DEFAULT_CONNECTION_POLICY */
  readonly policy?: ConnectionPolicy;
  /** Host name resolution at connect time. @defaultValue node:dns lookup */
  readonly lookup?: Lookup;
}

/** What callers may need to know about a client made here (never secrets). */
export interface FhirClientInfo {
  readonly baseUrl: string;
  readonly fhirBaseUrl: string;
  readonly timeoutMs: number;
}

export const DEFAULT_FHIR_PATH = 'fhir';
export const DEFAULT_TIMEOUT_MS = 30_000;
/** A cached token is renewed this long before the server says it expires. */
const TOKEN_EXPIRY_MARGIN_MS = 30_000;

const infos = new WeakMap<MedplumClient, FhirClientInfo>();

/**
 * Creates a MedplumClient for one configured FHIR server.
 * @param conn - the connection configuration.
 * @param opts - injected fetch, clock and environment.
 * @returns the client; relative URLs resolve against `baseUrl`, use `client.fhirUrl(...)` for FHIR paths.
 */
export function createFhirClient(conn: FhirConnection, opts: FhirClientOptions = {}): MedplumClient {
  const baseUrl = checkBaseUrl(conn.baseUrl);
  const fhirPath = conn.fhirPath ?? DEFAULT_FHIR_PATH;
  const timeoutMs = conn.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    throw FEED_ERR_CONFIG.create('timeoutMs', 'must be a positive integer');
  }
  const maxResponseBytes = conn.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  if (!Number.isInteger(maxResponseBytes) || maxResponseBytes <= 0) {
    throw FEED_ERR_CONFIG.create('maxResponseBytes', 'must be a positive integer');
  }
  const send = createTransport({
    ...(opts.fetch === undefined ? {} : { fetch: opts.fetch }),
    timeoutMs,
    maxResponseBytes,
    policy: opts.policy ?? DEFAULT_CONNECTION_POLICY,
    ...(conn.tls === undefined ? {} : { caFile: conn.tls.caFile }),
    ...(opts.lookup === undefined ? {} : { lookup: opts.lookup }),
  });
  const auth = authenticator(conn.auth ?? { type: 'none' }, opts.env ?? process.env, send, opts.clock ?? Date.now);
  const origin = new URL(baseUrl).origin;

  const client = new MedplumClient({
    baseUrl,
    fhirUrlPath: fhirPath,
    extendedMode: false,
    maxRetries: 0,
    cacheTime: 0,
    storage: new ClientStorage(new MemoryStorage()),
    fetch: (url: string, init?: RequestInit) => auth(url, init ?? {}, sameOrigin(url, origin)),
  });
  infos.set(client, Object.freeze({ baseUrl, fhirBaseUrl: client.fhirUrl().toString(), timeoutMs }));
  return client;
}

/**
 * Facts about a client made by {@link createFhirClient}.
 * @param client - the client.
 * @returns its base URLs and timeout.
 */
export function fhirClientInfo(client: MedplumClient): FhirClientInfo {
  const info = infos.get(client);
  if (info) {
    return info;
  }
  return { baseUrl: client.getBaseUrl(), fhirBaseUrl: client.fhirUrl().toString(), timeoutMs: DEFAULT_TIMEOUT_MS };
}

function checkBaseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw FEED_ERR_CONFIG.create('baseUrl', 'not an absolute URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw FEED_ERR_CONFIG.create('baseUrl', 'must be http or https');
  }
  if (parsed.search || parsed.username || parsed.password) {
    throw FEED_ERR_CONFIG.create('baseUrl', 'must not carry a query or credentials');
  }
  return parsed.toString().endsWith('/') ? parsed.toString() : `${parsed.toString()}/`;
}

function sameOrigin(url: string, origin: string): boolean {
  try {
    return new URL(url).origin === origin;
  } catch {
    return false;
  }
}

type Authed = (url: string, init: RequestInit, internal: boolean) => Promise<Response>;

function authenticator(
  auth: FhirAuth,
  env: Readonly<Record<string, string | undefined>>,
  send: Send,
  clock: () => number,
): Authed {
  switch (auth.type) {
    case 'none':
      return (url, init) => send(url, init);
    case 'bearer': {
      const header = `Bearer ${secret(env, auth.tokenEnv, 'bearer token')}`;
      return (url, init, internal) => send(url, internal ? withAuth(init, header) : init);
    }
    case 'basic': {
      const user = secret(env, auth.usernameEnv, 'basic auth user');
      const pass = secret(env, auth.passwordEnv, 'basic auth password');
      const header = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
      return (url, init, internal) => send(url, internal ? withAuth(init, header) : init);
    }
    case 'client-credentials':
      return clientCredentials(auth, env, send, clock);
    default:
      return auth satisfies never;
  }
}

function secret(env: Readonly<Record<string, string | undefined>>, name: string, what: string): string {
  if (!isSecretEnvName(name)) {
    throw FEED_ERR_CREDENTIAL_REFUSED.create(name, SECRET_ENV_PREFIX);
  }
  const value = env[name];
  if (value === undefined || value === '') {
    throw FEED_ERR_CREDENTIAL_MISSING.create(name, what);
  }
  return value;
}

function withAuth(init: RequestInit, header: string): RequestInit {
  const headers = new Headers(init.headers);
  headers.set('Authorization', header);
  return { ...init, headers };
}

interface CachedToken {
  readonly header: string;
  readonly expiresAt: number;
}

function clientCredentials(
  auth: Extract<FhirAuth, { type: 'client-credentials' }>,
  env: Readonly<Record<string, string | undefined>>,
  send: Send,
  clock: () => number,
): Authed {
  const tokenUrl = auth.tokenUrl;
  try {
    new URL(tokenUrl);
  } catch {
    throw FEED_ERR_CONFIG.create('auth.tokenUrl', 'not an absolute URL');
  }
  const clientId = secret(env, auth.clientIdEnv, 'OAuth2 client id');
  const clientSecret = secret(env, auth.clientSecretEnv, 'OAuth2 client secret');
  let cached: CachedToken | undefined;
  let inflight: Promise<CachedToken> | undefined;

  const token = (): Promise<CachedToken> => {
    if (cached && clock() < cached.expiresAt) {
      return Promise.resolve(cached);
    }
    inflight ??= requestToken(send, { ...auth, clientId, clientSecret }, clock)
      .then((t) => (cached = t))
      .finally(() => (inflight = undefined));
    return inflight;
  };

  return async (url, init, internal) => {
    if (!internal) {
      return send(url, init);
    }
    const first = await token();
    const res = await send(url, withAuth(init, first.header));
    if (res.status !== 401) {
      return res;
    }
    // The server may have revoked or rotated it: renew once, unless another request already did.
    await res.body?.cancel();
    if (cached === first) {
      cached = undefined;
    }
    const second = await token();
    return send(url, withAuth(init, second.header));
  };
}

interface TokenRequest {
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly scope?: string;
  readonly credentialsIn?: 'header' | 'body';
}

async function requestToken(send: Send, req: TokenRequest, clock: () => number): Promise<CachedToken> {
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  const headers: Record<string, string> = {
    'Content-Type': 'application/x-www-form-urlencoded',
    Accept: 'application/json',
  };
  if (req.scope) {
    form.set('scope', req.scope);
  }
  if (req.credentialsIn === 'body') {
    form.set('client_id', req.clientId);
    form.set('client_secret', req.clientSecret);
  } else {
    const enc = (s: string): string => encodeURIComponent(s);
    headers.Authorization = `Basic ${Buffer.from(`${enc(req.clientId)}:${enc(req.clientSecret)}`).toString('base64')}`;
  }
  const path = urlPath(req.tokenUrl);
  let res: Response;
  try {
    res = await send(req.tokenUrl, { method: 'POST', headers, body: form.toString() }, TOKEN_MAX_RESPONSE_BYTES);
  } catch (err) {
    throw FEED_ERR_TOKEN_UNAVAILABLE.create(path, err instanceof AppError ? err.code : 'network error');
  }
  if (res.status === 429 || res.status >= 500) {
    await res.body?.cancel();
    throw FEED_ERR_TOKEN_UNAVAILABLE.create(path, `HTTP ${res.status}`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw FEED_ERR_TOKEN_REJECTED.create(path, `HTTP ${res.status}`);
  }
  const body: unknown = await res.json().catch((err: unknown) => {
    const coded = codedCause(err); // the size cap; anything else is an unreadable answer
    if (coded !== undefined) {
      throw coded;
    }
    return undefined;
  });
  return parseToken(body, path, clock);
}

function parseToken(body: unknown, path: string, clock: () => number): CachedToken {
  const b = (typeof body === 'object' && body !== null ? body : {}) as {
    access_token?: unknown;
    token_type?: unknown;
    expires_in?: unknown;
  };
  if (typeof b.access_token !== 'string' || b.access_token === '') {
    throw FEED_ERR_TOKEN_REJECTED.create(path, 'no access_token in the answer');
  }
  if (typeof b.token_type === 'string' && b.token_type.toLowerCase() !== 'bearer') {
    throw FEED_ERR_TOKEN_REJECTED.create(path, 'token_type is not Bearer');
  }
  const lifetimeMs =
    typeof b.expires_in === 'number' && b.expires_in > 0 ? b.expires_in * 1000 : Number.POSITIVE_INFINITY;
  const margin = Math.min(TOKEN_EXPIRY_MARGIN_MS, lifetimeMs / 2);
  return { header: `Bearer ${b.access_token}`, expiresAt: clock() + lifetimeMs - margin };
}
