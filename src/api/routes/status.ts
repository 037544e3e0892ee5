/**
 * GET /status: per instance and resource type, the committed cursor, the lag (newest
 * change on the local vs the cursor), the last pass time and result and the quarantine
 * count, as the sync side reports them.
 */
import type { FastifyInstance } from 'fastify';
import type { SyncControl } from '../../sync/control.ts';
import type { RulesStore } from '../../anonymizer/index.ts';
import { READ_ROLES } from '../types.ts';
import { problemResponses, typeStatusSchema } from '../schemas.ts';

/** Options of the status route. */
export interface StatusRoutesOptions {
  readonly sync: SyncControl;
  readonly rules: RulesStore;
  readonly now: () => Date;
}

/**
 * Registers GET /status.
 * @param app - the encapsulated instance.
 * @param opts - sync control, rules store and clock.
 */
export async function statusRoutes(app: FastifyInstance, opts: StatusRoutesOptions): Promise<void> {
  app.get(
    '/status',
    {
      config: { access: READ_ROLES },
      schema: {
        tags: ['sync'],
        summary: 'Cursor, lag, last pass and quarantine count per instance and type',
        response: {
          200: {
            type: 'object',
            required: ['generatedAt', 'rulesVersion', 'types'],
            properties: {
              generatedAt: { type: 'string' },
              rulesVersion: { type: 'string' },
              types: { type: 'array', items: typeStatusSchema },
            },
          },
          ...problemResponses([]),
        },
      },
    },
    async () => {
      const types = await opts.sync.status();
      return { generatedAt: opts.now().toISOString(), rulesVersion: opts.rules.current().rulesVersion, types };
    },
  );
  await Promise.resolve();
}
