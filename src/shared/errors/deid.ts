/**
 * DEID_ERR_*: the de-identification engine. Runtime errors fail one resource (the sync
 * quarantines it; nothing passes through in clear). Messages carry codes, resource types and
 * element paths, never element values.
 */
import { defineError } from './define.ts';

/** No HMAC key configured: the service refuses to start rather than invent a random key. */
export const DEID_ERR_KEY_MISSING = defineError(
  'DEID_ERR_KEY_MISSING',
  'No de-identification key: set DEID_HMAC_KEY (with DEID_HMAC_KEY_ID) or DEID_HMAC_KEY_FILE',
  500,
  false,
);
/** The key is present but unusable (too short, bad encoding, both variables set, bad key id). */
export const DEID_ERR_KEY_INVALID = defineError(
  'DEID_ERR_KEY_INVALID',
  'The de-identification key is not usable: %s',
  500,
  false,
);
/** DEID_HMAC_KEY_FILE names a file that cannot be read. */
export const DEID_ERR_KEY_FILE = defineError('DEID_ERR_KEY_FILE', 'The key file could not be read (%s)', 500, false);
/** Input that is not a FHIR resource (no resourceType, not an object). */
export const DEID_ERR_NOT_A_RESOURCE = defineError(
  'DEID_ERR_NOT_A_RESOURCE',
  'Input at %s is not a FHIR resource',
  422,
  false,
);
/** A resourceType that R4 does not define. */
export const DEID_ERR_UNKNOWN_RESOURCE_TYPE = defineError(
  'DEID_ERR_UNKNOWN_RESOURCE_TYPE',
  'Unknown resource type at %s',
  422,
  false,
);
/** An element that the resource's type does not define (it could hide PHI, so it is not passed). */
export const DEID_ERR_UNKNOWN_ELEMENT = defineError('DEID_ERR_UNKNOWN_ELEMENT', 'Unknown element %s', 422, false);
/** A value whose JSON shape does not fit its FHIR type (object where a primitive belongs, ...). */
export const DEID_ERR_INVALID_VALUE = defineError(
  'DEID_ERR_INVALID_VALUE',
  'Invalid value at %s (expected %s)',
  422,
  false,
);
/** A date, dateTime or instant that does not follow the FHIR format. */
export const DEID_ERR_INVALID_DATE = defineError('DEID_ERR_INVALID_DATE', 'Invalid date at %s', 422, false);
/** A reference the engine cannot rewrite (conditional reference with other parameters than identifier, ...). */
export const DEID_ERR_REFERENCE = defineError(
  'DEID_ERR_REFERENCE',
  'Reference at %s cannot be pseudonymised (%s)',
  422,
  false,
);
/** A rule whose method does not fit the element found at run time (e.g. dateShift on a valueString). */
export const DEID_ERR_METHOD_NOT_APPLICABLE = defineError(
  'DEID_ERR_METHOD_NOT_APPLICABLE',
  'Rule %s (%s) cannot apply to %s at %s',
  422,
  false,
);
/** Any other failure inside the engine; the resource is dropped, never passed through. */
/**
 * A resource nested deeper than the engine walks (MAX_RESOURCE_DEPTH): refused before any
 * recursive walk, so one hostile resource cannot exhaust the stack and fail its batch.
 */
export const DEID_ERR_TOO_DEEP = defineError(
  'DEID_ERR_TOO_DEEP',
  'Resource at %s nests deeper than the engine walks',
  422,
  false,
);
export const DEID_ERR_INTERNAL = defineError('DEID_ERR_INTERNAL', 'De-identification failed at %s', 500, false);
