/**
 * Manual syncs and their jobs: POST /sync/{instance}/{resourceType} enqueues one pass for
 * one (instance, type) now, optionally from an instant or over a version range (backfill),
 * and answers 202 with the job id; GET /jobs/{id} shows state and progress. The sync side
 * refuses unregistered instances and unconfigured types with coded errors whose catalogue
 * status (404, 422) becomes the answer. Every trigger, refused or not, is audited.
 */
import type { FastifyInstance } from 'fastify';
import type { SyncControl, SyncRange } from '../../sync/control.ts';
import { API_ERR_JOB_NOT_FOUND, API_ERR_VALIDATION } from '../../shared/errors/index.ts';
import { audited } from '../audit.ts';
import type { RequestAuditor } from '../audit.ts';
import type { RulesStore } from '../../anonymizer/index.ts';
import { Role, READ_ROLES } from '../types.ts';
import {
  emptyBodyAsObject,
  channelParamsSchema,
  jobAcceptedSchema,
  jobIdSchema,
  jobInfoSchema,
  problemResponses,
} from '../schemas.ts';

/** Options of the sync and job routes. */
export interface SyncRoutesOptions {
  readonly sync: SyncControl;
  readonly rules: RulesStore;
  readonly audit: RequestAuditor;
}

interface TriggerRoute {
  Params: { instance: string; resourceType: string };
  Body: { since?: string; versionRange?: { lower: number; upper?: number } } | undefined;
}

const triggerBodySchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Optional backfill range: either `since` or `versionRange`, not both.',
  properties: {
    since: { type: 'string', format: 'date-time', description: 'Start from this instant instead of the cursor' },
    versionRange: {
      type: 'object',
      additionalProperties: false,
      required: ['lower'],
      properties: { lower: { type: 'integer', minimum: 0 }, upper: { type: 'integer', minimum: 0 } },
    },
  },
  not: { required: ['since', 'versionRange'] },
} as const;

function rangeOf(body: TriggerRoute['Body']): SyncRange | undefined {
  if (!body) {
    return undefined;
  }
  const vr = body.versionRange;
  if (vr?.upper !== undefined && vr.upper < vr.lower) {
    throw API_ERR_VALIDATION.createWith(
      { items: [{ pointer: '/body/versionRange/upper', detail: 'must be >= lower' }] },
      ['body'],
    );
  }
  if (body.since !== undefined) {
    return { since: body.since };
  }
  return vr
    ? { versionRange: vr.upper === undefined ? { lower: vr.lower } : { lower: vr.lower, upper: vr.upper } }
    : undefined;
}

/**
 * Registers POST /sync/{instance}/{resourceType}[/reconcile] and GET /jobs/{id}.
 * @param app - the encapsulated instance.
 * @param opts - sync control, rules store (for the audited rules version) and auditor.
 */
export async function syncRoutes(app: FastifyInstance, opts: SyncRoutesOptions): Promise<void> {
  registerTrigger(app, opts);
  registerReconcile(app, opts);
  registerJobRead(app, opts);
  await Promise.resolve();
}

/** POST /sync/{instance}/{resourceType}: enqueue a pass (or a backfill), audited. */
function registerTrigger(app: FastifyInstance, opts: SyncRoutesOptions): void {
  app.post<TriggerRoute>(
    '/sync/:instance/:resourceType',
    {
      config: { access: [Role.operator] },
      preValidation: emptyBodyAsObject,
      schema: {
        tags: ['sync'],
        summary: 'Sync one resource type of one instance now (202 with a job id)',
        params: channelParamsSchema,
        body: triggerBodySchema,
        response: { 202: jobAcceptedSchema, ...problemResponses([400, 404, 413, 415, 422]) },
      },
    },
    async (request, reply) => {
      const { instance, resourceType } = request.params;
      const range = rangeOf(request.body);
      const input = {
        action: 'sync.trigger',
        rulesVersion: opts.rules.current().rulesVersion,
        target: { instanceId: instance, resourceType, ...(range?.since ? { since: range.since } : {}) },
      };
      const { jobId } = await audited(
        opts.audit,
        request,
        input,
        () => opts.sync.triggerSync(instance, resourceType, range),
        (r) => ({ target: { jobId: r.jobId } }),
      );
      return reply.code(202).send({ jobId, statusUrl: `/jobs/${encodeURIComponent(jobId)}` });
    },
  );
}

/** POST /sync/{instance}/{resourceType}/reconcile: enqueue a reconciliation, audited. */
function registerReconcile(app: FastifyInstance, opts: SyncRoutesOptions): void {
  app.post<{ Params: { instance: string; resourceType: string } }>(
    '/sync/:instance/:resourceType/reconcile',
    {
      config: { access: [Role.operator] },
      preValidation: emptyBodyAsObject,
      schema: {
        tags: ['sync'],
        summary:
          'Compare one sent type between the local and the global and repair what the change feed missed (202 with a job id)',
        params: channelParamsSchema,
        body: { type: 'object', additionalProperties: false, maxProperties: 0 },
        response: { 202: jobAcceptedSchema, ...problemResponses([400, 404, 413, 415, 422]) },
      },
    },
    async (request, reply) => {
      const { instance, resourceType } = request.params;
      const input = {
        action: 'sync.reconcile.trigger',
        rulesVersion: opts.rules.current().rulesVersion,
        target: { instanceId: instance, resourceType },
      };
      const { jobId } = await audited(
        opts.audit,
        request,
        input,
        () => opts.sync.triggerReconcile(instance, resourceType),
        (r) => ({ target: { jobId: r.jobId } }),
      );
      return reply.code(202).send({ jobId, statusUrl: `/jobs/${encodeURIComponent(jobId)}` });
    },
  );
}

/** GET /jobs/{id}: state and progress of a job. */
function registerJobRead(app: FastifyInstance, opts: SyncRoutesOptions): void {
  app.get<{ Params: { id: string } }>(
    '/jobs/:id',
    {
      config: { access: READ_ROLES },
      schema: {
        tags: ['sync'],
        summary: 'State and progress of a job',
        params: { type: 'object', required: ['id'], properties: { id: jobIdSchema } },
        response: { 200: jobInfoSchema, ...problemResponses([400, 404]) },
      },
    },
    async (request) => {
      const job = await opts.sync.getJob(request.params.id);
      if (!job) {
        throw API_ERR_JOB_NOT_FOUND.create(request.params.id);
      }
      return job;
    },
  );
}
