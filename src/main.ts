/**
 * The service process (`npm start`, `fhir-sync serve`). By default one process runs every
 * role: the HTTP API, the scheduler (cron → queue) and the workers (queue → passes). For
 * scale-out, FHIR_SYNC_ROLES=api,worker,scheduler (or `--roles`) picks a subset per process;
 * the parts meet only through Redis (queue, locks, status), the global server (cursors,
 * quarantine, audit) and the shared config files.
 *
 * Everything is configured from the environment and checked before anything is opened, so a
 * bad setting stops the boot with every problem listed. SIGTERM/SIGINT close the parts in
 * order (API first, so no new work comes in; then scheduler; then workers, which finish
 * their running page) and exit; a second signal exits at once.
 */
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { FastifyInstance } from 'fastify';
import { anonymizerRulesEngine, createAnonymizer, createFileRulesStore, keyFromEnv } from './anonymizer/index.ts';
import type { Anonymizer, CompiledRules, DeidKey, RulesStore } from './anonymizer/index.ts';
import { apiSettingsFromEnv, intFromEnv, authConfigFromEnv, buildApp, buildOpsApp } from './api/index.ts';
import type { ApiSettings, AuthConfig } from './api/index.ts';
import {
  DEFAULT_PROFILES_DIR,
  bundleCapsOf,
  connectionPolicyFromEnv,
  feedKindsOf,
  loadProfiles,
  openInstanceRegistry,
} from './instances/index.ts';
import { API_ERR_CONFIG } from './shared/errors/index.ts';
import { createSyncMetrics, openSyncControl, startScheduler, startWorker } from './sync/index.ts';
import type { Handle, PushSettings } from './sync/index.ts';

/** The parts one process can run. */
export const ServiceRole = { api: 'api', worker: 'worker', scheduler: 'scheduler' } as const;
export type ServiceRole = (typeof ServiceRole)[keyof typeof ServiceRole];
const ALL_ROLES: readonly ServiceRole[] = [ServiceRole.api, ServiceRole.worker, ServiceRole.scheduler];

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The roles to run: `--roles a,b` / `--roles=a,b` / `--role a` in argv, else FHIR_SYNC_ROLES,
 * else all three.
 * @param argv - command-line arguments (after the script).
 * @param env - the environment.
 * @returns distinct roles in a fixed order.
 * @throws API_ERR_CONFIG for an unknown role or an empty list.
 */
export function parseRoles(argv: readonly string[], env: Env): ServiceRole[] {
  let spec = env.FHIR_SYNC_ROLES;
  argv.forEach((arg, i) => {
    if (arg === '--roles' || arg === '--role') {
      spec = argv[i + 1] ?? '';
    } else if (arg.startsWith('--roles=') || arg.startsWith('--role=')) {
      spec = arg.slice(arg.indexOf('=') + 1);
    }
  });
  if (spec === undefined || spec.trim() === '' || spec.trim() === 'all') {
    return [...ALL_ROLES];
  }
  const names = spec
    .split(',')
    .map((r) => r.trim())
    .filter((r) => r.length > 0);
  const unknown = names.filter((n) => !(ALL_ROLES as readonly string[]).includes(n));
  if (unknown.length > 0 || names.length === 0) {
    throw API_ERR_CONFIG.create(`unknown role(s) ${unknown.join(', ')}; use api, worker, scheduler`);
  }
  return ALL_ROLES.filter((r) => names.includes(r));
}

/**
 * The process logger: JSON lines to stdout, secrets redacted by path (tokens, keys and
 * authorization headers, should any code ever log them).
 * @param env - LOG_LEVEL (default info).
 * @returns the logger.
 */
export function createLogger(env: Env): Logger {
  return pino({
    level: env.LOG_LEVEL ?? 'info',
    base: { service: 'fhir-sync', pid: process.pid },
    redact: {
      paths: [
        'authorization',
        '*.authorization',
        'headers.authorization',
        '*.headers.authorization',
        'token',
        '*.token',
        'secret',
        '*.secret',
      ],
      censor: '[redacted]',
    },
  });
}

/** Everything read from the environment, checked before anything is opened. */
interface BootConfig {
  readonly roles: readonly ServiceRole[];
  readonly api?: ApiSettings;
  readonly auth?: AuthConfig;
  readonly key?: DeidKey;
  readonly instancesFile: string;
  readonly push?: PushSettings;
  /** Redis key prefix of queue, locks and status (FHIR_SYNC_REDIS_PREFIX). */
  readonly redisPrefix?: string;
  readonly metricsPort?: number;
  readonly workerConcurrency?: number;
  readonly channelConcurrency?: number;
  readonly globalConcurrency?: number;
  readonly shutdownTimeoutMs: number;
}

