/**
 * Auth configuration: static API keys and/or JWTs from an OAuth2 issuer. Parsed once from
 * the environment, every problem reported with its place (entry number and key name, never
 * key material), then frozen. Raw keys are hashed at load, so the process holds only
 * SHA-256 digests and every comparison has the same length and runs in constant time.
 *
 * API key format (API_KEYS, or one entry per line in the file named by API_KEYS_FILE;
 * entries separated by commas or newlines, `#` starts a comment line in the file):
 *
 *   name:role[+role...]:key
 *
 * where `key` is either the raw key (at least 24 characters) or `sha256:<64 hex digits>`,
 * the SHA-256 of the raw key (`printf %s "$KEY" | sha256sum`). Example:
 *   API_KEYS="ops:operator:sha256:9f86d0...,audit:viewer+compliance:s3cr3t-long-random-string"
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { API_ERR_AUTH_CONFIG } from '../../shared/errors/index.ts';
import { Role } from '../types.ts';

/** One static API key, reduced to its name, roles and the SHA-256 of the key. */
export interface ApiKeyEntry {
  readonly name: string;
  readonly roles: readonly Role[];
  /** SHA-256 of the raw key, 32 bytes. */
  readonly digest: Buffer;
}

/** OAuth2 / OIDC access tokens verified against an issuer's JWKS. */
export interface JwtConfig {
  /** Expected `iss` claim. */
  readonly issuer: string;
  /** Where the issuer publishes its signing keys. */
  readonly jwksUrl: string;
  /** Expected `aud` claim; not checked when absent. */
  readonly audience?: string;
  /**
   * Claim holding the roles: an array of strings or a space-separated string; a dotted
   * path reaches nested claims (Keycloak: `realm_access.roles`).
   * @defaultValue 'roles'
   */
  readonly rolesClaim: string;
  /**
   * Accepted signature algorithms.
   * @defaultValue ['RS256', 'PS256', 'ES256', 'EdDSA']
   */
  readonly algorithms: readonly string[];
  /**
   * Allowed clock skew in seconds for exp/nbf.
   * @defaultValue 30
   */
  readonly clockToleranceSeconds: number;
}

/** How callers authenticate; at least one of the two must be set. */
export interface AuthConfig {
  readonly apiKeys: readonly ApiKeyEntry[];
  readonly jwt?: JwtConfig;
}

const ROLE_NAMES: ReadonlySet<string> = new Set(Object.values(Role));
const NAME = /^[A-Za-z0-9._-]{1,64}$/;
const SHA256_SPEC = /^sha256:([0-9a-fA-F]{64})$/;
/** Shorter raw keys are guessable; hashed keys are taken as given. */
export const MIN_RAW_KEY_LENGTH = 24;
const DEFAULT_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;

/**
 * SHA-256 of a raw key.
 * @param raw - the key as a client sends it.
 * @returns 32-byte digest.
 */
export function digestKey(raw: string): Buffer {
  return createHash('sha256').update(raw, 'utf8').digest();
}

/**
 * Parses API key entries (the API_KEYS format above).
 * @param text - entries separated by commas or newlines.
 * @param source - where the text came from, for messages (`API_KEYS`, a file path).
 * @returns the entries.
 * @throws API_ERR_AUTH_CONFIG listing every bad entry (by number and name, never the key).
 */
export function parseApiKeys(text: string, source: string): ApiKeyEntry[] {
  const problems: string[] = [];
  const entries: ApiKeyEntry[] = [];
  const specs = text
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0 && !s.startsWith('#'));
  specs.forEach((spec, i) => {
    const entry = parseEntry(spec, `${source} entry ${i + 1}`, problems);
    if (entry) {
      entries.push(entry);
    }
  });
  checkDuplicates(entries, source, problems);
  if (problems.length > 0) {
    throw API_ERR_AUTH_CONFIG.createWith({ location: source, problems }, [problems.join('; ')]);
  }
  return entries;
}

function parseEntry(spec: string, where: string, problems: string[]): ApiKeyEntry | undefined {
  const first = spec.indexOf(':');
  const second = first < 0 ? -1 : spec.indexOf(':', first + 1);
  if (second < 0) {
    problems.push(`${where}: expected name:role:key`);
    return undefined;
  }
  const name = spec.slice(0, first);
  const roleSpec = spec.slice(first + 1, second);
  const keySpec = spec.slice(second + 1);
  const before = problems.length;
  if (!NAME.test(name)) {
    problems.push(`${where}: name must be 1-64 of A-Z a-z 0-9 . _ -`);
  }
  const label = NAME.test(name) ? `${where} (${name})` : where;
  const roles = roleSpec.split('+').filter((r) => r.length > 0);
  if (roles.length === 0) {
    problems.push(`${label}: no role`);
  }
  for (const role of roles) {
    if (!ROLE_NAMES.has(role)) {
      problems.push(`${label}: unknown role "${role.slice(0, 32)}" (operator, compliance, viewer)`);
    }
  }
  const digest = keyDigest(keySpec, label, problems);
  if (problems.length > before || !digest) {
    return undefined;
  }
  return Object.freeze({ name, roles: Object.freeze([...new Set(roles)] as Role[]), digest });
}

