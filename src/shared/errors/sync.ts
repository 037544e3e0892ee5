/**
 * Catalogue entries of the sync engine (SYNC_ERR_*: instances, passes, queue, cursors) and
 * of writing to FHIR servers (SINK_ERR_*: transaction answers). Messages carry instance ids,
 * resource types, pseudonymous ids, HTTP statuses, URL paths and server message codes
 * (e.g. `HAPI-0535`), never field values or local resource ids.
 */
import { defineError } from './define.ts';

// ---- instances.yaml and the registry ----

/** instances.yaml could not be read. */
export const SYNC_ERR_INSTANCES_FILE = defineError(
  'SYNC_ERR_INSTANCES_FILE',
  'Cannot read instances file %s: %s',
  500,
  false,
);
/** instances.yaml is invalid; details.problems lists every problem with its line:column. */
export const SYNC_ERR_INSTANCES_INVALID = defineError(
  'SYNC_ERR_INSTANCES_INVALID',
  'Invalid instances configuration %s: %s',
  400,
  false,
);
/** A change through the registry would make the configuration invalid. */
export const SYNC_ERR_INSTANCE_INVALID = defineError(
  'SYNC_ERR_INSTANCE_INVALID',
  'Invalid instance %s: %s',
  400,
  false,
);
/**
 * An instance (or the global server) names a secret outside the declared set of instance
 * secrets (`FHIR_SYNC_SECRET_*` environment variables): the service's own keys can never be
 * sent to a FHIR server. details.problems lists each field.
 */
export const SYNC_ERR_SECRET_REF_REFUSED = defineError(
  'SYNC_ERR_SECRET_REF_REFUSED',
  'Instance %s names a secret outside FHIR_SYNC_SECRET_*: %s',
  422,
  false,
);
/** A baseUrl/tokenUrl the network policy refuses (link-local, metadata, own Redis/API, ...). */
export const SYNC_ERR_ADDRESS_REFUSED = defineError(
  'SYNC_ERR_ADDRESS_REFUSED',
  'Instance %s has an address the network policy refuses: %s',
  422,
  false,
);
/** tls.caFile outside the configured CA directory (FHIR_SYNC_CA_DIR). */
export const SYNC_ERR_CA_FILE_REFUSED = defineError(
  'SYNC_ERR_CA_FILE_REFUSED',
  'Instance %s has a CA file outside the CA directory: %s',
  422,
  false,
);
/** The instance id is not registered. */
export const SYNC_ERR_INSTANCE_UNKNOWN = defineError(
  'SYNC_ERR_INSTANCE_UNKNOWN',
  'Instance %s is not registered',
  404,
  false,
);
/** The instance is registered but disabled. */
export const SYNC_ERR_INSTANCE_DISABLED = defineError(
  'SYNC_ERR_INSTANCE_DISABLED',
  'Instance %s is disabled',
  409,
  false,
);
/** An instance with that id already exists. */
export const SYNC_ERR_INSTANCE_EXISTS = defineError(
  'SYNC_ERR_INSTANCE_EXISTS',
  'Instance %s is already registered',
  409,
  false,
);
/** The resource type is not in the instance's send list (or admin receive list). */
export const SYNC_ERR_TYPE_NOT_SYNCED = defineError(
  'SYNC_ERR_TYPE_NOT_SYNCED',
  'Instance %s does not sync resource type %s',
  400,
  false,
);
/** The requested range cannot be served by the instance's change feed. */
export const SYNC_ERR_RANGE_UNSUPPORTED = defineError(
  'SYNC_ERR_RANGE_UNSUPPORTED',
  'Instance %s: range %s is not supported by feed kind %s',
  400,
  false,
);

// ---- passes ----

/** Another pass moved the cursor of (instance, type) since this pass read it (ifMatch failed). */
export const SYNC_ERR_CURSOR_CONFLICT = defineError(
  'SYNC_ERR_CURSOR_CONFLICT',
  'Cursor of %s/%s was moved by another pass',
  409,
  true,
);
/** The cursor state resource on the server is malformed. */
export const SYNC_ERR_CURSOR_INVALID = defineError(
  'SYNC_ERR_CURSOR_INVALID',
  'Cursor state %s on %s is malformed: %s',
  500,
  false,
);
/** Another pass holds the lock of the instance; the job is delayed. */
export const SYNC_ERR_LOCKED = defineError(
  'SYNC_ERR_LOCKED',
  'Instance %s is being synced by another worker',
  409,
  true,
);
/** Some types of a sweep failed retryably (the others were written): the sweep runs again. */
export const SYNC_ERR_SWEEP_INCOMPLETE = defineError(
  'SYNC_ERR_SWEEP_INCOMPLETE',
  'Sweep of %s incomplete: %s failed with %s',
  503,
  true,
);
/** The pass was aborted (shutdown or lost lock). */
export const SYNC_ERR_ABORTED = defineError('SYNC_ERR_ABORTED', 'Pass %s/%s aborted: %s', 503, true);
/** The job payload is not one the workers understand. */
export const SYNC_ERR_JOB_INVALID = defineError('SYNC_ERR_JOB_INVALID', 'Invalid job payload: %s', 400, false);
/** The queue (Redis) is unreachable. */
export const SYNC_ERR_QUEUE_UNAVAILABLE = defineError('SYNC_ERR_QUEUE_UNAVAILABLE', 'Queue unavailable: %s', 503, true);
/** Sync options out of range (bundle size, retries...). */
export const SYNC_ERR_OPTIONS = defineError('SYNC_ERR_OPTIONS', 'Invalid sync option %s: %s', 500, false);
/** Quarantine reason: something the resource references was quarantined (it would be refused anyway). */
export const SYNC_ERR_DEPENDENCY_QUARANTINED = defineError(
  'SYNC_ERR_DEPENDENCY_QUARANTINED',
  'Resource of type %s held back: a resource it references is quarantined',
  422,
  false,
);
/** Quarantine reason: the channel's transform gave no outcome for a resource (a broken transform). */
export const SYNC_ERR_TRANSFORM_MISSING = defineError(
  'SYNC_ERR_TRANSFORM_MISSING',
  'No transform outcome for a resource of type %s',
  500,
  false,
);
/**
 * A resource nested deeper than the service walks (MAX_RESOURCE_DEPTH): quarantined before any
 * recursive step (references, de-identification, serialisation) can exhaust the stack.
 */
