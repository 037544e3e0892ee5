/**
 * The HMAC key, from the environment only: `DEID_HMAC_KEY` (with `DEID_HMAC_KEY_ID`) or
 * `DEID_HMAC_KEY_FILE` (a file holding the key, e.g. a mounted secret). A missing key is a
 * startup error: pseudonyms made with a random key would change on every restart and break
 * every reference already written. The key never appears in messages or logs.
 *
 * Key text: `base64:<...>` or `hex:<...>` for binary keys, anything else is used as UTF-8
 * bytes. At least 32 bytes after decoding.
 */
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { DEID_ERR_KEY_FILE, DEID_ERR_KEY_INVALID, DEID_ERR_KEY_MISSING } from '../../shared/errors/index.ts';

/** The de-identification key. */
export interface DeidKey {
  /** Names the key in meta.tag (never secret). */
  readonly id: string;
  readonly secret: Uint8Array;
}

/** Minimum key length in bytes (HMAC-SHA256 block-size guidance: at least the output size). */
export const MIN_KEY_BYTES = 32;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Options of keyFromEnv. */
export interface KeyFromEnvOptions {
  /** Reads DEID_HMAC_KEY_FILE. @defaultValue fs.readFileSync */
  readonly readFile?: (path: string) => string | Uint8Array;
}

/**
 * Reads the key from the environment.
 * @param env - environment variables (e.g. process.env).
 * @param options - file reader.
 * @returns the key.
 * @throws AppError DEID_ERR_KEY_MISSING, DEID_ERR_KEY_INVALID or DEID_ERR_KEY_FILE.
 */
export function keyFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  options: KeyFromEnvOptions = {},
): DeidKey {
  const inline = nonEmpty(env.DEID_HMAC_KEY);
  const file = nonEmpty(env.DEID_HMAC_KEY_FILE);
  if (inline !== undefined && file !== undefined) {
    throw DEID_ERR_KEY_INVALID.create('set DEID_HMAC_KEY or DEID_HMAC_KEY_FILE, not both');
  }
  let text: string;
  if (inline !== undefined) {
    text = inline;
  } else if (file !== undefined) {
    text = readKeyFile(file, options.readFile ?? ((p) => readFileSync(p)));
  } else {
    throw DEID_ERR_KEY_MISSING.create();
  }
  const secret = decodeKey(text);
  const id = nonEmpty(env.DEID_HMAC_KEY_ID) ?? derivedKeyId(secret);
  return makeKey(id, secret);
}

/**
 * Validates a key given in code (tests, previews).
 * @param id - key id.
 * @param secret - key bytes or text.
 * @returns the key.
 */
export function makeKey(id: string, secret: Uint8Array | string): DeidKey {
  const bytes = typeof secret === 'string' ? decodeKey(secret) : secret;
  if (bytes.length < MIN_KEY_BYTES) {
    throw DEID_ERR_KEY_INVALID.create(`shorter than ${MIN_KEY_BYTES} bytes`);
  }
  if (!KEY_ID.test(id)) {
    throw DEID_ERR_KEY_INVALID.create('the key id must be 1-64 letters, digits, . _ -');
  }
  return Object.freeze({ id, secret: bytes });
}

function readKeyFile(path: string, read: (p: string) => string | Uint8Array): string {
  try {
    const content = read(path);
    return (typeof content === 'string' ? content : Buffer.from(content).toString('utf8')).replace(/\r?\n$/, '');
  } catch (err) {
    const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : 'read error';
    throw DEID_ERR_KEY_FILE.createWith({}, [code], { cause: err });
  }
}

function decodeKey(text: string): Uint8Array {
  if (text.startsWith('base64:')) {
    const body = text.slice(7);
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(body)) {
      throw DEID_ERR_KEY_INVALID.create('not valid base64');
    }
    return Buffer.from(body, 'base64');
  }
  if (text.startsWith('hex:')) {
    const body = text.slice(4);
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(body)) {
      throw DEID_ERR_KEY_INVALID.create('not valid hex');
    }
    return Buffer.from(body, 'hex');
  }
  return Buffer.from(text, 'utf8');
}

/** A non-secret id derived from the key when DEID_HMAC_KEY_ID is not set. */
function derivedKeyId(secret: Uint8Array): string {
  return 'k-' + createHmac('sha256', secret).update('fhir-sync:key-id').digest('hex').slice(0, 12);
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v;
}
