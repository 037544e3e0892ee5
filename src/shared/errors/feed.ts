/**
 * FEED_ERR_*: reading change feeds and talking to a FHIR server as a client (connection,
 * authentication, TLS). Messages carry a URL *path* at most, never a query string: query
 * values can hold PHI (identifier searches), and next links carry server paging state.
 * Transient failures (5xx, 429, timeouts, refused connections, token endpoint outages) are
 * retryable; the engine's backoff retries them. Everything else needs a human.
 */
import { defineError } from './define.ts';

/** The FHIR server answered 5xx. */
export const FEED_ERR_SERVER = defineError('FEED_ERR_SERVER', 'FHIR server answered %s for GET %s', 502, true);

/** The FHIR server answered 429 Too Many Requests. */
export const FEED_ERR_RATE_LIMITED = defineError(
  'FEED_ERR_RATE_LIMITED',
  'FHIR server rate-limited GET %s (429)',
  503,
  true,
);

/** No answer within the configured time. */
export const FEED_ERR_TIMEOUT = defineError('FEED_ERR_TIMEOUT', 'Request to %s timed out after %s ms', 504, true);

/** The connection failed (refused, reset, DNS, TLS handshake). The second argument is a system code. */
export const FEED_ERR_CONNECTION = defineError('FEED_ERR_CONNECTION', 'Could not reach %s (%s)', 502, true);

/** The FHIR server refused the credentials (401/403). */
export const FEED_ERR_UNAUTHORIZED = defineError(
  'FEED_ERR_UNAUTHORIZED',
  'FHIR server refused access to %s (%s)',
  502,
  false,
);

/** The FHIR server rejected the request with another 4xx. */
export const FEED_ERR_REJECTED = defineError('FEED_ERR_REJECTED', 'FHIR server rejected GET %s with %s', 502, false);

/** The answer could not be understood (not JSON, wrong shape). The second argument says what, never a value. */
export const FEED_ERR_BAD_RESPONSE = defineError('FEED_ERR_BAD_RESPONSE', 'Unexpected answer from %s: %s', 502, false);

/** A `next` link points at another origin; following it would send credentials elsewhere. */
export const FEED_ERR_FOREIGN_LINK = defineError(
  'FEED_ERR_FOREIGN_LINK',
  'Paging link from %s points to another origin (%s); refusing to follow it. Register the server under the origin it names itself with (its base URL in /metadata)',
  502,
  false,
);

/**
 * More resources share one lastUpdated instant than the server can page through (its links
 * fail) or than one page of the largest size holds: the feed cannot pass that instant.
 */
export const FEED_ERR_TIE_TOO_LARGE = defineError(
  'FEED_ERR_TIE_TOO_LARGE',
  'More %s resources share lastUpdated %s than the server can page through (its paging links fail and a page holds at most %s); use fhir-history for this type or ask the server to page ties',
  502,
  false,
);

/** A cursor that this feed cannot interpret. */
export const FEED_ERR_CURSOR_INVALID = defineError(
  'FEED_ERR_CURSOR_INVALID',
  'Cursor cannot be used by the %s feed: %s',
  400,
  false,
);

/** The server cannot serve the requested feed kind for a type. */
export const FEED_ERR_UNSUPPORTED = defineError(
  'FEED_ERR_UNSUPPORTED',
  'Feed %s is not supported for %s: %s',
  400,
  false,
);

/** Invalid feed or connection options. */
export const FEED_ERR_CONFIG = defineError('FEED_ERR_CONFIG', 'Invalid feed configuration at %s: %s', 500, false);

/** A credential referenced by environment variable name is missing. */
export const FEED_ERR_CREDENTIAL_MISSING = defineError(
  'FEED_ERR_CREDENTIAL_MISSING',
  'Environment variable %s (%s) is not set or empty',
  500,
  false,
);

/**
 * A credential reference outside the declared set of instance secrets (issue 10): the
 * service's own keys (DEID_HMAC_KEY, API_KEYS, ...) must never be sent to a FHIR server.
 */
export const FEED_ERR_CREDENTIAL_REFUSED = defineError(
  'FEED_ERR_CREDENTIAL_REFUSED',
  'Environment variable %s may not be used as a credential (only %s* names are instance secrets)',
  500,
  false,
);

/** The network policy refuses the address (link-local, metadata, the service's own Redis/API, ...). */
export const FEED_ERR_ADDRESS_REFUSED = defineError(
  'FEED_ERR_ADDRESS_REFUSED',
  'Connection for %s refused by the network policy (%s)',
  502,
  false,
);

/** A redirect to another origin (or too many redirects); credentials must not follow it. */
export const FEED_ERR_REDIRECT_REFUSED = defineError(
  'FEED_ERR_REDIRECT_REFUSED',
  'Redirect from %s refused (%s)',
  502,
  false,
);

/** The answer is larger than the configured cap. */
export const FEED_ERR_RESPONSE_TOO_LARGE = defineError(
  'FEED_ERR_RESPONSE_TOO_LARGE',
  'Answer from %s is larger than %s bytes',
  502,
  false,
);

/** The custom CA file for TLS could not be read. */
export const FEED_ERR_TLS_CA = defineError('FEED_ERR_TLS_CA', 'Cannot read the CA file %s (%s)', 500, false);

/** The OAuth2 token endpoint refused the client credentials (4xx) or sent no usable token. */
export const FEED_ERR_TOKEN_REJECTED = defineError(
  'FEED_ERR_TOKEN_REJECTED',
  'Token endpoint %s refused the client credentials (%s)',
  502,
  false,
);

/** The OAuth2 token endpoint is unavailable (5xx, 429, timeout, connection). */
export const FEED_ERR_TOKEN_UNAVAILABLE = defineError(
  'FEED_ERR_TOKEN_UNAVAILABLE',
  'Token endpoint %s is unavailable (%s)',
  503,
  true,
);

/** A change event kind the feed does not know; failing closed rather than skipping a change. */
export const FEED_ERR_UNKNOWN_EVENT = defineError(
  'FEED_ERR_UNKNOWN_EVENT',
  'Unknown change event at %s: %s',
  502,
  false,
);
