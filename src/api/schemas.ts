/**
 * JSON schemas shared by the route plugins: path parameters, error responses and the
 * sync-side records (jobs, status, quarantine) the API passes through.
 */
import { STATUS_CODES } from 'node:http';

/** A registered instance id (also used as a path segment). */
export const instanceIdSchema = {
  type: 'string',
  pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$',
  description: 'Registered instance id',
} as const;

/** A FHIR resource type name. */
export const resourceTypeSchema = {
  type: 'string',
  pattern: '^[A-Z][A-Za-z]{1,63}$',
  description: 'FHIR resource type, e.g. Patient',
} as const;

/** Path parameters `:instance/:resourceType` of the per-channel routes. */
export const channelParamsSchema = {
  type: 'object',
  required: ['instance', 'resourceType'],
  properties: { instance: instanceIdSchema, resourceType: resourceTypeSchema },
} as const;

/** A job id as the queue hands it out. */
export const jobIdSchema = { type: 'string', pattern: '^[A-Za-z0-9:._-]{1,200}$' } as const;

/**
 * Error responses for a route, all `$ref: 'Problem#'` (application/problem+json).
 * Every route that needs a token gets 401, 403, 429 and 500 on top of `extra`.
 * @param extra - route-specific error statuses (400, 404, 422, ...).
 * @param authed - whether the route needs a token.
 * @returns the `response` entries.
 */
export function problemResponses(extra: readonly number[], authed = true): Record<number, object> {
  const statuses = new Set([...extra, ...(authed ? [401, 403] : []), 429, 500]);
  const out: Record<number, object> = {};
  for (const status of [...statuses].sort()) {
    out[status] = { description: STATUS_CODES[status] ?? 'Error', $ref: 'Problem#' };
  }
  return out;
}

/** Progress counters of a job. */
export const jobProgressSchema = {
  type: 'object',
  required: ['pages', 'resources', 'deletes', 'quarantined'],
  properties: {
    pages: { type: 'integer' },
    resources: { type: 'integer' },
    deletes: { type: 'integer' },
    quarantined: { type: 'integer' },
  },
} as const;

/** A job as GET /jobs/{id} shows it. */
export const jobInfoSchema = {
  type: 'object',
  required: ['id', 'kind', 'instanceId', 'state', 'progress'],
  properties: {
    id: { type: 'string' },
    kind: { type: 'string', enum: ['pass', 'reverse', 'sweep', 'quarantine-retry', 'reconcile'] },
    instanceId: { type: 'string' },
    resourceType: { type: 'string' },
    state: { type: 'string', enum: ['waiting', 'active', 'completed', 'failed', 'delayed', 'unknown'] },
    progress: jobProgressSchema,
    createdAt: { type: 'string' },
    finishedAt: { type: 'string' },
    failedCode: { type: 'string' },
  },
} as const;

/** One (instance, type) line of GET /status. */
export const typeStatusSchema = {
  type: 'object',
  required: ['instanceId', 'resourceType', 'quarantineCount'],
  properties: {
    instanceId: { type: 'string' },
    resourceType: { type: 'string' },
    cursor: { type: 'string' },
    lagSeconds: { type: 'number' },
    lastPassAt: { type: 'string' },
    lastPassResult: { type: 'string', enum: ['ok', 'failed'] },
    quarantineCount: { type: 'integer' },
  },
} as const;

/** One quarantined resource (pseudonymous id and reason code only). */
export const quarantineItemSchema = {
  type: 'object',
  required: ['id', 'instanceId', 'resourceType', 'pseudonymousId', 'reasonCode', 'rulesVersion', 'at'],
  properties: {
    id: { type: 'string' },
    instanceId: { type: 'string' },
    resourceType: { type: 'string' },
    pseudonymousId: { type: 'string' },
    reasonCode: { type: 'string' },
    rulesVersion: { type: 'string' },
    at: { type: 'string' },
  },
} as const;

/** 202 answer of every route that enqueues a job. */
export const jobAcceptedSchema = {
  type: 'object',
  required: ['jobId', 'statusUrl'],
  properties: { jobId: { type: 'string' }, statusUrl: { type: 'string' } },
} as const;

/**
 * preValidation hook for routes whose JSON body is optional: a missing body is validated
 * (and handled) as `{}`.
 * @param request - the request.
 */
export async function emptyBodyAsObject(request: { body: unknown }): Promise<void> {
  if (request.body === undefined || request.body === null) {
    request.body = {};
  }
  await Promise.resolve();
}