function collect<T>(problems: string[], fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    const details = (err as { details?: { problems?: unknown } }).details;
    const code = (err as { code?: unknown }).code;
    const label = typeof code === 'string' ? code : err instanceof Error ? err.name : 'error';
    const message = err instanceof Error ? err.message : String(err);
    problems.push(...(Array.isArray(details?.problems) ? details.problems.map(String) : [`${label}: ${message}`]));
    return undefined;
  }
}

function readBootConfig(argv: readonly string[], env: Env): BootConfig {
  const roles = parseRoles(argv, env);
  const problems: string[] = [];
  const has = (r: ServiceRole): boolean => roles.includes(r);
  const metricsPort = env.METRICS_PORT !== undefined && env.METRICS_PORT !== '' ? Number(env.METRICS_PORT) : undefined;
  if (metricsPort !== undefined && (!Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65_535)) {
    problems.push('METRICS_PORT must be a port number');
  }
  const shutdownTimeoutMs = Number(env.SHUTDOWN_TIMEOUT_MS ?? '30000');
  if (!Number.isInteger(shutdownTimeoutMs) || shutdownTimeoutMs <= 0) {
    problems.push('SHUTDOWN_TIMEOUT_MS must be a positive integer');
  }
  const concurrency =
    env.WORKER_CONCURRENCY !== undefined && env.WORKER_CONCURRENCY !== '' ? Number(env.WORKER_CONCURRENCY) : undefined;
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)) {
    problems.push('WORKER_CONCURRENCY must be an integer from 1 to 64');
  }
  const channelConcurrency = intFromEnv(env, 'SYNC_CHANNEL_CONCURRENCY', undefined, 1, 32, problems);
  const globalConcurrency = intFromEnv(env, 'SYNC_GLOBAL_CONCURRENCY', undefined, 1, 64, problems);
  const needsAuth = has('api') || metricsPort !== undefined;
  const config: BootConfig = {
    roles,
    api: collect(problems, () => apiSettingsFromEnv(env)),
    ...(needsAuth ? { auth: collect(problems, () => authConfigFromEnv(env)) } : {}),
    ...(has('worker') ? { key: collect(problems, () => keyFromEnv(env)) } : {}),
    instancesFile:
      env.FHIR_SYNC_INSTANCES !== undefined && env.FHIR_SYNC_INSTANCES !== ''
        ? env.FHIR_SYNC_INSTANCES
        : 'config/instances.yaml',
    ...(env.FHIR_SYNC_REDIS_PREFIX !== undefined && env.FHIR_SYNC_REDIS_PREFIX !== ''
      ? { redisPrefix: env.FHIR_SYNC_REDIS_PREFIX }
      : {}),
    ...(metricsPort !== undefined ? { metricsPort } : {}),
    ...(concurrency !== undefined ? { workerConcurrency: concurrency } : {}),
    ...(channelConcurrency !== undefined ? { channelConcurrency } : {}),
    ...(globalConcurrency !== undefined ? { globalConcurrency } : {}),
    shutdownTimeoutMs,
    ...pushFromEnv(env, problems),
  };
  if (problems.length > 0) {
    throw API_ERR_CONFIG.createWith({ problems }, [problems.join('; ')]);
  }
  return config;
}

/**
 * Push wake-up settings: FHIR_SYNC_PUBLIC_URL (the service's base URL as the locals reach it)
 * turns it on, and then FHIR_SYNC_PUSH_SECRET or FHIR_SYNC_PUSH_SECRET_FILE (at least 32
 * bytes) must give the secret of the notification tokens. Without a public URL: polling only.
 */
function pushFromEnv(env: Env, problems: string[]): { push?: PushSettings } {
  const url = env.FHIR_SYNC_PUBLIC_URL ?? '';
  if (url === '') {
    return {};
  }
  if (!/^https?:\/\/[^\s/]+/.test(url)) {
    problems.push('FHIR_SYNC_PUBLIC_URL must be an http(s) URL');
  }
  const inline = env.FHIR_SYNC_PUSH_SECRET ?? '';
  const file = env.FHIR_SYNC_PUSH_SECRET_FILE ?? '';
  let secret = inline;
  if (inline === '' && file !== '') {
    try {
      secret = readFileSync(file, 'utf8').trim();
    } catch {
      problems.push('FHIR_SYNC_PUSH_SECRET_FILE cannot be read');
    }
  }
  if (Buffer.byteLength(secret) < 32) {
    problems.push('FHIR_SYNC_PUSH_SECRET (or _FILE) must hold at least 32 bytes when FHIR_SYNC_PUBLIC_URL is set');
  }
  return { push: { publicUrl: url, secret: Buffer.from(secret, 'utf8') } };
}

