/**
 * Turns a bearer token into a Principal. A token shaped like a JWT goes to the JWKS
 * verifier when one is configured; anything else is looked up among the static API keys.
 * Failures throw API_ERR_INVALID_TOKEN with a short reason code (never the token).
 */
import { timingSafeEqual } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, errors as joseErrors } from 'jose';
import type { JWTPayload } from 'jose';
import { API_ERR_INVALID_TOKEN } from '../../shared/errors/index.ts';
import { Role } from '../types.ts';
import type { Principal } from '../types.ts';
import type { ApiKeyEntry, AuthConfig, JwtConfig } from './config.ts';
import { digestKey } from './config.ts';

/** Verifies one bearer token. */
export type TokenVerifier = (token: string) => Promise<Principal>;

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const ROLE_NAMES: ReadonlySet<string> = new Set(Object.values(Role));

/**
 * Builds the verifier for a configuration. The JWKS is fetched lazily and cached by jose.
 * @param config - the auth configuration.
 * @returns a function from token to principal.
 */
export function createTokenVerifier(config: AuthConfig): TokenVerifier {
  const jwt = config.jwt ? createJwtVerifier(config.jwt) : undefined;
  return (token: string): Promise<Principal> => {
    if (jwt && JWT_SHAPE.test(token)) {
      return jwt(token);
    }
    return Promise.resolve(verifyApiKey(config.apiKeys, token));
  };
}

/**
 * Finds the API key matching a token. Every entry is compared (no early exit) with
 * timingSafeEqual over equal-length SHA-256 digests, so timing says nothing about which
 * key, or how much of one, matched.
 * @param keys - the configured keys.
 * @param token - the presented token.
 * @returns the principal of the matching key.
 * @throws API_ERR_INVALID_TOKEN when no key matches.
 */
export function verifyApiKey(keys: readonly ApiKeyEntry[], token: string): Principal {
  const digest = digestKey(token);
  let match: ApiKeyEntry | undefined;
  for (const key of keys) {
    if (timingSafeEqual(key.digest, digest) && match === undefined) {
      match = key;
    }
  }
  if (!match) {
    throw API_ERR_INVALID_TOKEN.create('unknown key');
  }
  return { subject: match.name, roles: match.roles, via: 'api-key' };
}

function createJwtVerifier(config: JwtConfig): TokenVerifier {
  const jwks = createRemoteJWKSet(new URL(config.jwksUrl));
  return async (token: string): Promise<Principal> => {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        issuer: config.issuer,
        ...(config.audience !== undefined ? { audience: config.audience } : {}),
        algorithms: [...config.algorithms],
        clockTolerance: config.clockToleranceSeconds,
        // A token without `exp` would be valid forever once leaked (issue 10): refuse it.
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      throw API_ERR_INVALID_TOKEN.createWith({}, [joseReason(err)], { cause: err });
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') {
      throw API_ERR_INVALID_TOKEN.create('no sub claim');
    }
    return { subject: payload.sub, roles: rolesFromClaim(payload, config.rolesClaim), via: 'jwt' };
  };
}

/** jose error codes are fixed strings (`ERR_JWT_EXPIRED`, ...), safe to show. */
function joseReason(err: unknown): string {
  if (err instanceof joseErrors.JOSEError) {
    return err.code;
  }
  return 'verification failed';
}

/**
 * Reads the roles from a (possibly nested) claim; unknown role names are ignored.
 * @param payload - verified JWT claims.
 * @param claim - claim name or dotted path.
 * @returns the known roles in the claim.
 */
export function rolesFromClaim(payload: JWTPayload, claim: string): Role[] {
  let value: unknown = payload;
  for (const part of claim.split('.')) {
    value = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[part] : undefined;
  }
  const names = Array.isArray(value) ? value : typeof value === 'string' ? value.split(' ') : [];
  return [...new Set(names.filter((n): n is Role => typeof n === 'string' && ROLE_NAMES.has(n)))];
}
