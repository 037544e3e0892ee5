/**
 * Errors as RFC 9457 problem details (`application/problem+json`). Every answer is built
 * from a catalogue entry: an AppError is shown with its code and templated message, a
 * Fastify error is first mapped to an API_ERR_* entry, and anything else becomes
 * API_ERR_INTERNAL. The message of a foreign error is never shown (a JSON parser's
 * message may quote the body, and bodies may carry PHI).
 */
import { STATUS_CODES } from 'node:http';
import { detailItems } from '../anonymizer/index.ts';
import {
  API_ERR_BAD_REQUEST,
  API_ERR_BODY_TOO_LARGE,
  API_ERR_INTERNAL,
  API_ERR_MALFORMED_BODY,
  API_ERR_UNSUPPORTED_MEDIA_TYPE,
  API_ERR_VALIDATION,
  AppError,
} from '../shared/errors/index.ts';

/** One problem inside a request or a file: where (JSON pointer or line/column) and what. */
export interface ProblemItem {
  readonly detail: string;
  /** JSON pointer into the request, e.g. `/body/versionRange/lower`. */
  readonly pointer?: string;
  readonly line?: number;
  readonly column?: number;
  /** Element path or other location the source named. */
  readonly location?: string;
  readonly code?: string;
}

/** The body of every error answer. */
export interface Problem {
  /** `urn:fhir-sync:problem:<code>`. */
  readonly type: string;
  /** Reason phrase of the status. */
  readonly title: string;
  readonly status: number;
  /** The catalogue message. */
  readonly detail: string;
  /** Catalogue code; clients branch on this. */
  readonly code: string;
  /** Path of the request (no query string: query values are never echoed). */
  readonly instance: string;
  readonly retryable: boolean;
  readonly errors?: readonly ProblemItem[];
}

/** Media type of error answers. */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/**
 * Caps of an error answer (issue 10: a 480 KB rules file with thousands of problems made a
 * 62 MB answer). The first items are shown, then one item says how many were left out;
 * texts are cut. The answer stays a few hundred KB at most, whatever the input.
 */
export const PROBLEM_LIMITS = Object.freeze({ items: 100, itemText: 300, detail: 1000, instance: 200 });

/** JSON schema of a Problem, shared by every route's error responses (`$ref: 'Problem#'`). */
export const problemSchema = {
  $id: 'Problem',
  type: 'object',
  description: 'RFC 9457 problem details; `code` is the stable error code.',
  required: ['type', 'title', 'status', 'detail', 'code', 'instance'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string' },
    instance: { type: 'string' },
    retryable: { type: 'boolean' },
    errors: {
      type: 'array',
      items: {
        type: 'object',
        required: ['detail'],
        properties: {
          detail: { type: 'string' },
          pointer: { type: 'string' },
          line: { type: 'integer' },
          column: { type: 'integer' },
          location: { type: 'string' },
          code: { type: 'string' },
        },
      },
    },
  },
} as const;

/** What a Fastify error looks like to us (only the fields we read). */
interface FastifyLikeError {
  readonly code?: unknown;
  readonly statusCode?: unknown;
  readonly validation?: readonly AjvLikeError[];
  readonly validationContext?: unknown;
}

interface AjvLikeError {
  readonly instancePath?: string;
  readonly keyword?: string;
  readonly message?: string;
  readonly params?: Readonly<Record<string, unknown>>;
}

/**
 * Maps anything thrown to a catalogue AppError.
 * @param err - what a handler or Fastify threw.
 * @param bodyLimit - the configured body limit, named in the 413 message.
 * @returns an AppError (the same one when it already is).
 */
