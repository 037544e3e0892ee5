/**
 * CFG_ERR_*: problems with configuration files, first of all the de-identification rules
 * (config/anonymization.yaml). A rules file is rejected as a whole: the loader gathers every
 * problem (each with its own code, line and column) and throws one CFG_ERR_RULES_INVALID
 * whose `details.problems` lists them. Messages name keys, rule names, types and paths of
 * the file, never resource content.
 */
import { defineError } from './define.ts';

/** The rules file has problems; `details.problems` lists every one with line and column. */
export const CFG_ERR_RULES_INVALID = defineError(
  'CFG_ERR_RULES_INVALID',
  'Rules file %s has %s problem(s):\n%s',
  500,
  false,
);
/** The rules file could not be read. */
export const CFG_ERR_RULES_UNREADABLE = defineError(
  'CFG_ERR_RULES_UNREADABLE',
  'Rules file %s could not be read (%s)',
  500,
  false,
);

// Per-problem codes: they appear in `details.problems[].code` of CFG_ERR_RULES_INVALID.
/** The text is not valid YAML. */
export const CFG_ERR_RULES_YAML = defineError('CFG_ERR_RULES_YAML', 'YAML syntax error: %s', 500, false);
/** The same key twice in one mapping (YAML would silently keep one of them). */
export const CFG_ERR_RULES_DUPLICATE_KEY = defineError('CFG_ERR_RULES_DUPLICATE_KEY', 'Duplicate key %s', 500, false);
/** A key the schema does not know (typos are never ignored). */
export const CFG_ERR_RULES_UNKNOWN_KEY = defineError('CFG_ERR_RULES_UNKNOWN_KEY', 'Unknown key %s', 500, false);
/** A value of the wrong shape or out of range. */
export const CFG_ERR_RULES_SCHEMA = defineError('CFG_ERR_RULES_SCHEMA', '%s', 500, false);
/** `method` names no registered de-identification method. */
export const CFG_ERR_RULES_UNKNOWN_METHOD = defineError(
  'CFG_ERR_RULES_UNKNOWN_METHOD',
  'Unknown method %s (known: %s)',
  500,
  false,
);
/** A JSONPath that does not parse or uses a feature the compiled matcher does not support. */
export const CFG_ERR_RULES_JSONPATH = defineError('CFG_ERR_RULES_JSONPATH', 'Invalid JSONPath %s: %s', 500, false);
/** A FHIR type (resource or data type) that R4 does not define. */
export const CFG_ERR_RULES_UNKNOWN_TYPE = defineError('CFG_ERR_RULES_UNKNOWN_TYPE', 'Unknown FHIR type %s', 500, false);
/** An element that the FHIR type does not have. */
export const CFG_ERR_RULES_UNKNOWN_ELEMENT = defineError(
  'CFG_ERR_RULES_UNKNOWN_ELEMENT',
  'Unknown element %s',
  500,
  false,
);
/** Two rules with the same name (reports count by name). */
export const CFG_ERR_RULES_DUPLICATE_NAME = defineError(
  'CFG_ERR_RULES_DUPLICATE_NAME',
  'Duplicate rule name %s',
  500,
  false,
);
/** The method cannot work on the selected element (e.g. dateShift on a HumanName). */
export const CFG_ERR_RULES_METHOD_NOT_APPLICABLE = defineError(
  'CFG_ERR_RULES_METHOD_NOT_APPLICABLE',
  'Method %s cannot apply to %s',
  500,
  false,
);
/** A rule that can never decide an element because earlier rules take all its elements. */
export const CFG_ERR_RULES_SHADOWED = defineError('CFG_ERR_RULES_SHADOWED', 'Rule %s can never fire: %s', 500, false);
/** A rule whose selector matches no element of any resource type. */
export const CFG_ERR_RULES_NEVER_MATCHES = defineError(
  'CFG_ERR_RULES_NEVER_MATCHES',
  'Rule %s matches no element: %s',
  500,
  false,
);
/** Settings that contradict each other or the rules. */
export const CFG_ERR_RULES_SETTING = defineError('CFG_ERR_RULES_SETTING', '%s', 500, false);
