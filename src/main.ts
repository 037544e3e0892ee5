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
import { pino } from 'pino';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { FastifyInstance } from 'fastify';
import { anonymizerRulesEngine, createAnonymizer, createFileRulesStore, deidKeyFrom } from './anonymizer/index.ts';
import type { Anonymizer, CompiledRules, DeidKey, RulesStore } from './anonymizer/index.ts';
import { authConfig, buildApp, buildOpsApp } from './api/index.ts';
import type { AuthConfig } from './api/index.ts';
import {
  bundleCapsOf,
  connectionPolicyOf,
  feedKindsOf,
  loadProfiles,
  openInstanceRegistry,
} from './instances/index.ts';
import { checkEnv, collectProblems, throwProblems } from './shared/env.ts';
import type { Env, ServiceEnv, ServiceRole } from './shared/env.ts';
import { createSyncMetrics, openSyncControl, startScheduler, startWorker } from './sync/index.ts';
import type { Handle } from './sync/index.ts';

export { ServiceRole } from './shared/env.ts';

/**
 * The --roles flag: `--roles a,b` / `--roles=a,b` / `--role a`; it replaces FHIR_SYNC_ROLES.
 * @param argv - command-line arguments (after the script).
 * @returns the last value given, or undefined.
 */
export function rolesFlag(argv: readonly string[]): string | undefined {
  let spec: string | undefined;
  argv.forEach((arg, i) => {
    if (arg === '--roles' || arg === '--role') {
      spec = argv[i + 1] ?? '';
    } else if (arg.startsWith('--roles=') || arg.startsWith('--role=')) {
      spec = arg.slice(arg.indexOf('=') + 1);
    }
  });
  return spec;
}

/**
 * The process logger: JSON lines to stdout, secrets redacted by path (tokens, keys and
 * authorization headers, should any code ever log them).
 * @param level - pino level (LOG_LEVEL).
 * @returns the logger.
 */
export function createLogger(level: string): Logger {
  return pino({
    level,
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

/** The environment's settings plus what is built from them, checked before anything is opened. */
interface BootConfig {
  readonly settings: ServiceEnv;
  readonly auth?: AuthConfig;
  readonly key?: DeidKey;
}

/**
 * Parses the environment and the content its secrets carry (API key entries, the key's
 * encoding), and throws one API_ERR_CONFIG listing every problem of both.
 */
function readBootConfig(argv: readonly string[], env: Env): BootConfig {
  const { settings, problems } = checkEnv(env, { roles: rolesFlag(argv) });
  const all = [...problems];
  const { auth, deidKey } = settings;
  const config: BootConfig = {
    settings,
    ...(auth ? { auth: collectProblems(all, () => authConfig(auth)) } : {}),
    ...(deidKey ? { key: collectProblems(all, () => deidKeyFrom(deidKey)) } : {}),
  };
  throwProblems(all);
  return config;
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
  /** The logger the service writes to. */
  readonly logger: Logger;
  /** Longest wait for a clean close (SHUTDOWN_TIMEOUT_MS). */
  readonly shutdownTimeoutMs: number;
  close(): Promise<void>;
}

/** Options of startService. */
export interface StartOptions {
  readonly argv?: readonly string[];
  /** Parsed once by src/shared/env.ts. @defaultValue process.env */
  readonly env?: Env;
  readonly logger?: Logger;
}

/** What the parts of one process share. */
interface Parts {
  readonly boot: BootConfig;
  readonly logger: Logger;
  readonly rules: RulesStore<CompiledRules>;
  readonly handles: { name: string; handle: Handle }[];
}

/**
 * Starts the roles of this process.
 * @param opts - argv (roles), environment, logger.
 * @returns the running service.
 */
export async function startService(opts: StartOptions = {}): Promise<RunningService> {
  const boot = readBootConfig(opts.argv ?? [], opts.env ?? process.env);
  const { settings } = boot;
  const logger = opts.logger ?? createLogger(settings.logLevel);
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
    const rules = await openRules(settings, logger);
    handles.push({ name: 'rules', handle: { close: () => Promise.resolve(rules.close()) } });
    const url = await startParts({ boot, logger, rules, handles });
    logger.info({ roles: settings.roles, url, rulesVersion: rules.current().rulesVersion }, 'fhir-sync started');
    return {
      roles: settings.roles,
      ...(url ? { url } : {}),
      rules,
      logger,
      shutdownTimeoutMs: settings.shutdownTimeoutMs,
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

function openRules(settings: ServiceEnv, logger: Logger): Promise<RulesStore<CompiledRules>> {
  const { api } = settings;
  return createFileRulesStore({
    file: api.rulesFile,
    versionsDir: api.rulesVersionsDir,
    engine: anonymizerRulesEngine(),
    watchIntervalMs: api.rulesWatchMs,
    approval: api.rulesApproval,
    recordExternalChanges: settings.roles.includes('api'),
    onError: (err) =>
      logger.warn({ errorCode: (err as { code?: unknown }).code }, 'rules file on disk refused; the rules in use stay'),
  });
}

/** Starts worker, scheduler and HTTP parts as the roles say; returns the URL listened on. */
async function startParts({ boot, logger, rules, handles }: Parts): Promise<string | undefined> {
  const { settings: s } = boot;
  const has = (r: ServiceRole): boolean => s.roles.includes(r);
  const { api } = s;
  const policy = await connectionPolicyOf(s.net, {
    redisUrl: s.redisUrl,
    ...(has('api') ? { api: { host: api.host, port: api.port } } : {}),
    ...(!has('api') && s.metricsPort !== undefined ? { api: { host: api.host, port: s.metricsPort } } : {}),
  });
  const instances = await openInstanceRegistry(s.instancesFile, { policy });
  const shared = {
    instances,
    logger,
    clientOptions: { policy },
    redisUrl: s.redisUrl,
    ...(s.redisPrefix !== undefined ? { prefix: s.redisPrefix } : {}),
  };
  const metrics = new Registry();
  const syncMetrics = createSyncMetrics(metrics);
  if (has('worker')) {
    const key = boot.key as DeidKey;
    handles.push({
      name: 'worker',
      handle: await startWorker({
        ...shared,
        anonymizer: anonymizerHolder(rules, key, logger),
        key,
        metrics: syncMetrics,
        ...(s.workerConcurrency !== undefined ? { concurrency: s.workerConcurrency } : {}),
        ...(s.channelConcurrency !== undefined ? { channelConcurrency: s.channelConcurrency } : {}),
        ...(s.globalConcurrency !== undefined ? { globalConcurrency: s.globalConcurrency } : {}),
        // Saved by `fhir-sync doctor --write-probes`; absent profiles only mean caps are learned.
        ...(await profileHints(s.profilesDir)),
      }),
    });
  }
  if (has('scheduler')) {
    handles.push({
      name: 'scheduler',
      handle: await startScheduler({ ...shared, ...(s.push ? { push: s.push } : {}) }),
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
      ...(s.push ? { pushSecret: s.push.secret } : {}),
    });
  } else if (s.metricsPort !== undefined) {
    app = await buildOpsApp({ metrics, auth: boot.auth as AuthConfig, logger });
  }
  if (!app) {
    return undefined;
  }
  const server = app;
  const url = await server.listen({ host: api.host, port: has('api') ? api.port : (s.metricsPort ?? 0) });
  handles.push({ name: 'http', handle: { close: () => server.close() } });
  return url;
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
  let service: RunningService;
  try {
    service = await startService({ argv, env });
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
  return closeOnSignals(service, service.logger, service.shutdownTimeoutMs);
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
