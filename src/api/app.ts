/**
 * Assembles the HTTP API from plugins: problem+json errors, rate limit, bearer auth,
 * OpenAPI docs, then one plugin per route group. Everything the routes touch comes in
 * through `AppOptions`, so tests pass in-memory doubles and `main.ts` the real services.
 * The caller starts listening (`app.listen`) and closes it.
 */
import Fastify, { LogController } from 'fastify';
import type { FastifyInstance } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { API_ERR_CONFIG, API_ERR_RATE_LIMITED } from '../shared/errors/index.ts';
import pkg from '../../package.json' with { type: 'json' };
import { createAuditor } from './audit.ts';
import type { RequestAuditor } from './audit.ts';
import { createTokenVerifier } from './auth/verify.ts';
import { authPluginFp } from './plugins/auth.ts';
import type { ForbiddenAuditor } from './plugins/auth.ts';
import { DOCS_PREFIX, docsPluginFp } from './plugins/docs.ts';
import { clientErrorHandler, errorsPlugin, frameworkErrorHandler, pathOf } from './plugins/errors.ts';
import { healthRoutes } from './routes/health.ts';
import { instanceRoutes } from './routes/instances.ts';
import { instanceRecordJsonSchema } from '../instances/index.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { quarantineRoutes } from './routes/quarantine.ts';
import { rulesRoutes } from './routes/rules.ts';
import { statusRoutes } from './routes/status.ts';
import { hookRoutes } from './routes/hooks.ts';
import { syncRoutes } from './routes/sync.ts';
import { UI_PREFIX, uiRoutes } from './routes/ui.ts';
import type { AppOptions } from './types.ts';
import {
  DEFAULT_BODY_LIMIT,
  DEFAULT_RATE_LIMIT,
  DEFAULT_READY_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
} from '../shared/env.ts';

// The defaults are those of the environment variables (src/shared/env.ts owns both).
export { DEFAULT_BODY_LIMIT, DEFAULT_RATE_LIMIT, DEFAULT_READY_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS };

function checkOptions(options: AppOptions): void {
  const problems: string[] = [];
  for (const key of ['sync', 'instances', 'rules', 'metrics', 'audit', 'auth'] as const) {
    if (options[key] === undefined || options[key] === null) {
      problems.push(`${key} is required`);
    }
  }
  const positive = (name: string, v: number | undefined): void => {
    if (v !== undefined && (!Number.isInteger(v) || v <= 0)) {
      problems.push(`${name} must be a positive integer`);
    }
  };
  positive('bodyLimit', options.bodyLimit);
  positive('readyTimeoutMs', options.readyTimeoutMs);
  positive('requestTimeoutMs', options.requestTimeoutMs);
  if (options.rateLimit) {
    positive('rateLimit.max', options.rateLimit.max);
    positive('rateLimit.timeWindowMs', options.rateLimit.timeWindowMs);
  }
  if (problems.length > 0) {
    throw API_ERR_CONFIG.createWith({ problems }, [problems.join('; ')]);
  }
}

/** Options of the operations-only app of a process without the API role. */
export interface OpsAppOptions {
  readonly metrics: AppOptions['metrics'];
  readonly auth: AppOptions['auth'];
  readonly logger?: AppOptions['logger'];
}

async function baseApp(
  options: Pick<AppOptions, 'logger' | 'trustProxy' | 'rateLimit' | 'auth' | 'requestTimeoutMs'> & {
    readonly onForbidden?: ForbiddenAuditor;
  },
  bodyLimit: number,
): Promise<FastifyInstance> {
  const requestTimeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit,
    // A slow client (slowloris) cannot hold a connection open: the whole request must arrive
    // in time, checked every second (Node's default check interval is 30 s).
    requestTimeout,
    http: { connectionsCheckingInterval: Math.min(1000, requestTimeout) },
    frameworkErrors: frameworkErrorHandler(bodyLimit),
    clientErrorHandler,
    // Our own request log line (below) carries the path without the query string.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: options.trustProxy ?? false,
    ajv: { customOptions: { allErrors: true, removeAdditional: false } },
  }) as unknown as FastifyInstance;
  await app.register(errorsPlugin, { bodyLimit });
  const limit = options.rateLimit === undefined ? DEFAULT_RATE_LIMIT : options.rateLimit;
  if (limit) {
    await app.register(rateLimit, {
      max: limit.max,
      timeWindow: limit.timeWindowMs,
      errorResponseBuilder: (_req, ctx) => API_ERR_RATE_LIMITED.create(ctx.after),
    });
  }
  await app.register(authPluginFp, {
    verify: createTokenVerifier(options.auth),
    publicPrefixes: [DOCS_PREFIX, UI_PREFIX],
    ...(options.onForbidden === undefined ? {} : { onForbidden: options.onForbidden }),
  });
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      { method: request.method, path: pathOf(request), status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
      'request',
    );
  });
  return app;
}

/**
 * Builds the small app a worker or scheduler process serves when asked (METRICS_PORT):
 * GET /healthz and GET /metrics (with a token), so Prometheus can scrape every process.
 * @param options - metrics registry, auth, logger.
 * @returns the Fastify instance.
 */
export async function buildOpsApp(options: OpsAppOptions): Promise<FastifyInstance> {
  const app = await baseApp({ ...options, rateLimit: false }, DEFAULT_BODY_LIMIT);
  await app.register(healthRoutes, { readyTimeoutMs: DEFAULT_READY_TIMEOUT_MS });
  await app.register(metricsRoutes, { registry: options.metrics });
  return app;
}

/**
 * Every 403 becomes an audit event (issue 10): a principal probing routes beyond its roles
 * leaves a trace. Route templates only, never the URL (no query values, no path ids).
 */
function forbiddenAuditor(audit: RequestAuditor, rules: AppOptions['rules']): ForbiddenAuditor {
  return (request, code) =>
    audit(request, {
      action: 'api.forbidden',
      outcome: 'failure',
      failureCode: code,
      rulesVersion: rules.current().rulesVersion,
      target: { method: request.method, route: request.routeOptions.url ?? 'unknown' },
    });
}

/**
 * Builds the API (not yet listening).
 * @param options - services, auth and limits.
 * @returns the Fastify instance, ready to `listen` or `inject`.
 * @throws API_ERR_CONFIG when an option is missing or out of range.
 */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  checkOptions(options);
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const now = options.now ?? ((): Date => new Date());
  const audit = createAuditor(options.audit, now);
  const app = await baseApp({ ...options, onForbidden: forbiddenAuditor(audit, options.rules) }, bodyLimit);
  if (options.docs !== false) {
    await app.register(docsPluginFp, { version: pkg.version });
  }
  const { sync, rules, instances } = options;
  await app.register(healthRoutes, { sync, readyTimeoutMs: options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS });
  await app.register(metricsRoutes, { registry: options.metrics });
  await app.register(syncRoutes, { sync, rules, audit });
  await app.register(statusRoutes, { sync, rules, now });
  await app.register(quarantineRoutes, { sync, rules, audit });
  if (options.pushSecret !== undefined) {
    await app.register(hookRoutes, { sync, secret: options.pushSecret });
  }
  await app.register(instanceRoutes, {
    instances,
    rules,
    audit,
    ...(options.instanceSchemas ?? { recordSchema: instanceRecordJsonSchema() }),
  });
  await app.register(rulesRoutes, { rules, audit });
  await app.register(uiRoutes);
  return app;
}