/**
 * An Anonymizer that always delegates to the current one, so parts built once (the sync
 * engine) use each newly accepted rules version from their next call on.
 * @param current - returns the anonymizer of the rules in use.
 * @returns the delegating anonymizer.
 */
export function liveAnonymizer(current: () => Anonymizer): Anonymizer {
  return {
    get rulesVersion(): string {
      return current().rulesVersion;
    },
    get keyId(): string {
      return current().keyId;
    },
    deidentify: (resources, context) => current().deidentify(resources, context),
    pseudonymousId: (instanceId, resourceType, id) => current().pseudonymousId(instanceId, resourceType, id),
  };
}

/** A started service: its roles, where the API listens, and how to stop it. */
export interface RunningService {
  readonly roles: readonly ServiceRole[];
  /** `http://host:port` of the API (or of the ops app), when one listens. */
  readonly url?: string;
  readonly rules: RulesStore<CompiledRules>;
  close(): Promise<void>;
}

/** Options of startService. */
export interface StartOptions {
  readonly argv?: readonly string[];
  readonly env?: Env;
  readonly logger?: Logger;
}

/**
 * Starts the roles of this process.
 * @param opts - argv (roles), environment, logger.
 * @returns the running service.
 */
export async function startService(opts: StartOptions = {}): Promise<RunningService> {
  const env = opts.env ?? process.env;
  const boot = readBootConfig(opts.argv ?? [], env);
  const logger = opts.logger ?? createLogger(env);
  const has = (r: ServiceRole): boolean => boot.roles.includes(r);
  const api = boot.api as ApiSettings;
  const handles: { name: string; handle: Handle }[] = [];
  const closeAll = async (): Promise<void> => {
    for (const { name, handle } of handles.reverse()) {
      await handle
        .close()
        .catch((err: unknown) =>
          logger.error({ part: name, errorCode: (err as { code?: unknown }).code }, 'close failed'),
        );
    }
  };
  try {
    const rules = await createFileRulesStore({
      file: api.rulesFile,
      versionsDir: api.rulesVersionsDir,
      engine: anonymizerRulesEngine(),
      watchIntervalMs: api.rulesWatchMs,
      approval: api.rulesApproval,
      recordExternalChanges: has('api'),
      onError: (err) =>
        logger.warn(
          { errorCode: (err as { code?: unknown }).code },
          'rules file on disk refused; the rules in use stay',
        ),
    });
    handles.push({ name: 'rules', handle: { close: () => Promise.resolve(rules.close()) } });
    const policy = await connectionPolicyFromEnv(env, {
      redisUrl: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      ...(has('api') ? { api: { host: api.host, port: api.port } } : {}),
      ...(!has('api') && boot.metricsPort !== undefined ? { api: { host: api.host, port: boot.metricsPort } } : {}),
    });
    const instances = await openInstanceRegistry(boot.instancesFile, { policy });
    const shared = {
      instances,
      logger,
      clientOptions: { policy },
      ...(boot.redisPrefix !== undefined ? { prefix: boot.redisPrefix } : {}),
    };
    const metrics = new Registry();
    const syncMetrics = createSyncMetrics(metrics);
    if (has('worker')) {
      const anonymizer = anonymizerHolder(rules, boot.key as DeidKey, logger);
      handles.push({
        name: 'worker',
        handle: await startWorker({
          ...shared,
          anonymizer,
          key: boot.key as DeidKey,
          metrics: syncMetrics,
          ...(boot.workerConcurrency !== undefined ? { concurrency: boot.workerConcurrency } : {}),
          ...(boot.channelConcurrency !== undefined ? { channelConcurrency: boot.channelConcurrency } : {}),
          ...(boot.globalConcurrency !== undefined ? { globalConcurrency: boot.globalConcurrency } : {}),
          // Saved by `fhir-sync doctor --write-probes`; absent profiles only mean caps are learned.
          ...(await profileHints(env.FHIR_SYNC_PROFILES_DIR ?? DEFAULT_PROFILES_DIR)),
        }),
      });
    }
    if (has('scheduler')) {
      handles.push({
        name: 'scheduler',
        handle: await startScheduler({ ...shared, ...(boot.push ? { push: boot.push } : {}) }),
      });
    }
    let app: FastifyInstance | undefined;
    if (has('api')) {
      const control = await openSyncControl({ ...shared, redisTimeoutMs: api.redisCommandTimeoutMs });
      handles.push({ name: 'sync-control', handle: control });
      app = await buildApp({
        sync: control.control,
        instances,
        rules,
        metrics,
        audit: control.audit,
        auth: boot.auth as AuthConfig,
        logger,
        bodyLimit: api.bodyLimit,
        rateLimit: api.rateLimit,
        trustProxy: api.trustProxy,
        docs: api.docs,
        readyTimeoutMs: api.readyTimeoutMs,
        requestTimeoutMs: api.requestTimeoutMs,
        ...(boot.push ? { pushSecret: boot.push.secret } : {}),
      });
    } else if (boot.metricsPort !== undefined) {
      app = await buildOpsApp({ metrics, auth: boot.auth as AuthConfig, logger });
    }
    let url: string | undefined;
    if (app) {
      const server = app;
      url = await server.listen({ host: api.host, port: has('api') ? api.port : (boot.metricsPort ?? 0) });
      handles.push({ name: 'http', handle: { close: () => server.close() } });
    }
    logger.info({ roles: boot.roles, url, rulesVersion: rules.current().rulesVersion }, 'fhir-sync started');
    return { roles: boot.roles, ...(url ? { url } : {}), rules, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

function anonymizerHolder(rules: RulesStore<CompiledRules>, key: DeidKey, logger: Logger): Anonymizer {
  let current = createAnonymizer({ rules: rules.current().rules, key });
  rules.onRulesChanged((snapshot) => {
    current = createAnonymizer({ rules: snapshot.rules, key });
    logger.info({ rulesVersion: snapshot.rulesVersion, author: snapshot.author }, 'rules changed; new passes use them');
  });
  return liveAnonymizer(() => current);
}

/**
 * Closes the service on SIGTERM/SIGINT (a second signal exits at once) and sets the exit
 * code: 0 after a clean close, 1 when closing failed or took longer than the timeout.
 * @param service - the running service.
 * @param logger - where to say what happens.
 * @param timeoutMs - longest wait for a clean close.
 * @returns a promise settled when the service has closed.
 */
export function closeOnSignals(service: RunningService, logger: Logger, timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    let closing = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (closing) {
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      closing = true;
      logger.info({ signal }, 'shutting down');
      const timer = setTimeout(() => {
        logger.error({ timeoutMs }, 'shutdown took too long: exiting');
        resolve(1);
      }, timeoutMs);
      timer.unref();
      service.close().then(
        () => {
          clearTimeout(timer);
          logger.info('stopped');
          resolve(0);
        },
        () => {
          clearTimeout(timer);
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

/**
 * Runs the service until a signal stops it (the body of `npm start` and `fhir-sync serve`).
 * @param argv - arguments (roles).
 * @param env - the environment.
 * @param stderr - where boot errors go.
 * @returns the exit code.
 */
export async function serve(
  argv: readonly string[],
  env: Env,
  stderr: { write(text: string): unknown },
): Promise<number> {
  const logger = createLogger(env);
  let service: RunningService;
  try {
    service = await startService({ argv, env, logger });
  } catch (err) {
    const details = (err as { details?: { problems?: unknown } }).details;
    stderr.write(`fhir-sync did not start: ${(err as { code?: string }).code ?? 'error'}\n`);
    for (const p of Array.isArray(details?.problems)
      ? details.problems
      : [err instanceof Error ? err.message : String(err)]) {
      stderr.write(`  - ${typeof p === 'string' ? p : JSON.stringify(p)}\n`);
    }
    return 1;
  }
  const timeout = Number(env.SHUTDOWN_TIMEOUT_MS ?? '30000');
  return closeOnSignals(service, logger, timeout);
}

if (import.meta.main) {
  process.exit(await serve(process.argv.slice(2), process.env, process.stderr));
}

/** What saved server profiles tell a worker (see src/instances/profile.ts). */
async function profileHints(dir: string): Promise<{
  initialBundleCaps: Map<string, number>;
  probedKinds: ReturnType<typeof feedKindsOf>;
}> {
  const profiles = await loadProfiles(dir);
  return { initialBundleCaps: bundleCapsOf(profiles), probedKinds: feedKindsOf(profiles) };
}
