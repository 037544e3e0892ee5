/**
 * GET /metrics: Prometheus text exposition of the injected prom-client registry (passes,
 * resources, deletes, quarantined, pass duration, lag per instance and type). Labels are
 * instance ids and resource types only, never PHI. Readable by every role.
 */
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { READ_ROLES } from '../types.ts';
import { problemResponses } from '../schemas.ts';

/** Options of the metrics route. */
export interface MetricsRoutesOptions {
  readonly registry: Registry;
}

/**
 * Registers /metrics.
 * @param app - the encapsulated instance.
 * @param opts - the registry to expose.
 */
export async function metricsRoutes(app: FastifyInstance, opts: MetricsRoutesOptions): Promise<void> {
  app.get(
    '/metrics',
    {
      config: { access: READ_ROLES },
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics (text exposition format)',
        produces: ['text/plain'],
        response: { 200: { type: 'string' }, ...problemResponses([]) },
      },
    },
    async (_request, reply) => {
      const text = await opts.registry.metrics();
      return reply.type(opts.registry.contentType).send(text);
    },
  );
  await Promise.resolve();
}