function keyDigest(keySpec: string, label: string, problems: string[]): Buffer | undefined {
  const hashed = SHA256_SPEC.exec(keySpec);
  if (hashed?.[1] !== undefined) {
    return Buffer.from(hashed[1], 'hex');
  }
  if (keySpec.startsWith('sha256:')) {
    problems.push(`${label}: sha256: must be followed by 64 hex digits`);
    return undefined;
  }
  if (keySpec.length < MIN_RAW_KEY_LENGTH) {
    problems.push(`${label}: raw key shorter than ${MIN_RAW_KEY_LENGTH} characters`);
    return undefined;
  }
  return digestKey(keySpec);
}

function checkDuplicates(entries: readonly ApiKeyEntry[], source: string, problems: string[]): void {
  const names = new Set<string>();
  const digests = new Set<string>();
  for (const e of entries) {
    if (names.has(e.name)) {
      problems.push(`${source}: name ${e.name} appears twice`);
    }
    const hex = e.digest.toString('hex');
    if (digests.has(hex)) {
      problems.push(`${source}: key of ${e.name} is also used by another entry`);
    }
    names.add(e.name);
    digests.add(hex);
  }
}

/**
 * Reads the auth configuration from the environment:
 * API_KEYS, API_KEYS_FILE, AUTH_JWT_ISSUER, AUTH_JWT_JWKS_URL, AUTH_JWT_AUDIENCE,
 * AUTH_JWT_ROLES_CLAIM, AUTH_JWT_ALGORITHMS, AUTH_JWT_CLOCK_TOLERANCE.
 * @param env - the environment (process.env).
 * @returns the frozen configuration.
 * @throws API_ERR_AUTH_CONFIG with every problem, including "no method configured".
 */
export function authConfigFromEnv(env: Readonly<Record<string, string | undefined>>): AuthConfig {
  const problems: string[] = [];
  const apiKeys: ApiKeyEntry[] = [];
  collect(problems, () => apiKeys.push(...parseApiKeys(env.API_KEYS ?? '', 'API_KEYS')));
  const file = env.API_KEYS_FILE;
  if (file !== undefined && file !== '') {
    collect(problems, () => apiKeys.push(...parseApiKeys(readKeysFile(file), file)));
  }
  const jwt = jwtFromEnv(env, problems);
  if (apiKeys.length === 0 && !jwt && problems.length === 0) {
    problems.push('no auth method: set API_KEYS, API_KEYS_FILE or AUTH_JWT_ISSUER + AUTH_JWT_JWKS_URL');
  }
  if (problems.length > 0) {
    throw API_ERR_AUTH_CONFIG.createWith({ problems }, [problems.join('; ')]);
  }
  return Object.freeze({ apiKeys: Object.freeze(apiKeys), ...(jwt ? { jwt } : {}) });
}

function readKeysFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw API_ERR_AUTH_CONFIG.createWith({ location: file }, [`API_KEYS_FILE ${file} cannot be read`], {
      cause: err,
    });
  }
}

function collect(problems: string[], fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (API_ERR_AUTH_CONFIG.is(err)) {
      const more = err.details.problems;
      problems.push(...(Array.isArray(more) ? more.map(String) : [err.message]));
      return;
    }
    throw err;
  }
}

function jwtFromEnv(env: Readonly<Record<string, string | undefined>>, problems: string[]): JwtConfig | undefined {
  const issuer = env.AUTH_JWT_ISSUER ?? '';
  const jwksUrl = env.AUTH_JWT_JWKS_URL ?? '';
  if (issuer === '' && jwksUrl === '') {
    return undefined;
  }
  if (issuer === '' || jwksUrl === '') {
    problems.push('AUTH_JWT_ISSUER and AUTH_JWT_JWKS_URL go together');
    return undefined;
  }
  if (!/^https?:\/\//.test(jwksUrl) || !URL.canParse(jwksUrl)) {
    problems.push('AUTH_JWT_JWKS_URL must be an http(s) URL');
  }
  const tolerance = Number(env.AUTH_JWT_CLOCK_TOLERANCE ?? '30');
  if (!Number.isInteger(tolerance) || tolerance < 0 || tolerance > 600) {
    problems.push('AUTH_JWT_CLOCK_TOLERANCE must be an integer number of seconds, 0-600');
  }
  const algorithms = (env.AUTH_JWT_ALGORITHMS ?? DEFAULT_ALGORITHMS.join(','))
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a.length > 0);
  if (algorithms.some((a) => a === 'none' || a.startsWith('HS'))) {
    problems.push('AUTH_JWT_ALGORITHMS: only asymmetric algorithms are accepted');
  }
  const audience = env.AUTH_JWT_AUDIENCE;
  return Object.freeze({
    issuer,
    jwksUrl,
    ...(audience !== undefined && audience !== '' ? { audience } : {}),
    rolesClaim: env.AUTH_JWT_ROLES_CLAIM ?? 'roles',
    algorithms: Object.freeze(algorithms),
    clockToleranceSeconds: tolerance,
  });
}
