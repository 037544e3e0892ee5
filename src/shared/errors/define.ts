/**
 * The error machinery behind the catalogue. Every error the service raises has a stable
 * code (never reused once retired), an HTTP status, a `retryable` flag and a message
 * template. Messages are built from the template and the caller's arguments only, and
 * callers must never pass resource content: messages reach logs and HTTP answers.
 */

/** One catalogue entry. */
export interface ErrorDefinition {
  readonly code: string;
  /** `%s` placeholders are filled in order. */
  readonly template: string;
  readonly status: number;
  readonly retryable: boolean;
}

/** Details that go with an error: where it happened (a path, a line), never values. */
export interface ErrorDetails {
  /** FHIRPath/JSONPath-like location, file position, or URL path. */
  readonly location?: string;
  readonly [key: string]: unknown;
}

/**
 * The one error class of the service. Tests and code branch on `code`, never on the
 * message text; `retryable` drives backoff in the workers.
 */
export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  readonly retryable: boolean;
  readonly details: ErrorDetails;

  constructor(
    def: ErrorDefinition,
    args: readonly (string | number)[],
    details: ErrorDetails = {},
    options?: ErrorOptions,
  ) {
    super(format(def.template, args), options);
    this.name = 'AppError';
    this.code = def.code;
    this.status = def.status;
    this.retryable = def.retryable;
    this.details = details;
  }
}

/** A factory bound to one catalogue entry: `ERR.X.create('a', 'b')`. */
export interface ErrorFactory extends ErrorDefinition {
  create(...args: (string | number)[]): AppError;
  createWith(details: ErrorDetails, args: readonly (string | number)[], options?: ErrorOptions): AppError;
  is(err: unknown): err is AppError;
}

/**
 * Defines one catalogue entry.
 * @param code - stable code, `<AREA>_ERR_<WHAT>`.
 * @param template - message with `%s` placeholders.
 * @param status - HTTP status to answer with.
 * @param retryable - whether trying again later may succeed.
 * @returns the factory for that error.
 */
export function defineError(code: string, template: string, status: number, retryable: boolean): ErrorFactory {
  const def: ErrorDefinition = { code, template, status, retryable };
  return Object.freeze({
    ...def,
    create: (...args: (string | number)[]): AppError => new AppError(def, args),
    createWith: (details: ErrorDetails, args: readonly (string | number)[], options?: ErrorOptions): AppError =>
      new AppError(def, args, details, options),
    is: (err: unknown): err is AppError => err instanceof AppError && err.code === code,
  });
}

function format(template: string, args: readonly (string | number)[]): string {
  let i = 0;
  return template.replace(/%s/g, () => (i < args.length ? String(args[i++]) : '%s'));
}

/**
 * True when an error (even one that crossed a process boundary as plain JSON, e.g. a
 * bullmq failure) says it may succeed on retry.
 * @param err - anything thrown.
 * @returns whether to retry.
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof AppError) {
    return err.retryable;
  }
  return typeof err === 'object' && err !== null && (err as { retryable?: unknown }).retryable === true;
}
