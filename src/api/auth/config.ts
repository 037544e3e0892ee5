/**
 * Auth configuration: static API keys and/or JWTs from an OAuth2 issuer. Parsed once at
 * start, every problem reported with its place (entry number and key name, never
 * key material), then frozen. Raw keys are hashed at load, so the process holds only
 * SHA-256 digests and every comparison has the same length and runs in constant time.
 *
 * The variables are read by src/shared/env.ts; this module parses the key entries.
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
import { API_ERR_AUTH_CONFIG } from '../../shared/errors/index.ts';
import { apiKeySpecs } from '../../shared/env.ts';
import type { AuthEnv, JwtEnv } from '../../shared/env.ts';
import { Role } from '../types.ts';

/** One static API key, reduced to its name, roles and the SHA-256 of the key. */
export interface ApiKeyEntry {
  readonly name: string;
  readonly roles: readonly Role[];
  /** SHA-256 of the raw key, 32 bytes. */
  readonly digest: Buffer;
}

/** OAuth2 / OIDC access tokens verified against an issuer's JWKS (AUTH_JWT_*, see src/shared/env.ts). */
export type JwtConfig = JwtEnv;

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
  apiKeySpecs(text).forEach((spec, i) => {
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
 * Builds the auth configuration from the auth settings of the environment (src/shared/env.ts
 * reads the variables, checks the JWT settings and that some method is set).
 * @param settings - API key texts (API_KEYS, the API_KEYS_FILE content) and JWT settings.
 * @returns the frozen configuration.
 * @throws API_ERR_AUTH_CONFIG listing every bad key entry (by number and name, never the key).
 */
export function authConfig(settings: AuthEnv): AuthConfig {
  const problems: string[] = [];
  const apiKeys: ApiKeyEntry[] = [];
  for (const { source, text } of settings.apiKeys) {
    try {
      apiKeys.push(...parseApiKeys(text, source));
    } catch (err) {
      if (!API_ERR_AUTH_CONFIG.is(err)) {
        throw err;
      }
      const more = err.details.problems;
      problems.push(...(Array.isArray(more) ? more.map(String) : [err.message]));
    }
  }
  if (problems.length > 0) {
    throw API_ERR_AUTH_CONFIG.createWith({ problems }, [problems.join('; ')]);
  }
  return Object.freeze({ apiKeys: Object.freeze(apiKeys), ...(settings.jwt ? { jwt: settings.jwt } : {}) });
}
