/**
 * GET /healthz (the process answers) and GET /readyz (Redis and the global server are
 * reachable, as the sync side sees them). Both are public and exempt from the rate limit so
 * probes never need a token. A dependency that does not answer in time counts as down.
 */
import type { FastifyInstance } from 'fastify';
import type { SyncControl } from '../../sync/control.ts';
import { problemResponses } from '../schemas.ts';

/** Options of the health routes. */
export interface HealthRoutesOptions {
  /** Without it, only /healthz is served (a process with no API role). */
  readonly sync?: SyncControl;
  /** How long to wait for SyncControl.ready(). */
  readonly readyTimeoutMs: number;
}

const readySchema = {
  type: 'object',
  required: ['ready', 'checks'],
  properties: {
    ready: { type: 'boolean' },
    checks: {
      type: 'object',
      required: ['redis', 'global'],
      properties: { redis: { type: 'boolean' }, global: { type: 'boolean' } },
    },
  },
} as const;

async function checkReady(sync: SyncControl, timeoutMs: number): Promise<{ redis: boolean; global: boolean }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ redis: boolean; global: boolean }>((resolve) => {
    timer = setTimeout(() => resolve({ redis: false, global: false }), timeoutMs);
  });
  try {
    return await Promise.race([sync.ready().catch(() => ({ redis: false, global: false })), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Registers /healthz and /readyz.
 * @param app - the encapsulated instance.
 * @param opts - sync control and timeout.
 */
export async function healthRoutes(app: FastifyInstance, opts: HealthRoutesOptions): Promise<void> {
  app.get(
    '/healthz',
    {
      config: { access: 'public', rateLimit: false },
      schema: {
        tags: ['operations'],
        summary: 'The process is up',
        security: [],
        response: {
          200: { type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['ok'] } } },
          ...problemResponses([], false),
        },
      },
    },
    (_request, reply) => reply.send({ status: 'ok' as const }),
  );
  const sync = opts.sync;
  if (!sync) {
    return;
  }
  app.get(
    '/readyz',
    {
      config: { access: 'public', rateLimit: false },
      schema: {
        tags: ['operations'],
        summary: 'Redis and the global FHIR server are reachable (503 when not)',
        security: [],
        response: { 200: readySchema, 503: readySchema, ...problemResponses([], false) },
      },
    },
    async (_request, reply) => {
      const checks = await checkReady(sync, opts.readyTimeoutMs);
      const ready = checks.redis && checks.global;
      return reply.code(ready ? 200 : 503).send({ ready, checks });
    },
  );
  await Promise.resolve();
}
