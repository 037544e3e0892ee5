/**
 * The environment's one owner: every variable checked at once, problems named by variable and
 * never carrying a secret, `_FILE` secrets, defaults, and a frozen result.
 */
import { describe, expect, it } from 'vitest';
import { checkEnv, parseAuthEnv, parseDeidKeyEnv, parseEnv } from '../../src/shared/env.ts';
import type { Env, EnvOptions } from '../../src/shared/env.ts';
import type { AppError } from '../../src/shared/errors/index.ts';

const KEY = 'a-deid-key-of-at-least-thirty-two-bytes';
const API_KEY = 'ops:operator:an-api-key-long-enough-0123456789';
const PUSH = 'a-push-secret-of-at-least-thirty-two-bytes!';
const NONE = { needs: { auth: false, deidKey: false } } as const;

function thrown(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    return err as AppError;
  }
  throw new Error('expected a throw');
}

/** A reader of `*_FILE` secrets over an in-memory map. */
function files(map: Record<string, string>): Pick<EnvOptions, 'readFile'> {
  return {
    readFile: (path) => {
      const text = map[path];
      if (text === undefined) {
        throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
      }
      return text;
    },
  };
}

describe('defaults', () => {
  it('gives every default for an empty environment of a process without secrets', () => {
    const s = parseEnv({}, NONE);
    expect(s).toMatchObject({
      roles: [],
      logLevel: 'info',
      instancesFile: 'config/instances.yaml',
      profilesDir: 'data/server-profiles',
      redisUrl: 'redis://127.0.0.1:6379',
      shutdownTimeoutMs: 30_000,
      net: { caDir: 'config/ca' },
      api: {
        host: '0.0.0.0',
        port: 8080,
        bodyLimit: 1_048_576,
        rateLimit: { max: 600, timeWindowMs: 60_000 },
        trustProxy: false,
        docs: true,
        readyTimeoutMs: 3000,
        requestTimeoutMs: 30_000,
        redisCommandTimeoutMs: 3000,
        rulesFile: 'config/anonymization.yaml',
        rulesVersionsDir: 'data/rules-versions',
        rulesWatchMs: 5000,
        rulesApproval: 'two-step',
      },
    });
    for (const absent of ['redisPrefix', 'metricsPort', 'workerConcurrency', 'auth', 'deidKey', 'push'] as const) {
      expect(s[absent]).toBeUndefined();
    }
  });

  it('treats a blank variable as unset where the service always did', () => {
    const s = parseEnv({ PORT: '', API_HOST: '', WORKER_CONCURRENCY: '', FHIR_SYNC_INSTANCES: '' }, NONE);
    expect([s.api.port, s.api.host, s.workerConcurrency, s.instancesFile]).toEqual([
      8080,
      '0.0.0.0',
      undefined,
      'config/instances.yaml',
    ]);
  });

  it('reads values, API_PORT over PORT, and rate limit 0 as off', () => {
    const s = parseEnv(
      { API_PORT: '9000', PORT: '7000', API_RATE_LIMIT_MAX: '0', API_TRUST_PROXY: '10.0.0.0/8', API_DOCS: 'off' },
      NONE,
    );
    expect([s.api.port, s.api.rateLimit, s.api.trustProxy, s.api.docs]).toEqual([9000, false, '10.0.0.0/8', false]);
  });

  it('returns a deeply frozen object', () => {
    const s = parseEnv({ DEID_HMAC_KEY: KEY, API_KEYS: API_KEY });
    expect(Object.isFrozen(s)).toBe(true);
    expect(Object.isFrozen(s.api)).toBe(true);
    expect(Object.isFrozen(s.net)).toBe(true);
    expect(Object.isFrozen(s.roles)).toBe(true);
    expect(Object.isFrozen(s.auth?.apiKeys)).toBe(true);
    expect(Object.isFrozen(s.deidKey)).toBe(true);
  });
});

describe('every problem at once', () => {
  it('lists every bad variable by name in one API_ERR_CONFIG', () => {
    const err = thrown(() =>
      parseEnv({
        PORT: 'eighty',
        METRICS_PORT: '70000',
        SHUTDOWN_TIMEOUT_MS: '0',
        WORKER_CONCURRENCY: '65',
        SYNC_CHANNEL_CONCURRENCY: '1.5',
        API_DOCS: 'maybe',
        RULES_APPROVAL: 'none',
        API_BODY_LIMIT: '10',
        AUTH_JWT_ISSUER: 'https://idp.example',
        FHIR_SYNC_PUBLIC_URL: 'ftp://x',
      }),
    );
    expect(err.code).toBe('API_ERR_CONFIG');
    expect(err.details.problems).toEqual(
      expect.arrayContaining([
        'PORT must be an integer from 0 to 65535',
        'METRICS_PORT must be a port number',
        'SHUTDOWN_TIMEOUT_MS must be a positive integer',
        'WORKER_CONCURRENCY must be an integer from 1 to 64',
        'SYNC_CHANNEL_CONCURRENCY must be an integer from 1 to 32',
        'API_DOCS must be on or off',
        'RULES_APPROVAL must be one-step or two-step',
        'API_BODY_LIMIT must be an integer from 1024 to 67108864',
        'AUTH_JWT_ISSUER and AUTH_JWT_JWKS_URL go together',
        expect.stringMatching(/^DEID_ERR_KEY_MISSING: /),
        'FHIR_SYNC_PUBLIC_URL must be an http(s) URL',
        'FHIR_SYNC_PUSH_SECRET (or _FILE) must hold at least 32 bytes when FHIR_SYNC_PUBLIC_URL is set',
      ]),
    );
    expect(err.details.problems).toHaveLength(12);
  });

  it('refuses an unknown role before anything else', () => {
    expect(thrown(() => parseEnv({ FHIR_SYNC_ROLES: 'api,cron' })).code).toBe('API_ERR_CONFIG');
    expect(thrown(() => parseEnv({}, { roles: 'cron' })).code).toBe('API_ERR_CONFIG');
  });

  it('reads only the secrets the roles need', () => {
    const scheduler = parseEnv({ FHIR_SYNC_ROLES: 'scheduler', DEID_HMAC_KEY_FILE: '/missing' });
    expect([scheduler.roles, scheduler.auth, scheduler.deidKey]).toEqual([['scheduler'], undefined, undefined]);
    expect(checkEnv({ FHIR_SYNC_ROLES: 'worker' }).problems).toEqual([expect.stringMatching(/^DEID_ERR_KEY_MISSING/)]);
    expect(checkEnv({ FHIR_SYNC_ROLES: 'api' }).problems).toEqual([expect.stringMatching(/^no auth method/)]);
    expect(checkEnv({ FHIR_SYNC_ROLES: 'worker', METRICS_PORT: '9464', DEID_HMAC_KEY: KEY }).problems).toEqual([
      expect.stringMatching(/^no auth method/),
    ]);
  });
});

