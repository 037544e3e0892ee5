/**
 * The one owner of the process environment (issue 15). Every variable the service reads is
 * declared here with its type, accepted range and default; the environment is parsed once,
 * at start, every problem is listed with the variable's name (never a secret's value), and
 * the result is frozen and handed down as typed settings. No other module reads `env`.
 *
 * Secrets (API_KEYS, DEID_HMAC_KEY, FHIR_SYNC_PUSH_SECRET) may also be given as a file named
 * by `<NAME>_FILE` (a mounted secret). Secret groups are read only when the process needs
 * them: API auth for the `api` role or a metrics port, the de-identification key for the
 * `worker` role, the push secret when a public URL is set, so a process is never refused for
 * a secret it does not use.
 *
 * Content that has its own grammar (API key entries, the key's encoding, network policy
 * ranges) is handed on as text and parsed by its owner; the service boot lists those problems
 * with these ones in one API_ERR_CONFIG.
 *
 * Blank values keep their historic meaning per variable: most treat `VAR=` as unset, a few
 * (marked `keepBlank`) take the empty text as given, as they always did.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import {
  API_ERR_AUTH_CONFIG,
  API_ERR_CONFIG,
  DEID_ERR_KEY_FILE,
  DEID_ERR_KEY_INVALID,
  DEID_ERR_KEY_MISSING,
} from './errors/index.ts';
import { DEFAULT_CA_DIR } from './fhir-transport.ts';

/** The process environment, or a stand-in in tests. */
export type Env = Readonly<Record<string, string | undefined>>;

/** The parts one process can run. */
export const ServiceRole = { api: 'api', worker: 'worker', scheduler: 'scheduler' } as const;
export type ServiceRole = (typeof ServiceRole)[keyof typeof ServiceRole];
const ALL_ROLES: readonly ServiceRole[] = [ServiceRole.api, ServiceRole.worker, ServiceRole.scheduler];

/** Default largest request body: 1 MiB (API_BODY_LIMIT). */
export const DEFAULT_BODY_LIMIT = 1_048_576;
/** Default rate limit per client address (API_RATE_LIMIT_MAX, API_RATE_LIMIT_WINDOW_MS). */
export const DEFAULT_RATE_LIMIT = { max: 600, timeWindowMs: 60_000 } as const;
/** Default wait of /readyz (API_READY_TIMEOUT_MS). */
export const DEFAULT_READY_TIMEOUT_MS = 3_000;
/** Default time a client may take to send a whole request (API_REQUEST_TIMEOUT_MS). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Default directory of saved server profiles (FHIR_SYNC_PROFILES_DIR). */
export const DEFAULT_PROFILES_DIR = 'data/server-profiles';
/** Default Redis (REDIS_URL). */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
/** Default registry file (FHIR_SYNC_INSTANCES). */
export const DEFAULT_INSTANCES_FILE = 'config/instances.yaml';
/** Accepted JWT signature algorithms unless AUTH_JWT_ALGORITHMS says otherwise. */
export const DEFAULT_JWT_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;

