/**
 * OpenAPI document of every route (from the route schemas) at /docs/json and Swagger UI at
 * /docs. Registered before the routes so @fastify/swagger sees them all. The pages hold no
 * data, so they are served without a token; "Authorize" in the UI takes the bearer token.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';

/** Where the docs live. */
export const DOCS_PREFIX = '/docs';

async function docsPlugin(app: FastifyInstance, opts: { readonly version: string }): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'fhir-sync API',
        version: opts.version,
        description:
          'Operations and compliance API of the FHIR sync and de-identification service. Errors are ' +
          'application/problem+json with a stable `code`. Every route except /healthz and /readyz needs ' +
          '`Authorization: Bearer <token>` (a JWT from the configured issuer or a static API key).',
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearerAuth: [] }],
      tags: [
        { name: 'sync', description: 'Manual syncs, jobs and status (operator; viewer reads)' },
        { name: 'instances', description: 'Registry of local FHIR servers (operator)' },
        { name: 'rules', description: 'De-identification rules (compliance)' },
        { name: 'quarantine', description: 'Resources that could not be synced (operator)' },
        { name: 'operations', description: 'Health, readiness and metrics' },
      ],
    },
    hideUntagged: true,
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
    },
  });
  await app.register(swaggerUi, {
    routePrefix: DOCS_PREFIX,
    staticCSP: true,
    uiConfig: { persistAuthorization: false },
  });
}

/** Registers @fastify/swagger and @fastify/swagger-ui at /docs. */
export const docsPluginFp = fp(docsPlugin, {
  fastify: '5.x',
  name: 'fhir-sync-docs',
  dependencies: ['fhir-sync-errors'],
});
