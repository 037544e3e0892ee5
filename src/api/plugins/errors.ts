/**
 * Cross-cutting error plugin: every error and every unknown route is answered as
 * `application/problem+json` built from the catalogue (see ../problems.ts). Logs carry
 * the code, the route and the stack frames, never an error message that did not come from
 * the catalogue (a foreign message may quote request content).
 */
import type { Socket } from 'node:net';
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  API_ERR_BAD_REQUEST,
  API_ERR_HEADERS_TOO_LARGE,
  API_ERR_REQUEST_TIMEOUT,
  API_ERR_ROUTE_NOT_FOUND,
} from '../../shared/errors/index.ts';
import type { AppError } from '../../shared/errors/index.ts';
import { PROBLEM_CONTENT_TYPE, problemSchema, toAppError, toProblem } from '../problems.ts';

/** Options of the error plugin. */
export interface ErrorPluginOptions {
  /** Body limit in bytes, named in 413 answers. */
  readonly bodyLimit: number;
}

/**
 * The request path without its query string (query values are never echoed or logged).
 * @param request - the request.
 * @returns the path.
 */
export function pathOf(request: FastifyRequest): string {
  const q = request.url.indexOf('?');
  return q < 0 ? request.url : request.url.slice(0, q);
}

/**
 * Sends an AppError as problem+json.
 * @param reply - the reply.
 * @param err - the catalogue error.
 * @param request - the request (for the instance path).
 * @returns the reply.
 */
export function sendProblem(reply: FastifyReply, err: AppError, request: FastifyRequest): FastifyReply {
  if (err.status === 401) {
    const invalid = err.code === 'API_ERR_INVALID_TOKEN' ? ', error="invalid_token"' : '';
    void reply.header('www-authenticate', `Bearer realm="fhir-sync"${invalid}`);
  }
  return reply
    .code(err.status)
    .type(PROBLEM_CONTENT_TYPE)
    .send(toProblem(err, pathOf(request)));
}

function stackFrames(err: unknown): string | undefined {
  const stack = err instanceof Error ? err.stack : undefined;
  // The first line repeats the message; keep only the frames.
  return stack?.split('\n').slice(1).join('\n');
}

function logError(request: FastifyRequest, original: unknown, mapped: AppError): void {
  const route = request.routeOptions.url ?? 'unknown';
  if (mapped.status >= 500) {
    const name = original instanceof Error ? original.name : typeof original;
    const code = (original as { code?: unknown } | null)?.code;
    request.log.error(
      {
        code: mapped.code,
        route,
        errorName: name,
        errorCode: typeof code === 'string' ? code : undefined,
        frames: stackFrames(original),
      },
      'request failed',
    );
  } else {
    request.log.info({ code: mapped.code, route, status: mapped.status }, 'request refused');
  }
}

async function errorPlugin(app: FastifyInstance, opts: ErrorPluginOptions): Promise<void> {
  if (!Number.isInteger(opts.bodyLimit) || opts.bodyLimit <= 0) {
    throw new TypeError('error plugin: bodyLimit must be a positive integer');
  }
  app.addSchema(problemSchema);
  app.setErrorHandler((err, request, reply) => {
    const mapped = toAppError(err, opts.bodyLimit);
    logError(request, err, mapped);
    return sendProblem(reply, mapped, request);
  });
  app.setNotFoundHandler((request, reply) => {
    return sendProblem(reply, API_ERR_ROUTE_NOT_FOUND.create(request.method, pathOf(request)), request);
  });
  await Promise.resolve();
}

/**
 * Fastify's `frameworkErrors`: errors raised before routing (a URL that does not decode, such
 * as `/x%ff`) get the same problem+json answer as everything else, never Fastify's default
 * JSON that echoes the URL.
 * @param bodyLimit - the body limit (for 413 messages).
 * @returns the handler.
 */
export function frameworkErrorHandler(
  bodyLimit: number,
): (err: unknown, request: FastifyRequest, reply: FastifyReply) => void {
  return (err, request, reply) => {
    const mapped = toAppError(err, bodyLimit);
    request.log.info({ code: mapped.code, status: mapped.status }, 'request refused before routing');
    void sendProblem(reply, mapped, request);
  };
}

/**
 * Fastify's `clientErrorHandler`: errors of the HTTP parser and the request timeout, where no
 * request object exists yet, answered on the raw socket as problem+json (then closed).
 * @param err - the socket-level error.
 * @param socket - the client socket.
 */
export function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) {
    return;
  }
  const mapped =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? API_ERR_REQUEST_TIMEOUT.create()
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? API_ERR_HEADERS_TOO_LARGE.create()
        : API_ERR_BAD_REQUEST.create('malformed HTTP request');
  const body = JSON.stringify(toProblem(mapped, ''));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${mapped.status} ${toProblem(mapped, '').title}\r\n` +
        `Content-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Connection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/** Registers the problem+json error handler, the 404 handler and the shared Problem schema. */
export const errorsPlugin = fp(errorPlugin, { fastify: '5.x', name: 'fhir-sync-errors' });
