/**
 * Push wake-up notifications from the locals: POST /hooks/fhir/{instance}/{resourceType}, sent
 * by the rest-hook Subscriptions the service keeps there (src/sync/push.ts). The caller is a
 * FHIR server, not a user: it proves itself with the instance's token header, checked in
 * constant time. The body is ignored (the Subscriptions ask for none; anything sent is capped
 * and dropped unread), and the answer carries no detail beyond the status: 202 when a pass is
 * queued, 401 for a missing or wrong token, 404 for an unknown instance or type (registered
 * instances and types only: nothing else can be woken).
 */
import type { FastifyInstance } from 'fastify';
import { API_ERR_PUSH_TOKEN } from '../../shared/errors/index.ts';
import { PUSH_HEADER, pushTokenValid } from '../../sync/index.ts';
import type { SyncControl } from '../../sync/index.ts';
import { channelParamsSchema, problemResponses } from '../schemas.ts';

/** Options of the hook routes. */
export interface HookRoutesOptions {
  readonly sync: SyncControl;
  /** The push secret (FHIR_SYNC_PUSH_SECRET). */
  readonly secret: Uint8Array;
}

/** Largest notification body read (and dropped): rest-hook payloads are off. */
const MAX_NOTIFICATION_BYTES = 65_536;

/**
 * Registers the notification route.
 * @param app - the encapsulated instance.
 * @param opts - sync control and push secret.
 */
export async function hookRoutes(app: FastifyInstance, opts: HookRoutesOptions): Promise<void> {
  // Whatever a server sends (HAPI: an empty form post; with a payload, FHIR JSON) is read as an
  // opaque, capped buffer and never parsed: it could hold a resource.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_NOTIFICATION_BYTES }, (_req, _body, done) =>
    done(null, undefined),
  );
  app.post<{ Params: { instance: string; resourceType: string } }>(
    '/hooks/fhir/:instance/:resourceType',
    {
      config: { access: 'public' },
      bodyLimit: MAX_NOTIFICATION_BYTES,
      schema: {
        tags: ['sync'],
        summary: 'Push wake-up from a local (rest-hook Subscription, token header, no payload)',
        params: channelParamsSchema,
        response: {
          202: { type: 'object', required: ['queued'], properties: { queued: { type: 'boolean' } } },
          ...problemResponses([400, 401, 404, 413]),
        },
      },
    },
    async (request, reply) => {
      const { instance, resourceType } = request.params;
      const header = request.headers[PUSH_HEADER];
      if (!pushTokenValid(opts.secret, instance, typeof header === 'string' ? header : undefined)) {
        throw API_ERR_PUSH_TOKEN.create();
      }
      await opts.sync.wake(instance, resourceType);
      return reply.code(202).send({ queued: true });
    },
  );
  await Promise.resolve();
}