/** Where and how the API listens, and where the rules live. */
export interface ApiEnv {
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

/** API key text to parse (src/api/auth), with the name its problems are reported under. */
export interface ApiKeysText {
  /** `API_KEYS`, or the path API_KEYS_FILE names. */
  readonly source: string;
  readonly text: string;
}

/** JWT settings (AUTH_JWT_*), present when issuer and JWKS URL are both set. */
export interface JwtEnv {
  /** Expected `iss` claim (AUTH_JWT_ISSUER). */
  readonly issuer: string;
  /** Where the issuer publishes its signing keys (AUTH_JWT_JWKS_URL, http or https). */
  readonly jwksUrl: string;
  /** Expected `aud` claim (AUTH_JWT_AUDIENCE); not checked when absent. */
  readonly audience?: string;
  /**
   * Claim holding the roles: an array of strings or a space-separated string; a dotted
   * path reaches nested claims (Keycloak: `realm_access.roles`).
   * @defaultValue 'roles' (AUTH_JWT_ROLES_CLAIM)
   */
  readonly rolesClaim: string;
  /** @defaultValue DEFAULT_JWT_ALGORITHMS (AUTH_JWT_ALGORITHMS, comma-separated, asymmetric only) */
  readonly algorithms: readonly string[];
  /** Allowed clock skew for exp/nbf. @defaultValue 30 (AUTH_JWT_CLOCK_TOLERANCE, seconds, 0-600) */
  readonly clockToleranceSeconds: number;
}

/** How API callers authenticate: the key texts and/or JWT settings (at least one method). */
export interface AuthEnv {
  readonly apiKeys: readonly ApiKeysText[];
  readonly jwt?: JwtEnv;
}

/** The de-identification key as configured (decoded and checked by src/anonymizer). */
export interface DeidKeyEnv {
  /** DEID_HMAC_KEY, or the content of DEID_HMAC_KEY_FILE without its final newline. */
  readonly text: string;
  /** DEID_HMAC_KEY_ID; derived from the key when absent. */
  readonly id?: string;
}

/** Push wake-up (FHIR_SYNC_PUBLIC_URL and its secret). */
export interface PushEnv {
  readonly publicUrl: string;
  /** At least 32 bytes (FHIR_SYNC_PUSH_SECRET / _FILE). */
  readonly secret: Uint8Array;
}

/** Network policy text (parsed by src/shared/net-policy.ts) and the CA directory. */
export interface NetEnv {
  readonly allow?: string;
  readonly deny?: string;
  /** @defaultValue 'config/ca' (FHIR_SYNC_CA_DIR) */
  readonly caDir: string;
}

/** Everything the service reads from the environment, checked and frozen. */
export interface ServiceEnv {
  /** FHIR_SYNC_ROLES (or the --roles flag); every role by default. */
  readonly roles: readonly ServiceRole[];
  /** @defaultValue 'info' (LOG_LEVEL) */
  readonly logLevel: string;
  /** @defaultValue DEFAULT_INSTANCES_FILE (FHIR_SYNC_INSTANCES) */
  readonly instancesFile: string;
  /** @defaultValue DEFAULT_PROFILES_DIR (FHIR_SYNC_PROFILES_DIR) */
  readonly profilesDir: string;
  /** @defaultValue DEFAULT_REDIS_URL (REDIS_URL; checked when the network policy is built) */
  readonly redisUrl: string;
  /** Redis key prefix of queue, locks and status (FHIR_SYNC_REDIS_PREFIX). */
  readonly redisPrefix?: string;
  /** METRICS_PORT: /healthz and /metrics for processes without the api role. */
  readonly metricsPort?: number;
  /** WORKER_CONCURRENCY, 1-64. */
  readonly workerConcurrency?: number;
  /** SYNC_CHANNEL_CONCURRENCY, 1-32. */
  readonly channelConcurrency?: number;
  /** SYNC_GLOBAL_CONCURRENCY, 1-64. */
  readonly globalConcurrency?: number;
  /** @defaultValue 30000 (SHUTDOWN_TIMEOUT_MS) */
  readonly shutdownTimeoutMs: number;
  readonly net: NetEnv;
  readonly api: ApiEnv;
  /** Present when this process needs API auth. */
  readonly auth?: AuthEnv;
  /** Present when this process needs the de-identification key. */
  readonly deidKey?: DeidKeyEnv;
  /** Present when FHIR_SYNC_PUBLIC_URL is set. */
  readonly push?: PushEnv;
}

/** Secret groups a process needs; derived from the roles unless a command says. */
export interface EnvNeeds {
  readonly auth: boolean;
  readonly deidKey: boolean;
}

/** Options of checkEnv and parseEnv. */
export interface EnvOptions {
  /** The --roles flag, which replaces FHIR_SYNC_ROLES. */
  readonly roles?: string;
  /** Secret groups a command needs; FHIR_SYNC_ROLES is then not read (roles are empty). */
  readonly needs?: EnvNeeds;
  /** Reads `*_FILE` secrets. @defaultValue fs.readFileSync */
  readonly readFile?: (path: string) => string | Uint8Array;
}

// ---- variable schemas --------------------------------------------------------------------

/** `VAR=` means unset for most variables. */
const blankUnset = <T extends z.ZodType>(schema: T): z.ZodPreprocess<T> =>
  z.preprocess((v) => (v === '' ? undefined : v), schema);

/** An integer in [min, max]; `message` is the whole problem after the name, whatever failed. */
function int(min: number, max: number, message = `must be an integer from ${min} to ${max}`): z.ZodCoercedNumber {
  return z.coerce.number({ error: message }).int({ error: message }).min(min, { error: message }).max(max, {
    error: message,
  });
}

const PROCESS_VARS = z.object({
  LOG_LEVEL: z.string().default('info'),
  FHIR_SYNC_INSTANCES: blankUnset(z.string().default(DEFAULT_INSTANCES_FILE)),
  FHIR_SYNC_PROFILES_DIR: z.string().default(DEFAULT_PROFILES_DIR),
  REDIS_URL: z.string().default(DEFAULT_REDIS_URL),
  FHIR_SYNC_REDIS_PREFIX: blankUnset(z.string().optional()),
  METRICS_PORT: blankUnset(int(0, 65_535, 'must be a port number').optional()),
  SHUTDOWN_TIMEOUT_MS: int(1, Number.MAX_SAFE_INTEGER, 'must be a positive integer').default(30_000),
  WORKER_CONCURRENCY: blankUnset(int(1, 64).optional()),
  SYNC_CHANNEL_CONCURRENCY: blankUnset(int(1, 32).optional()),
  SYNC_GLOBAL_CONCURRENCY: blankUnset(int(1, 64).optional()),
  FHIR_SYNC_NET_ALLOW: z.string().optional(),
  FHIR_SYNC_NET_DENY: z.string().optional(),
  FHIR_SYNC_CA_DIR: blankUnset(z.string().default(DEFAULT_CA_DIR)),
});

const API_VARS = z.object({
  API_HOST: blankUnset(z.string().default('0.0.0.0')),
  API_PORT: blankUnset(int(0, 65_535).optional()),
  PORT: blankUnset(int(0, 65_535).default(8080)),
  API_BODY_LIMIT: blankUnset(int(1024, 64 * 1_048_576).default(DEFAULT_BODY_LIMIT)),
  API_RATE_LIMIT_MAX: blankUnset(int(0, 1_000_000).default(DEFAULT_RATE_LIMIT.max)),
  API_RATE_LIMIT_WINDOW_MS: blankUnset(int(1, 86_400_000).default(DEFAULT_RATE_LIMIT.timeWindowMs)),
  API_TRUST_PROXY: blankUnset(z.string().optional()),
  API_DOCS: z.enum(['on', 'off', 'true', 'false'], { error: 'must be on or off' }).default('on'),
  API_READY_TIMEOUT_MS: blankUnset(int(1, 60_000).default(DEFAULT_READY_TIMEOUT_MS)),
  API_REQUEST_TIMEOUT_MS: blankUnset(int(1000, 600_000).default(DEFAULT_REQUEST_TIMEOUT_MS)),
  REDIS_COMMAND_TIMEOUT_MS: blankUnset(int(100, 60_000).default(3000)),
  RULES_FILE: blankUnset(z.string().default('config/anonymization.yaml')),
  RULES_VERSIONS_DIR: blankUnset(z.string().default('data/rules-versions')),
  RULES_WATCH_MS: blankUnset(int(0, 3_600_000).default(5000)),
  RULES_APPROVAL: blankUnset(
    z.enum(['one-step', 'two-step'], { error: 'must be one-step or two-step' }).default('two-step'),
  ),
});

const ASYMMETRIC = 'only asymmetric algorithms are accepted';
/** Checked only when AUTH_JWT_ISSUER and AUTH_JWT_JWKS_URL are both set; order is report order. */
const JWT_VARS = z.object({
  AUTH_JWT_JWKS_URL: z
    .string()
    .refine((u) => /^https?:\/\//.test(u) && URL.canParse(u), { error: 'must be an http(s) URL' }),
  AUTH_JWT_CLOCK_TOLERANCE: int(0, 600, 'must be an integer number of seconds, 0-600').default(30),
  AUTH_JWT_ALGORITHMS: z
    .string()
    .default(DEFAULT_JWT_ALGORITHMS.join(','))
    .transform((s) =>
      s
        .split(',')
        .map((a) => a.trim())
        .filter((a) => a.length > 0),
    )
    .refine((list) => !list.some((a) => a === 'none' || a.startsWith('HS')), { error: `: ${ASYMMETRIC}` }),
  AUTH_JWT_ROLES_CLAIM: z.string().default('roles'),
  AUTH_JWT_AUDIENCE: blankUnset(z.string().optional()),
});

/**
 * Parses one group of variables; a problem names the variable and says what it must be.
 * Messages are fixed texts, so no value (secret or not) ever reaches them. A bad variable
 * takes its default (else its raw text), so the other groups can still be checked and every
 * problem listed; a caller with problems never uses the values.
 */
function parseVars<S extends z.ZodObject>(schema: S, env: Env, problems: string[]): z.output<S> {
  const out: Record<string, unknown> = {};
  const shape: Readonly<Record<string, z.ZodType>> = schema.shape;
  for (const [name, field] of Object.entries(shape)) {
    const result = field.safeParse(env[name]);
    if (result.success) {
      out[name] = result.data;
      continue;
    }
    const message = result.error.issues[0]?.message ?? 'is not valid';
    problems.push(message.startsWith(':') ? `${name}${message}` : `${name} ${message}`);
    const fallback = field.safeParse(undefined);
    out[name] = fallback.success ? fallback.data : env[name];
  }
  return out as z.output<S>;
}

// ---- groups ------------------------------------------------------------------------------

/**
 * The roles to run: a comma-separated list, `all`, or nothing (every role).
 * @param spec - FHIR_SYNC_ROLES or the --roles flag.
 * @returns distinct roles in a fixed order.
 * @throws API_ERR_CONFIG for an unknown role or an empty list.
 */
export function parseRoles(spec: string | undefined): ServiceRole[] {
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

function apiGroup(env: Env, problems: string[]): ApiEnv {
  const v = parseVars(API_VARS, env, problems);
  const max = v.API_RATE_LIMIT_MAX;
  const trust = v.API_TRUST_PROXY;
  return Object.freeze({
    host: v.API_HOST,
    port: v.API_PORT ?? v.PORT,
    bodyLimit: v.API_BODY_LIMIT,
    rateLimit: max === 0 ? false : Object.freeze({ max, timeWindowMs: v.API_RATE_LIMIT_WINDOW_MS }),
    trustProxy: trust === undefined || trust === 'false' ? false : trust === 'true' ? true : trust,
    docs: v.API_DOCS === 'on' || v.API_DOCS === 'true',
    readyTimeoutMs: v.API_READY_TIMEOUT_MS,
    requestTimeoutMs: v.API_REQUEST_TIMEOUT_MS,
    redisCommandTimeoutMs: v.REDIS_COMMAND_TIMEOUT_MS,
    rulesFile: v.RULES_FILE,
    rulesVersionsDir: v.RULES_VERSIONS_DIR,
    rulesWatchMs: v.RULES_WATCH_MS,
    rulesApproval: v.RULES_APPROVAL,
  });
}

/** The entries of API key text, as src/api/auth parses them (comments and blanks dropped). */
export function apiKeySpecs(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0 && !s.startsWith('#'));
}

function readText(path: string, read: NonNullable<EnvOptions['readFile']>): string {
  const content = read(path);
  return typeof content === 'string' ? content : Buffer.from(content).toString('utf8');
}

/**
 * Reads the auth variables: API_KEYS, API_KEYS_FILE and AUTH_JWT_*.
 * @param env - the environment.
 * @param options - file reader.
 * @returns the frozen auth settings (key entries are parsed by src/api/auth).
 * @throws API_ERR_AUTH_CONFIG with every problem, including "no auth method".
 */
export function parseAuthEnv(env: Env, options: Pick<EnvOptions, 'readFile'> = {}): AuthEnv {
  const problems: string[] = [];
  const auth = authGroup(env, problems, options.readFile ?? readFileSync);
  if (problems.length > 0) {
    throw API_ERR_AUTH_CONFIG.createWith({ problems }, [problems.join('; ')]);
  }
  return auth;
}

function authGroup(env: Env, problems: string[], read: NonNullable<EnvOptions['readFile']>): AuthEnv {
  const before = problems.length;
  const apiKeys: ApiKeysText[] = [{ source: 'API_KEYS', text: env.API_KEYS ?? '' }];
  const file = env.API_KEYS_FILE;
  if (file !== undefined && file !== '') {
    try {
      apiKeys.push({ source: file, text: readText(file, read) });
    } catch {
      // The path is configuration, not a secret; the content never appears.
      problems.push(API_ERR_AUTH_CONFIG.create(`API_KEYS_FILE ${file} cannot be read`).message);
    }
  }
  const jwt = jwtGroup(env, problems);
  const entries = apiKeys.reduce((n, k) => n + apiKeySpecs(k.text).length, 0);
  if (entries === 0 && !jwt && problems.length === before) {
    problems.push('no auth method: set API_KEYS, API_KEYS_FILE or AUTH_JWT_ISSUER + AUTH_JWT_JWKS_URL');
  }
  return Object.freeze({ apiKeys: Object.freeze(apiKeys.map((k) => Object.freeze(k))), ...(jwt ? { jwt } : {}) });
}

function jwtGroup(env: Env, problems: string[]): JwtEnv | undefined {
  const issuer = env.AUTH_JWT_ISSUER ?? '';
  const jwksUrl = env.AUTH_JWT_JWKS_URL ?? '';
  if (issuer === '' && jwksUrl === '') {
    return undefined;
  }
  if (issuer === '' || jwksUrl === '') {
    problems.push('AUTH_JWT_ISSUER and AUTH_JWT_JWKS_URL go together');
    return undefined;
  }
  const v = parseVars(JWT_VARS, env, problems);
  return Object.freeze({
    issuer,
    jwksUrl,
    ...(v.AUTH_JWT_AUDIENCE !== undefined ? { audience: v.AUTH_JWT_AUDIENCE } : {}),
    rolesClaim: v.AUTH_JWT_ROLES_CLAIM,
    algorithms: Object.freeze(v.AUTH_JWT_ALGORITHMS),
    clockToleranceSeconds: v.AUTH_JWT_CLOCK_TOLERANCE,
  });
}

/**
 * Reads the de-identification key variables: DEID_HMAC_KEY or DEID_HMAC_KEY_FILE (not both),
 * and DEID_HMAC_KEY_ID. Whitespace-only values count as unset.
 * @param env - the environment.
 * @param options - file reader.
 * @returns the key text and id (decoded and checked by src/anonymizer).
 * @throws AppError DEID_ERR_KEY_MISSING, DEID_ERR_KEY_INVALID (both set) or DEID_ERR_KEY_FILE;
 * never with the key in the message.
 */
export function parseDeidKeyEnv(env: Env, options: Pick<EnvOptions, 'readFile'> = {}): DeidKeyEnv {
  const inline = nonBlank(env.DEID_HMAC_KEY);
  const file = nonBlank(env.DEID_HMAC_KEY_FILE);
  if (inline !== undefined && file !== undefined) {
    throw DEID_ERR_KEY_INVALID.create('set DEID_HMAC_KEY or DEID_HMAC_KEY_FILE, not both');
  }
  let text: string;
  if (inline !== undefined) {
    text = inline;
  } else if (file !== undefined) {
    try {
      text = readText(file, options.readFile ?? readFileSync).replace(/\r?\n$/, '');
    } catch (err) {
      // Only the error code: a reader's message could quote what it read.
      const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : 'read error';
      throw DEID_ERR_KEY_FILE.createWith({}, [code], { cause: err });
    }
  } else {
    throw DEID_ERR_KEY_MISSING.create();
  }
  const id = nonBlank(env.DEID_HMAC_KEY_ID);
  return Object.freeze({ text, ...(id !== undefined ? { id } : {}) });
}

function nonBlank(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v;
}

/**
 * Push wake-up: FHIR_SYNC_PUBLIC_URL turns it on, and then FHIR_SYNC_PUSH_SECRET (which wins)
 * or FHIR_SYNC_PUSH_SECRET_FILE must give at least 32 bytes. Without a URL: polling only.
 */
function pushGroup(env: Env, problems: string[], read: NonNullable<EnvOptions['readFile']>): PushEnv | undefined {
  const url = env.FHIR_SYNC_PUBLIC_URL ?? '';
  if (url === '') {
    return undefined;
  }
  if (!/^https?:\/\/[^\s/]+/.test(url)) {
    problems.push('FHIR_SYNC_PUBLIC_URL must be an http(s) URL');
  }
  const file = env.FHIR_SYNC_PUSH_SECRET_FILE ?? '';
  let secret = env.FHIR_SYNC_PUSH_SECRET ?? '';
  if (secret === '' && file !== '') {
    try {
      secret = readText(file, read).trim();
    } catch {
      problems.push('FHIR_SYNC_PUSH_SECRET_FILE cannot be read');
    }
  }
  if (Buffer.byteLength(secret) < 32) {
    problems.push('FHIR_SYNC_PUSH_SECRET (or _FILE) must hold at least 32 bytes when FHIR_SYNC_PUBLIC_URL is set');
  }
  return Object.freeze({ publicUrl: url, secret: Buffer.from(secret, 'utf8') });
}

/**
 * Runs a parser that throws coded errors and lists them as problems: its `details.problems`,
 * else `CODE: message`.
 * @param problems - where problems go.
 * @param fn - the parser.
 * @returns its result, or undefined when it threw.
 */
export function collectProblems<T>(problems: string[], fn: () => T): T | undefined {
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

// ---- the whole environment ---------------------------------------------------------------

/** What checkEnv found: settings (with defaults in place of bad values) and every problem. */
export interface EnvCheck {
  readonly settings: ServiceEnv;
  readonly problems: readonly string[];
}

/**
 * Checks the whole environment without throwing for bad values, so a caller that parses
 * more (API key entries, the key's encoding) can list its problems with these in one error.
 * Settings are only to be used when there are no problems.
 * @param env - the environment.
 * @param options - the --roles flag, the secret groups a command needs, file reader.
 * @returns settings and problems.
 * @throws API_ERR_CONFIG for unknown roles (before anything else, as the roles decide the rest).
 */
export function checkEnv(env: Env, options: EnvOptions = {}): EnvCheck {
  const roles = options.needs ? [] : parseRoles(options.roles ?? env.FHIR_SYNC_ROLES);
  const read = options.readFile ?? readFileSync;
  const problems: string[] = [];
  const v = parseVars(PROCESS_VARS, env, problems);
  const api = apiGroup(env, problems);
  const needs = options.needs ?? {
    auth: roles.includes(ServiceRole.api) || v.METRICS_PORT !== undefined,
    deidKey: roles.includes(ServiceRole.worker),
  };
  const auth = needs.auth ? authGroup(env, problems, read) : undefined;
  const deidKey = needs.deidKey ? collectProblems(problems, () => parseDeidKeyEnv(env, { readFile: read })) : undefined;
  const push = pushGroup(env, problems, read);
  const settings: ServiceEnv = {
    roles: Object.freeze(roles),
    logLevel: v.LOG_LEVEL,
    instancesFile: v.FHIR_SYNC_INSTANCES,
    profilesDir: v.FHIR_SYNC_PROFILES_DIR,
    redisUrl: v.REDIS_URL,
    ...(v.FHIR_SYNC_REDIS_PREFIX !== undefined ? { redisPrefix: v.FHIR_SYNC_REDIS_PREFIX } : {}),
    ...(v.METRICS_PORT !== undefined ? { metricsPort: v.METRICS_PORT } : {}),
    ...(v.WORKER_CONCURRENCY !== undefined ? { workerConcurrency: v.WORKER_CONCURRENCY } : {}),
    ...(v.SYNC_CHANNEL_CONCURRENCY !== undefined ? { channelConcurrency: v.SYNC_CHANNEL_CONCURRENCY } : {}),
    ...(v.SYNC_GLOBAL_CONCURRENCY !== undefined ? { globalConcurrency: v.SYNC_GLOBAL_CONCURRENCY } : {}),
    shutdownTimeoutMs: v.SHUTDOWN_TIMEOUT_MS,
    net: Object.freeze({
      ...(v.FHIR_SYNC_NET_ALLOW !== undefined ? { allow: v.FHIR_SYNC_NET_ALLOW } : {}),
      ...(v.FHIR_SYNC_NET_DENY !== undefined ? { deny: v.FHIR_SYNC_NET_DENY } : {}),
      caDir: v.FHIR_SYNC_CA_DIR,
    }),
    api,
    ...(auth ? { auth } : {}),
    ...(deidKey ? { deidKey } : {}),
    ...(push ? { push } : {}),
  };
  return Object.freeze({ settings: Object.freeze(settings), problems: Object.freeze(problems) });
}

/**
 * Parses the whole environment once.
 * @param env - the environment.
 * @param options - the --roles flag, the secret groups a command needs, file reader.
 * @returns the frozen settings.
 * @throws API_ERR_CONFIG with `details.problems` listing every bad variable by name.
 */
export function parseEnv(env: Env, options: EnvOptions = {}): ServiceEnv {
  const { settings, problems } = checkEnv(env, options);
  throwProblems(problems);
  return settings;
}

/**
 * Throws the one configuration error when there are problems.
 * @param problems - every problem found, env and content alike.
 * @throws API_ERR_CONFIG with `details.problems`.
 */
export function throwProblems(problems: readonly string[]): void {
  if (problems.length > 0) {
    throw API_ERR_CONFIG.createWith({ problems: [...problems] }, [problems.join('; ')]);
  }
}
