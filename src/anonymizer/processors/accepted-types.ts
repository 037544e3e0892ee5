/** Groups of FHIR types that methods accept. */

/** Primitives whose value is text a person may read. */
export const TEXT_TYPES: ReadonlySet<string> = new Set([
  'string',
  'markdown',
  'id',
  'uri',
  'url',
  'canonical',
  'code',
  'oid',
  'uuid',
]);

/** Date-like primitives. */
export const DATE_TYPES: ReadonlySet<string> = new Set(['date', 'dateTime', 'instant']);

/** Types an age may come in. */
export const AGE_TYPES: ReadonlySet<string> = new Set([
  'Age',
  'Range',
  'Quantity',
  'SimpleQuantity',
  'integer',
  'decimal',
  'positiveInt',
  'unsignedInt',
]);

/** Free text the scrubber can read. */
export const FREE_TEXT_TYPES: ReadonlySet<string> = new Set(['string', 'markdown', 'xhtml', 'base64Binary']);
