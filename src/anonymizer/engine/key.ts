/**
 * The HMAC key, from the environment only: `DEID_HMAC_KEY` (with `DEID_HMAC_KEY_ID`) or
 * `DEID_HMAC_KEY_FILE` (a file holding the key, e.g. a mounted secret), read by
 * src/shared/env.ts and decoded here. A missing key is a startup error: pseudonyms made with a random key would change on every restart and break
 * every reference already written. The key never appears in messages or logs.
 *
 * Key text: `base64:<...>` or `hex:<...>` for binary keys, anything else is used as UTF-8
 * bytes. At least 32 bytes after decoding.
 */
import { createHmac } from 'node:crypto';
import type { DeidKeyEnv } from '../../shared/env.ts';
import { DEID_ERR_KEY_INVALID } from '../../shared/errors/index.ts';

/** The de-identification key. */
export interface DeidKey {
  /** Names the key in meta.tag (never secret). */
  readonly id: string;
  readonly secret: Uint8Array;
}

/** Minimum key length in bytes (HMAC-SHA256 block-size guidance: at least the output size). */
export const MIN_KEY_BYTES = 32;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * The key from its settings (src/shared/env.ts reads DEID_HMAC_KEY or DEID_HMAC_KEY_FILE
 * and DEID_HMAC_KEY_ID, and reports a missing key or an unreadable file).
 * @param settings - the key text and, optionally, its id.
 * @returns the key.
 * @throws AppError DEID_ERR_KEY_INVALID for a short or badly encoded key or a bad id.
 */
export function deidKeyFrom(settings: DeidKeyEnv): DeidKey {
  const secret = decodeKey(settings.text);
  return makeKey(settings.id ?? derivedKeyId(secret), secret);
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
