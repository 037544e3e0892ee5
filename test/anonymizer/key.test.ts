/**
 * The HMAC key comes from the environment only; missing or unusable keys are coded startup
 * errors, and no message ever contains the key.
 */
import { describe, expect, it } from 'vitest';
import { deidKeyFrom } from '../../src/anonymizer/index.ts';
import type { DeidKey } from '../../src/anonymizer/index.ts';
import { parseDeidKeyEnv } from '../../src/shared/env.ts';
import type { Env, EnvOptions } from '../../src/shared/env.ts';
import { AppError } from '../../src/shared/errors/index.ts';

/** The variables are read by the environment's owner, the key is decoded by the anonymizer. */
function keyFromEnv(env: Env, options: Pick<EnvOptions, 'readFile'> = {}): DeidKey {
  return deidKeyFrom(parseDeidKeyEnv(env, options));
}

const SECRET = 'a-secret-of-at-least-thirty-two-bytes';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as Error).message).not.toContain(SECRET);
    return (err as AppError).code;
  }
  return 'no error';
}

describe('keyFromEnv', () => {
  it('reads DEID_HMAC_KEY and DEID_HMAC_KEY_ID', () => {
    const key = keyFromEnv({ DEID_HMAC_KEY: SECRET, DEID_HMAC_KEY_ID: 'k2026' });
    expect(key.id).toBe('k2026');
    expect(Buffer.from(key.secret).toString()).toBe(SECRET);
  });

  it('decodes base64: and hex: keys', () => {
    const bytes = Buffer.alloc(32, 7);
    expect(Buffer.from(keyFromEnv({ DEID_HMAC_KEY: 'base64:' + bytes.toString('base64') }).secret)).toEqual(bytes);
    expect(Buffer.from(keyFromEnv({ DEID_HMAC_KEY: 'hex:' + bytes.toString('hex') }).secret)).toEqual(bytes);
  });

  it('derives a stable, non-secret key id when none is given', () => {
    const a = keyFromEnv({ DEID_HMAC_KEY: SECRET });
    expect(a.id).toMatch(/^k-[0-9a-f]{12}$/);
    expect(keyFromEnv({ DEID_HMAC_KEY: SECRET }).id).toBe(a.id);
    expect(keyFromEnv({ DEID_HMAC_KEY: SECRET + 'x' }).id).not.toBe(a.id);
  });

  it('reads DEID_HMAC_KEY_FILE (trailing newline ignored)', () => {
    const key = keyFromEnv(
      { DEID_HMAC_KEY_FILE: '/run/secrets/deid' },
      { readFile: (p) => (p === '/run/secrets/deid' ? SECRET + '\n' : '') },
    );
    expect(Buffer.from(key.secret).toString()).toBe(SECRET);
  });

  it('is a clear startup error when missing: never a random key', () => {
    expect(codeOf(() => keyFromEnv({}))).toBe('DEID_ERR_KEY_MISSING');
    expect(codeOf(() => keyFromEnv({ DEID_HMAC_KEY: '  ' }))).toBe('DEID_ERR_KEY_MISSING');
  });

  it('refuses short, badly encoded, doubly configured keys and bad key ids', () => {
    expect(codeOf(() => keyFromEnv({ DEID_HMAC_KEY: 'short' }))).toBe('DEID_ERR_KEY_INVALID');
    expect(codeOf(() => keyFromEnv({ DEID_HMAC_KEY: 'hex:zz' }))).toBe('DEID_ERR_KEY_INVALID');
    expect(codeOf(() => keyFromEnv({ DEID_HMAC_KEY: SECRET, DEID_HMAC_KEY_FILE: '/x' }))).toBe('DEID_ERR_KEY_INVALID');
    expect(codeOf(() => keyFromEnv({ DEID_HMAC_KEY: SECRET, DEID_HMAC_KEY_ID: 'has space' }))).toBe(
      'DEID_ERR_KEY_INVALID',
    );
  });

  it('reports an unreadable key file by error code only', () => {
    const err = Object.assign(new Error(`cannot open ${SECRET}`), { code: 'ENOENT' });
    expect(
      codeOf(() =>
        keyFromEnv(
          { DEID_HMAC_KEY_FILE: '/nope' },
          {
            readFile: () => {
              throw err;
            },
          },
        ),
      ),
    ).toBe('DEID_ERR_KEY_FILE');
  });
});
