/**
 * Which side failed. The HTTP transport (shared/fhir-transport.ts, fhir-client.ts) is shared by
 * every request and raises its failures (timeout, connection, network policy, redirect, size
 * cap, CA file, token) under FEED_ERR_*; a FHIR store (sync/fhir-store.ts) raises HTTP
 * refusals under SINK_ERR_*. A store takes a side when a channel opens it: the server it reads
 * from (a source) reports FEED_ERR_*, the server it writes to (a target) SINK_ERR_*, so an
 * operator's alert on "the global is unreachable" never fires for a clinic, and the reverse.
 * The message stays the same; the error keeps the original as its cause.
 */
import { AppError } from './define.ts';
import type { ErrorFactory } from './define.ts';
import {
  FEED_ERR_ADDRESS_REFUSED,
  FEED_ERR_CONNECTION,
  FEED_ERR_FOREIGN_LINK,
  FEED_ERR_REDIRECT_REFUSED,
  FEED_ERR_REJECTED,
  FEED_ERR_RESPONSE_TOO_LARGE,
  FEED_ERR_SERVER,
  FEED_ERR_TIMEOUT,
  FEED_ERR_TLS_CA,
  FEED_ERR_TOKEN_REJECTED,
  FEED_ERR_TOKEN_UNAVAILABLE,
} from './feed.ts';
import {
  SINK_ERR_ADDRESS_REFUSED,
  SINK_ERR_CONNECTION,
  SINK_ERR_FOREIGN_LINK,
  SINK_ERR_REDIRECT_REFUSED,
  SINK_ERR_REQUEST,
  SINK_ERR_RESPONSE_TOO_LARGE,
  SINK_ERR_SERVER,
  SINK_ERR_TIMEOUT,
  SINK_ERR_TLS_CA,
  SINK_ERR_TOKEN_REJECTED,
  SINK_ERR_TOKEN_UNAVAILABLE,
} from './sync.ts';

/** The side of a request: the server read from, or the server written to. */
export const ErrorSide = { source: 'source', target: 'target' } as const;
export type ErrorSide = (typeof ErrorSide)[keyof typeof ErrorSide];

/** Feed code -> its sink twin, and back. Pairs share status and retryable flag. */
const PAIRS: readonly (readonly [ErrorFactory, ErrorFactory])[] = [
  [FEED_ERR_TIMEOUT, SINK_ERR_TIMEOUT],
  [FEED_ERR_CONNECTION, SINK_ERR_CONNECTION],
  [FEED_ERR_ADDRESS_REFUSED, SINK_ERR_ADDRESS_REFUSED],
  [FEED_ERR_REDIRECT_REFUSED, SINK_ERR_REDIRECT_REFUSED],
  [FEED_ERR_FOREIGN_LINK, SINK_ERR_FOREIGN_LINK],
  [FEED_ERR_RESPONSE_TOO_LARGE, SINK_ERR_RESPONSE_TOO_LARGE],
  [FEED_ERR_TLS_CA, SINK_ERR_TLS_CA],
  [FEED_ERR_TOKEN_REJECTED, SINK_ERR_TOKEN_REJECTED],
  [FEED_ERR_TOKEN_UNAVAILABLE, SINK_ERR_TOKEN_UNAVAILABLE],
  [FEED_ERR_SERVER, SINK_ERR_SERVER],
  [FEED_ERR_REJECTED, SINK_ERR_REQUEST],
];
const TO_SINK = new Map(PAIRS.map(([feed, sink]) => [feed.code, sink]));
const TO_FEED = new Map(PAIRS.map(([feed, sink]) => [sink.code, feed]));

/**
 * An error as the given side reports it.
 * @param err - anything thrown by a request.
 * @param side - source (FEED_ERR_*) or target (SINK_ERR_*).
 * @returns the twin error (same message and details, the original as cause), or `err` itself.
 */
export function onSide(err: unknown, side: ErrorSide): unknown {
  if (!(err instanceof AppError)) {
    return err;
  }
  const twin = (side === ErrorSide.target ? TO_SINK : TO_FEED).get(err.code);
  if (twin === undefined) {
    return err;
  }
  // The message is already formatted: it becomes the template, with no arguments to fill.
  return new AppError(
    { code: twin.code, template: err.message, status: twin.status, retryable: twin.retryable },
    [],
    err.details,
    { cause: err },
  );
}
