/**
 * Settings of the API process from the environment, parsed once with every problem
 * reported, then frozen. Auth settings are parsed separately (auth/config.ts) because they
 * carry secrets.
 */
import { API_ERR_CONFIG } from '../shared/errors/index.ts';
import { DEFAULT_BODY_LIMIT, DEFAULT_RATE_LIMIT, DEFAULT_READY_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS } from './app.ts';

/** Where and how the API listens, and where the rules live. */
export interface ApiSettings {
  /** @defaultValue '0.0.0.0' (API_HOST) */
  readonly host: string;
  /** @defaultValue 8080 (API_PORT, else PORT) */
  readonly port: number;
  /** @defaultValue 1 MiB (API_BODY_LIMIT, bytes) */
  readonly bodyLimit: number;
  /** @defaultValue 600 per 60000 ms (API_RATE_LIMIT_MAX, API_RATE_LIMIT_WINDOW_MS; max 0 = off) */
  readonly rateLimit: { readonly max: number; readonly timeWindowMs: number } | false;
  /** @defaultValue false (API_TRUST_PROXY: true, false, or a proxy address list) */
  readonly trustProxy: boolean | string;
  /** @defaultValue true (API_DOCS=off hides /docs) */
  readonly docs: boolean;
  /** @defaultValue 3000 (API_READY_TIMEOUT_MS) */
  readonly readyTimeoutMs: number;
  /** @defaultValue 30000 (API_REQUEST_TIMEOUT_MS: time to send a whole request) */
  readonly requestTimeoutMs: number;
  /** @defaultValue 3000 (REDIS_COMMAND_TIMEOUT_MS: an API call that needs Redis answers 503 after it) */
  readonly redisCommandTimeoutMs: number;
  /** @defaultValue 'config/anonymization.yaml' (RULES_FILE) */
  readonly rulesFile: string;
  /** @defaultValue 'data/rules-versions' (RULES_VERSIONS_DIR) */
  readonly rulesVersionsDir: string;
  /** @defaultValue 5000 (RULES_WATCH_MS; 0 = do not watch the rules file) */
  readonly rulesWatchMs: number;
  /** @defaultValue 'two-step' (RULES_APPROVAL: a saved version waits for a second compliance user; 'one-step' for small sites) */
  readonly rulesApproval: 'one-step' | 'two-step';
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * An integer setting in [min, max]; out of range records a problem and gives the fallback.
 * @returns the value, or `fallback` when unset or invalid.
 */
export function intFromEnv<F extends number | undefined>(
  env: Env,
  name: string,
  fallback: F,
  min: number,
  max: number,
  problems: string[],
): number | F {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    return fallback;
  }
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    problems.push(`${name} must be an integer from ${min} to ${max}`);
    return fallback;
  }
  return n;
}

function trustProxyOf(raw: string | undefined): boolean | string {
  if (raw === undefined || raw === '' || raw === 'false') {
    return false;
  }
  return raw === 'true' ? true : raw;
}

/**
 * Reads the API settings.
 * @param env - the environment.
 * @returns frozen settings.
 * @throws API_ERR_CONFIG listing every bad variable.
 */
export function apiSettingsFromEnv(env: Env): ApiSettings {
  const problems: string[] = [];
  const portName = env.API_PORT !== undefined && env.API_PORT !== '' ? 'API_PORT' : 'PORT';
  const port = intFromEnv(env, portName, 8080, 0, 65_535, problems);
  const max = intFromEnv(env, 'API_RATE_LIMIT_MAX', DEFAULT_RATE_LIMIT.max, 0, 1_000_000, problems);
  const windowMs = intFromEnv(
    env,
    'API_RATE_LIMIT_WINDOW_MS',
    DEFAULT_RATE_LIMIT.timeWindowMs,
    1,
    86_400_000,
    problems,
  );
  const docs = env.API_DOCS ?? 'on';
  if (!['on', 'off', 'true', 'false'].includes(docs)) {
    problems.push('API_DOCS must be on or off');
  }
  const approval = env.RULES_APPROVAL === undefined || env.RULES_APPROVAL === '' ? 'two-step' : env.RULES_APPROVAL;
  if (approval !== 'one-step' && approval !== 'two-step') {
    problems.push('RULES_APPROVAL must be one-step or two-step');
  }
  const settings: ApiSettings = {
    host: env.API_HOST !== undefined && env.API_HOST !== '' ? env.API_HOST : '0.0.0.0',
    port,
    bodyLimit: intFromEnv(env, 'API_BODY_LIMIT', DEFAULT_BODY_LIMIT, 1024, 64 * 1_048_576, problems),
    rateLimit: max === 0 ? false : Object.freeze({ max, timeWindowMs: windowMs }),
    trustProxy: trustProxyOf(env.API_TRUST_PROXY),
    docs: docs === 'on' || docs === 'true',
    readyTimeoutMs: intFromEnv(env, 'API_READY_TIMEOUT_MS', DEFAULT_READY_TIMEOUT_MS, 1, 60_000, problems),
    requestTimeoutMs: intFromEnv(env, 'API_REQUEST_TIMEOUT_MS', DEFAULT_REQUEST_TIMEOUT_MS, 1000, 600_000, problems),
    redisCommandTimeoutMs: intFromEnv(env, 'REDIS_COMMAND_TIMEOUT_MS', 3000, 100, 60_000, problems),
    rulesFile: env.RULES_FILE !== undefined && env.RULES_FILE !== '' ? env.RULES_FILE : 'config/anonymization.yaml',
    rulesVersionsDir:
      env.RULES_VERSIONS_DIR !== undefined && env.RULES_VERSIONS_DIR !== ''
        ? env.RULES_VERSIONS_DIR
        : 'data/rules-versions',
    rulesWatchMs: intFromEnv(env, 'RULES_WATCH_MS', 5000, 0, 3_600_000, problems),
    rulesApproval: approval === 'one-step' ? 'one-step' : 'two-step',
  };
  if (problems.length > 0) {
    throw API_ERR_CONFIG.createWith({ problems }, [problems.join('; ')]);
  }
  return Object.freeze(settings);
}