export function toAppError(err: unknown, bodyLimit: number): AppError {
  if (err instanceof AppError) {
    return err;
  }
  const e = (typeof err === 'object' && err !== null ? err : {}) as FastifyLikeError;
  if (Array.isArray(e.validation)) {
    const context = typeof e.validationContext === 'string' ? e.validationContext : 'body';
    return API_ERR_VALIDATION.createWith({ location: context, items: validationItems(context, e.validation) }, [
      context,
    ]);
  }
  const code = typeof e.code === 'string' ? e.code : '';
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return API_ERR_BODY_TOO_LARGE.create(bodyLimit);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return API_ERR_UNSUPPORTED_MEDIA_TYPE.create();
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return API_ERR_MALFORMED_BODY.create(code);
    default:
      break;
  }
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500) {
    return API_ERR_BAD_REQUEST.create(/^FST_[A-Z_]+$/.test(code) ? code : 'client error');
  }
  return API_ERR_INTERNAL.createWith({}, [], { cause: err });
}

function validationItems(context: string, errors: readonly AjvLikeError[]): ProblemItem[] {
  return errors.map((v) => {
    const missing = v.keyword === 'required' ? v.params?.missingProperty : undefined;
    const pointer = `/${context}${v.instancePath ?? ''}${typeof missing === 'string' ? `/${missing}` : ''}`;
    // Ajv messages name the rule broken (type, format, pattern), never the value given.
    return { pointer, detail: v.message ?? 'is not valid', ...(v.keyword ? { code: v.keyword } : {}) };
  });
}

/**
 * Builds the problem body for an AppError.
 * @param err - the catalogue error.
 * @param path - request path without its query string.
 * @returns the problem.
 */
export function toProblem(err: AppError, path: string): Problem {
  const errors = capItems(problemItems(err));
  return {
    type: `urn:fhir-sync:problem:${err.code}`,
    title: STATUS_CODES[err.status] ?? 'Error',
    status: err.status,
    detail: cut(err.message, PROBLEM_LIMITS.detail),
    code: err.code,
    instance: cut(path, PROBLEM_LIMITS.instance),
    retryable: err.retryable,
    ...(errors.length > 0 ? { errors } : {}),
  };
}

/**
 * The per-item problems an error carries in its details (`items`, `problems`, `errors` or
 * `issues`; each a string or an object with message/line/column/path/code), plus a
 * top-level line/column when present. This is also where the rules store's own items
 * (RulesProblemItem in API_ERR_RULES_INVALID's `items`: message, path, ...) become HTTP
 * problem items (detail, location, ...).
 * @param err - the error.
 * @returns problem items, possibly empty.
 */
export function problemItems(err: AppError): ProblemItem[] {
  return detailItems(err).map((i) => ({
    detail: i.message,
    ...(i.pointer !== undefined ? { pointer: i.pointer } : {}),
    ...(i.line !== undefined ? { line: i.line } : {}),
    ...(i.column !== undefined ? { column: i.column } : {}),
    ...(i.path !== undefined ? { location: i.path } : {}),
    ...(i.code !== undefined ? { code: i.code } : {}),
  }));
}

/**
 * The first {@link PROBLEM_LIMITS}.items items with their texts cut, plus one item counting
 * the rest.
 * @param items - every item.
 * @returns at most `items + 1` items.
 */
export function capItems(items: readonly ProblemItem[]): ProblemItem[] {
  const shown = items.slice(0, PROBLEM_LIMITS.items).map(cutItem);
  const hidden = items.length - shown.length;
  return hidden > 0 ? [...shown, { detail: `${hidden} more problem(s) not shown`, code: 'truncated' }] : shown;
}

function cutItem(item: ProblemItem): ProblemItem {
  return {
    ...item,
    detail: cut(item.detail, PROBLEM_LIMITS.itemText),
    ...(item.location === undefined ? {} : { location: cut(item.location, PROBLEM_LIMITS.itemText) }),
    ...(item.pointer === undefined ? {} : { pointer: cut(item.pointer, PROBLEM_LIMITS.itemText) }),
    ...(item.code === undefined ? {} : { code: cut(item.code, 100) }),
  };
}

/**
 * A text cut to a length, marked with an ellipsis.
 * @param text - any text.
 * @param max - most characters kept.
 * @returns the text, or its head and `…`.
 */
export function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}