export const SYNC_ERR_TOO_DEEP = defineError(
  'SYNC_ERR_TOO_DEEP',
  'Resource of type %s nests deeper than the service walks',
  422,
  false,
);
/** A resource change carries no usable id (quarantined under its pseudonym; the page goes on). */
export const SYNC_ERR_CHANGE_INVALID = defineError(
  'SYNC_ERR_CHANGE_INVALID',
  'Change of type %s has no valid id',
  422,
  false,
);

// ---- writing to FHIR servers ----

/** 5xx, 429, timeout or connection error after all retries. */
export const SINK_ERR_UNAVAILABLE = defineError(
  'SINK_ERR_UNAVAILABLE',
  'FHIR server %s unavailable after %s attempts (%s)',
  503,
  true,
);
/**
 * A PUT to a new id answered 404: the server refuses ids chosen by the client (Medplum for a
 * client that is not a super admin; HAPI with a client id strategy other than ANY). Every write
 * of the sync uses such ids, so the pass stops with this explanation instead of quarantining.
 */
export const SINK_ERR_CLIENT_IDS_REFUSED = defineError(
  'SINK_ERR_CLIENT_IDS_REFUSED',
  '%s refuses to create resources under ids chosen by the client (a PUT to a new id answered 404). Allow client-assigned ids there: on Medplum, a client allowed to choose ids (super admin); on HAPI, the client id strategy ANY',
  422,
  false,
);
/** The server rejected a transaction or an entry with a 4xx. */
export const SINK_ERR_REJECTED = defineError(
  'SINK_ERR_REJECTED',
  'FHIR server rejected %s with HTTP %s (%s)',
  422,
  false,
);
/** The server answered something that is not a transaction-response matching the request. */
export const SINK_ERR_BAD_RESPONSE = defineError('SINK_ERR_BAD_RESPONSE', 'Unexpected answer from %s: %s', 502, true);
/** A request to the server failed in a way that is neither retryable nor a rejection. */
export const SINK_ERR_REQUEST = defineError('SINK_ERR_REQUEST', 'Request %s %s failed with HTTP %s', 502, false);
/** The server answered 5xx or 429 to a read or search. */
export const SINK_ERR_SERVER = defineError('SINK_ERR_SERVER', 'FHIR server answered HTTP %s to %s %s', 503, true);
/*
 * Transport failures on the server written to: twins of the FEED_ERR_* the shared transport
 * raises (errors/family.ts recodes them by side), same template, status and retryable flag.
 */
/** A request to the server written to timed out. */
export const SINK_ERR_TIMEOUT = defineError('SINK_ERR_TIMEOUT', 'Request to %s timed out after %s ms', 504, true);
/** The server written to could not be reached (refused, reset, DNS, TLS handshake). */
export const SINK_ERR_CONNECTION = defineError('SINK_ERR_CONNECTION', 'Could not reach %s (%s)', 502, true);
/** The network policy refused the address of the server written to. */
export const SINK_ERR_ADDRESS_REFUSED = defineError(
  'SINK_ERR_ADDRESS_REFUSED',
  'Connection for %s refused by the network policy (%s)',
  502,
  false,
);
/** The server written to redirected elsewhere (another origin, too many hops). */
export const SINK_ERR_REDIRECT_REFUSED = defineError(
  'SINK_ERR_REDIRECT_REFUSED',
  'Redirect from %s refused (%s)',
  502,
  false,
);
/** An answer of the server written to is larger than the cap. */
export const SINK_ERR_RESPONSE_TOO_LARGE = defineError(
  'SINK_ERR_RESPONSE_TOO_LARGE',
  'Answer from %s is larger than %s bytes',
  502,
  false,
);
/** A paging link of the server written to points at another origin. */
export const SINK_ERR_FOREIGN_LINK = defineError(
  'SINK_ERR_FOREIGN_LINK',
  'Paging link from %s points to another origin (%s); refusing to follow it. Register the server under the origin it names itself with (its base URL in /metadata)',
  502,
  false,
);
/** The CA file of the server written to cannot be read. */
export const SINK_ERR_TLS_CA = defineError('SINK_ERR_TLS_CA', 'Cannot read the CA file %s (%s)', 500, false);
/** The token endpoint of the server written to refused the client credentials. */
export const SINK_ERR_TOKEN_REJECTED = defineError(
  'SINK_ERR_TOKEN_REJECTED',
  'Token endpoint %s refused the client credentials (%s)',
  502,
  false,
);
/** The token endpoint of the server written to is unavailable. */
export const SINK_ERR_TOKEN_UNAVAILABLE = defineError(
  'SINK_ERR_TOKEN_UNAVAILABLE',
  'Token endpoint %s is unavailable (%s)',
  503,
  true,
);
/** An unexpected failure inside the engine (a bug); only the error's class name is kept. */
export const SYNC_ERR_INTERNAL = defineError('SYNC_ERR_INTERNAL', 'Internal error in %s (%s)', 500, false);
