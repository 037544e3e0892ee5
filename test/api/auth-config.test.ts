import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { authConfig, digestKey, parseApiKeys } from '../../src/api/index.ts';
import type { AuthConfig } from '../../src/api/index.ts';
import { parseAuthEnv } from '../../src/shared/env.ts';
import type { Env } from '../../src/shared/env.ts';
import type { AppError } from '../../src/shared/errors/index.ts';

/** The variables are read by the environment's owner, the key entries parsed by src/api/auth. */
function authConfigFromEnv(env: Env): AuthConfig {
  return authConfig(parseAuthEnv(env));
}

function thrown(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    return err as AppError;
  }
  throw new Error('expected a throw');
}

describe('API key configuration', () => {
  const raw = 'a-raw-key-that-is-long-enough-1';
  const hex = digestKey('another-long-enough-key-0002').toString('hex');

  it('parses raw and SHA-256 keys with one or more roles', () => {
    const keys = parseApiKeys(` ops:operator:${raw} ,\n audit:viewer+compliance:sha256:${hex}`, 'API_KEYS');
    expect(keys.map((k) => [k.name, k.roles, k.digest.toString('hex')])).toEqual([
      ['ops', ['operator'], digestKey(raw).toString('hex')],
      ['audit', ['viewer', 'compliance'], hex],
    ]);
  });

  it('reports every bad entry by number and name, never the key', () => {
    const secret = 'short-secret';
    const err = thrown(() =>
      parseApiKeys(
        `ok:operator:${raw},bad name:viewer:${raw}x,x:admin:${raw}y,y:viewer:${secret},z:viewer:sha256:abc,nokey`,
        'API_KEYS',
      ),
    );
    expect(err.code).toBe('API_ERR_AUTH_CONFIG');
    expect(err.details.problems).toEqual([
      'API_KEYS entry 2: name must be 1-64 of A-Z a-z 0-9 . _ -',
      'API_KEYS entry 3 (x): unknown role "admin" (operator, compliance, viewer)',
      'API_KEYS entry 4 (y): raw key shorter than 24 characters',
      'API_KEYS entry 5 (z): sha256: must be followed by 64 hex digits',
      'API_KEYS entry 6: expected name:role:key',
    ]);
    expect(err.message).not.toContain(secret);
    expect(err.message).not.toContain(raw);
  });

  it('refuses duplicate names and a key shared by two names', () => {
    const err = thrown(() => parseApiKeys(`a:viewer:${raw},a:operator:sha256:${hex},b:viewer:${raw}`, 'API_KEYS'));
    expect(err.details.problems).toEqual([
      'API_KEYS: name a appears twice',
      'API_KEYS: key of b is also used by another entry',
    ]);
  });
});

describe('auth configuration from the environment', () => {
  it('refuses to run with no auth method', () => {
    const err = thrown(() => authConfigFromEnv({}));
    expect(err.code).toBe('API_ERR_AUTH_CONFIG');
    expect(String(err.details.problems)).toContain('no auth method');
  });

  it('reads keys from API_KEYS and API_KEYS_FILE (comments allowed)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keys-'));
    const file = join(dir, 'keys');
    await writeFile(file, `# dashboard\ndash:viewer:dashboard-key-0123456789abc\n`);
    const config = authConfigFromEnv({ API_KEYS: 'ops:operator:operator-key-0123456789abcdef', API_KEYS_FILE: file });
    expect(config.apiKeys.map((k) => k.name)).toEqual(['ops', 'dash']);
    expect(config.jwt).toBeUndefined();
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads the JWT settings and checks them together', () => {
    const config = authConfigFromEnv({
      AUTH_JWT_ISSUER: 'https://idp.example/realms/x',
      AUTH_JWT_JWKS_URL: 'https://idp.example/realms/x/protocol/openid-connect/certs',
      AUTH_JWT_ROLES_CLAIM: 'realm_access.roles',
    });
    expect(config.jwt).toEqual({
      issuer: 'https://idp.example/realms/x',
      jwksUrl: 'https://idp.example/realms/x/protocol/openid-connect/certs',
      rolesClaim: 'realm_access.roles',
      algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      clockToleranceSeconds: 30,
    });
    const err = thrown(() =>
      authConfigFromEnv({
        AUTH_JWT_ISSUER: 'i',
        AUTH_JWT_JWKS_URL: 'ftp://x',
        AUTH_JWT_ALGORITHMS: 'HS256',
        AUTH_JWT_CLOCK_TOLERANCE: '-1',
      }),
    );
    expect(err.details.problems).toEqual([
      'AUTH_JWT_JWKS_URL must be an http(s) URL',
      'AUTH_JWT_CLOCK_TOLERANCE must be an integer number of seconds, 0-600',
      'AUTH_JWT_ALGORITHMS: only asymmetric algorithms are accepted',
    ]);
    expect(thrown(() => authConfigFromEnv({ AUTH_JWT_ISSUER: 'i' })).details.problems).toEqual([
      'AUTH_JWT_ISSUER and AUTH_JWT_JWKS_URL go together',
    ]);
  });
});
