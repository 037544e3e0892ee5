/**
 * GET /quarantine lists resources the sync could not de-identify or write (pseudonymous
 * id and reason code only); POST /quarantine/retry re-enqueues them, e.g. after a rules
 * fix, and is audited.
 */
import type { FastifyInstance } from 'fastify';
import type { SyncControl } from '../../sync/control.ts';
import { audited } from '../audit.ts';
import type { RequestAuditor } from '../audit.ts';
import type { RulesStore } from '../../anonymizer/index.ts';
import { Role, READ_ROLES } from '../types.ts';
import {
  emptyBodyAsObject,
  instanceIdSchema,
  jobAcceptedSchema,
  problemResponses,
  quarantineItemSchema,
  resourceTypeSchema,
} from '../schemas.ts';

/** Options of the quarantine routes. */
export interface QuarantineRoutesOptions {
  readonly sync: SyncControl;
  readonly rules: RulesStore;
  readonly audit: RequestAuditor;
}

interface Filter {
  instanceId?: string;
  resourceType?: string;
}

const filterProperties = { instanceId: instanceIdSchema, resourceType: resourceTypeSchema } as const;

/**
 * Registers GET /quarantine and POST /quarantine/retry.
 * @param app - the encapsulated instance.
 * @param opts - sync control, rules store and auditor.
 */
export async function quarantineRoutes(app: FastifyInstance, opts: QuarantineRoutesOptions): Promise<void> {
  app.get<{ Querystring: Filter }>(
    '/quarantine',
    {
      config: { access: READ_ROLES },
      schema: {
        tags: ['quarantine'],
        summary: 'Quarantined resources (pseudonymous ids and reason codes)',
        querystring: { type: 'object', additionalProperties: false, properties: filterProperties },
        response: {
          200: {
            type: 'object',
            required: ['count', 'items'],
            properties: { count: { type: 'integer' }, items: { type: 'array', items: quarantineItemSchema } },
          },
          ...problemResponses([400]),
        },
      },
    },
    async (request) => {
      const items = await opts.sync.listQuarantine(request.query);
      return { count: items.length, items };
    },
  );

  app.post<{ Body: (Filter & { ids?: string[] }) | undefined }>(
    '/quarantine/retry',
    {
      config: { access: [Role.operator] },
      preValidation: emptyBodyAsObject,
      schema: {
        tags: ['quarantine'],
        summary: 'Re-enqueue quarantined resources (all, or filtered)',
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...filterProperties,
            // Record ids are UUIDs: anything else is refused, so caller free text never reaches a
            // job payload or the audit trail.
            ids: {
              type: 'array',
              maxItems: 10_000,
              items: { type: 'string', pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' },
            },
          },
        },
        response: { 202: jobAcceptedSchema, ...problemResponses([400, 404, 413, 415, 422]) },
      },
    },
    async (request, reply) => {
      const filter = request.body ?? {};
      const input = {
        action: 'quarantine.retry',
        rulesVersion: opts.rules.current().rulesVersion,
        target: { instanceId: filter.instanceId, resourceType: filter.resourceType },
        ...(filter.ids ? { counts: { ids: filter.ids.length } } : {}),
      };
      const { jobId } = await audited(
        opts.audit,
        request,
        input,
        () => opts.sync.retryQuarantine(filter),
        (r) => ({ target: { jobId: r.jobId } }),
      );
      return reply.code(202).send({ jobId, statusUrl: `/jobs/${encodeURIComponent(jobId)}` });
    },
  );
  await Promise.resolve();
}
