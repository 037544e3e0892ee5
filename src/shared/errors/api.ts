/**
 * API_ERR_*: errors of the HTTP layer (src/api). Messages are built from these templates
 * only; arguments are codes, roles, URL paths or counts, never request body values
 * (bodies may carry PHI, e.g. POST /rules/preview).
 */
import { defineError } from './define.ts';

/** /ui asked for in a checkout where the web app was never built. */
export const API_ERR_UI_NOT_BUILT = defineError(
  'API_ERR_UI_NOT_BUILT',
  'The web app is not built: run npm run build:ui (or npm run build)',
  503,
  false,
);

/** A push notification without the instance's token (or with another's). */
export const API_ERR_PUSH_TOKEN = defineError(
  'API_ERR_PUSH_TOKEN',
  "The notification does not carry this instance's push token",
  401,
  false,
);
/** Missing bearer token. */
export const API_ERR_UNAUTHENTICATED = defineError('API_ERR_UNAUTHENTICATED', 'A bearer token is required', 401, false);
/** Token present but not valid (bad signature, expired, wrong issuer, unknown API key). */
export const API_ERR_INVALID_TOKEN = defineError(
  'API_ERR_INVALID_TOKEN',
  'The bearer token is not valid (%s)',
  401,
  false,
);
/** Authenticated, but none of the principal's roles may use the route. */
export const API_ERR_FORBIDDEN = defineError('API_ERR_FORBIDDEN', 'This action needs one of the roles: %s', 403, false);
/** Request did not match the route's schema (params, query, body or headers). */
export const API_ERR_VALIDATION = defineError('API_ERR_VALIDATION', 'The request %s is not valid', 400, false);
/** Any other request the HTTP layer refuses (bad URL, ...); the argument is Fastify's code. */
export const API_ERR_BAD_REQUEST = defineError('API_ERR_BAD_REQUEST', 'The request was refused (%s)', 400, false);
/** Body could not be parsed (malformed JSON, empty JSON body, bad content length). */
export const API_ERR_MALFORMED_BODY = defineError(
  'API_ERR_MALFORMED_BODY',
  'The request body could not be read (%s)',
  400,
  false,
);
/** Body above the configured size limit. */
export const API_ERR_BODY_TOO_LARGE = defineError(
  'API_ERR_BODY_TOO_LARGE',
  'The request body is larger than %s bytes',
  413,
  false,
);
/** Content-Type the route does not accept. */
export const API_ERR_UNSUPPORTED_MEDIA_TYPE = defineError(
  'API_ERR_UNSUPPORTED_MEDIA_TYPE',
  'This content type is not accepted here',
  415,
  false,
);
/** The request (headers and body) did not arrive within API_REQUEST_TIMEOUT_MS. */
export const API_ERR_REQUEST_TIMEOUT = defineError(
  'API_ERR_REQUEST_TIMEOUT',
  'The request did not arrive within the time limit',
  408,
  false,
);
/** Request headers above the server's limit. */
export const API_ERR_HEADERS_TOO_LARGE = defineError(
  'API_ERR_HEADERS_TOO_LARGE',
  'The request headers are too large',
  431,
  false,
);
/** A JSON body nested deeper than the route accepts (a stack-exhausting input). */
export const API_ERR_INPUT_TOO_DEEP = defineError(
  'API_ERR_INPUT_TOO_DEEP',
  'The %s nests deeper than %s levels',
  422,
  false,
);
/** The preview could not process the sample (too large or too deep for the engine). */
export const API_ERR_PREVIEW_FAILED = defineError(
  'API_ERR_PREVIEW_FAILED',
  'The sample could not be de-identified (%s)',
  422,
  false,
);
/** No route for this method and path. */
export const API_ERR_ROUTE_NOT_FOUND = defineError('API_ERR_ROUTE_NOT_FOUND', 'No route %s %s', 404, false);
/** Too many requests from one client in the window. */
export const API_ERR_RATE_LIMITED = defineError('API_ERR_RATE_LIMITED', 'Too many requests; retry in %s', 429, true);
/** Job id unknown to the queue (never enqueued or already removed). */
export const API_ERR_JOB_NOT_FOUND = defineError('API_ERR_JOB_NOT_FOUND', 'No job %s', 404, false);
/** A rules file (PUT /rules, preview with draft rules) that the anonymizer refuses; details list each problem. */
export const API_ERR_RULES_INVALID = defineError(
  'API_ERR_RULES_INVALID',
  'The rules file has %s problem(s)',
  422,
  false,
);
/** GET /instances/{id} for an id the registry does not hold. */
export const API_ERR_INSTANCE_NOT_FOUND = defineError(
  'API_ERR_INSTANCE_NOT_FOUND',
  'No registered instance %s',
  404,
  false,
);
/** Rules version (hash) not kept in the version history. */
export const API_ERR_RULES_VERSION_NOT_FOUND = defineError(
  'API_ERR_RULES_VERSION_NOT_FOUND',
  'No rules version %s',
  404,
  false,
);
/** Four-eyes: the author of a proposed rules version tried to approve it. */
export const API_ERR_RULES_SELF_APPROVAL = defineError(
  'API_ERR_RULES_SELF_APPROVAL',
  'Version %s must be approved by another compliance user than its author',
  403,
  false,
);
/** Approve or reject of a rules version that is not proposed (already approved, rejected, or unknown state). */
export const API_ERR_RULES_NOT_PROPOSED = defineError(
  'API_ERR_RULES_NOT_PROPOSED',
  'Rules version %s is %s, not proposed',
  409,
  false,
);
/** PUT /rules with If-Match naming another version than the one in use (lost update). */
export const API_ERR_RULES_VERSION_CONFLICT = defineError(
  'API_ERR_RULES_VERSION_CONFLICT',
  'The rules in use are version %s, not the version the edit started from',
  412,
  false,
);
/** Reading or writing the rules file or its version history failed. */
export const API_ERR_RULES_STORE_IO = defineError('API_ERR_RULES_STORE_IO', 'Rules store %s failed at %s', 500, true);
/** Auth configuration (API_KEYS, API_KEYS_FILE, JWT settings) is not valid; raised at boot. */
export const API_ERR_AUTH_CONFIG = defineError(
  'API_ERR_AUTH_CONFIG',
  'Auth configuration is not valid: %s',
  500,
  false,
);
/** API configuration (port, limits, roles) is not valid; raised at boot. */
export const API_ERR_CONFIG = defineError('API_ERR_CONFIG', 'API configuration is not valid: %s', 500, false);
/** A dependency (sync control, registry) did not answer in time. */
export const API_ERR_DEPENDENCY_TIMEOUT = defineError(
  'API_ERR_DEPENDENCY_TIMEOUT',
  '%s did not answer within %s ms',
  503,
  true,
);
/** Anything not from the catalogue; the original is logged by code/name only. */
export const API_ERR_INTERNAL = defineError('API_ERR_INTERNAL', 'Internal error', 500, false);