describe('secrets', () => {
  const leaky: Env = {
    FHIR_SYNC_ROLES: 'api,worker',
    DEID_HMAC_KEY: KEY,
    DEID_HMAC_KEY_FILE: '/run/secrets/deid',
    API_KEYS: `${API_KEY},broken`,
    FHIR_SYNC_PUBLIC_URL: 'https://sync.example',
    FHIR_SYNC_PUSH_SECRET: 'short-push',
    AUTH_JWT_ISSUER: 'https://idp.example',
    AUTH_JWT_JWKS_URL: 'not a url',
  };

  it('never puts a secret value in a message', () => {
    const err = thrown(() => parseEnv(leaky));
    const text = `${err.message}\n${JSON.stringify(err.details)}`;
    for (const secret of [KEY, 'an-api-key-long-enough', 'short-push']) {
      expect(text).not.toContain(secret);
    }
    expect(err.details.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^DEID_ERR_KEY_INVALID: .*not both/),
        'AUTH_JWT_JWKS_URL must be an http(s) URL',
      ]),
    );
  });

  it('reads DEID_HMAC_KEY_FILE (final newline dropped) and reports a missing file by code only', () => {
    const io = files({ '/run/secrets/deid': `${KEY}\n` });
    expect(parseDeidKeyEnv({ DEID_HMAC_KEY_FILE: '/run/secrets/deid', DEID_HMAC_KEY_ID: 'k1' }, io)).toEqual({
      text: KEY,
      id: 'k1',
    });
    const err = thrown(() => parseDeidKeyEnv({ DEID_HMAC_KEY_FILE: '/nope' }, io));
    expect(err.code).toBe('DEID_ERR_KEY_FILE');
    expect(err.message).toContain('ENOENT');
    expect(err.message).not.toContain('/nope');
  });

  it('reads API_KEYS_FILE beside API_KEYS, each under its own name', () => {
    const io = files({ '/run/secrets/keys': '# dashboard\ndash:viewer:dashboard-key-0123456789abc\n' });
    const auth = parseAuthEnv({ API_KEYS: API_KEY, API_KEYS_FILE: '/run/secrets/keys' }, io);
    expect(auth.apiKeys.map((k) => k.source)).toEqual(['API_KEYS', '/run/secrets/keys']);
    const err = thrown(() => parseAuthEnv({ API_KEYS_FILE: '/gone' }, io));
    expect(err.code).toBe('API_ERR_AUTH_CONFIG');
    expect(err.details.problems).toEqual(['Auth configuration is not valid: API_KEYS_FILE /gone cannot be read']);
  });

  it('takes FHIR_SYNC_PUSH_SECRET_FILE (trimmed) unless FHIR_SYNC_PUSH_SECRET is set', () => {
    const io = files({ '/run/secrets/push': `  ${PUSH}\n` });
    const env = { FHIR_SYNC_PUBLIC_URL: 'https://sync.example', FHIR_SYNC_PUSH_SECRET_FILE: '/run/secrets/push' };
    const fromFile = parseEnv(env, { ...NONE, ...io }).push;
    expect(Buffer.from(fromFile?.secret ?? []).toString()).toBe(PUSH);
    const inline = parseEnv({ ...env, FHIR_SYNC_PUSH_SECRET: `${PUSH}x` }, { ...NONE, ...io }).push;
    expect(Buffer.from(inline?.secret ?? []).toString()).toBe(`${PUSH}x`);
    expect(
      thrown(() => parseEnv({ ...env, FHIR_SYNC_PUSH_SECRET_FILE: '/gone' }, { ...NONE, ...io })).details.problems,
    ).toContain('FHIR_SYNC_PUSH_SECRET_FILE cannot be read');
  });
});

describe('JWT settings', () => {
  it('gives the defaults once issuer and JWKS URL are set', () => {
    const auth = parseAuthEnv({ AUTH_JWT_ISSUER: 'https://idp.example', AUTH_JWT_JWKS_URL: 'https://idp.example/k' });
    expect(auth.jwt).toEqual({
      issuer: 'https://idp.example',
      jwksUrl: 'https://idp.example/k',
      rolesClaim: 'roles',
      algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      clockToleranceSeconds: 30,
    });
  });
});
