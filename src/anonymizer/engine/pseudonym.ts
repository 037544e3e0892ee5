/**
 * Keyed pseudonyms: HMAC-SHA256 with the configured secret, shaped as a UUID so that every
 * FHIR server accepts it as an `id` and inside `urn:uuid:` (RFC 9562 version 8, "custom",
 * lowercase 8-4-4-4-12). The HMAC input always starts with the source instance id, so
 * `Patient/1` of two clinics never collide and cannot be linked without the key.
 *
 * HMAC (RFC 2104) is computed with one-shot hashes over the precomputed key pads, which is
 * several times faster than `createHmac` per value. Nothing is memoised here: callers keep
 * per-batch memos keyed by the values themselves (references.ts), so no identifier value
 * outlives its batch in memory.
 */
import { createHash, hash } from 'node:crypto';

/** Messages up to this size are hashed in a preallocated buffer. */
const INLINE_MESSAGE_BYTES = 1024;

/** Keyed HMAC helpers bound to one secret. */
export interface Pseudonymizer {
  /** HMAC-SHA256 of `message` as a v8 UUID. */
  uuid(message: string): string;
  /** The first 32 bits of HMAC-SHA256 of `message`, unsigned. */
  uint32(message: string): number;
  /** A short non-secret fingerprint of the key (for a derived key id). */
  fingerprint(): string;
}

/**
 * Binds HMAC helpers to a secret.
 * @param secret - the key bytes (at least 32).
 * @returns the helpers; the secret is not retained in readable form beyond the pad states.
 */
export function createPseudonymizer(secret: Uint8Array): Pseudonymizer {
  let key = Buffer.from(secret);
  if (key.length > 64) {
    key = createHash('sha256').update(key).digest();
  }
  const ipad = Buffer.alloc(64, 0x36);
  const opad = Buffer.alloc(64, 0x5c);
  for (let i = 0; i < key.length; i++) {
    ipad[i] = (ipad[i] as number) ^ (key[i] as number);
    opad[i] = (opad[i] as number) ^ (key[i] as number);
  }
  // One-shot hashes over preallocated buffers: H(opad || H(ipad || message)). Digests come back
  // as strings (binary = latin1 inner, hex outer): a Buffer result costs more than the hash itself.
  const innerBuf = Buffer.allocUnsafe(64 + INLINE_MESSAGE_BYTES);
  ipad.copy(innerBuf, 0);
  const outerBuf = Buffer.allocUnsafe(64 + 32);
  opad.copy(outerBuf, 0);
  // Views of innerBuf by message length (a subarray per call allocates).
  const views: (Buffer | undefined)[] = [];
  const hmac = (message: string, encoding: 'hex' | 'binary'): string => {
    let input: Buffer;
    // A UTF-16 unit is at most 3 UTF-8 bytes: short messages fit without measuring them.
    if (message.length * 3 <= INLINE_MESSAGE_BYTES || Buffer.byteLength(message, 'utf8') <= INLINE_MESSAGE_BYTES) {
      const n = innerBuf.write(message, 64, 'utf8');
      input = views[n] ??= innerBuf.subarray(0, 64 + n);
    } else {
      input = Buffer.concat([ipad, Buffer.from(message, 'utf8')]);
    }
    outerBuf.write(hash('sha256', input, 'binary'), 64, 'binary');
    return hash('sha256', outerBuf, encoding);
  };

  return Object.freeze({
    uuid: (message: string): string => hexToUuid(hmac(message, 'hex')),
    uint32: (message: string): number => binaryUint32(hmac(message, 'binary')),
    fingerprint(): string {
      return hmac('fhir-sync:key-fingerprint', 'hex').slice(0, 12);
    },
  });
}

/**
 * Formats 16 bytes of a digest as an RFC 9562 version-8 UUID (lowercase).
 * @param digest - at least 16 bytes.
 * @returns `xxxxxxxx-xxxx-8xxx-yxxx-xxxxxxxxxxxx` with y in 8..b.
 */
export function toUuid(digest: Uint8Array): string {
  const d = digest;
  const h = (i: number): string => HEX[d[i] as number] as string;
  const v = HEX[((d[6] as number) & 0x0f) | 0x80] as string;
  const r = HEX[((d[8] as number) & 0x3f) | 0x80] as string;
  return `${h(0)}${h(1)}${h(2)}${h(3)}-${h(4)}${h(5)}-${v}${h(7)}-${r}${h(9)}-${h(10)}${h(11)}${h(12)}${h(13)}${h(14)}${h(15)}`;
}

/** Variant nibble (RFC 9562: binary 10xx) by the digest's hex digit at that place. */
const VARIANT: Readonly<Record<string, string>> = Object.fromEntries(
  [...'0123456789abcdef'].map((c) => [c, (0x8 | (parseInt(c, 16) & 0x3)).toString(16)]),
);

/** toUuid over a lowercase hex digest (64 digits): the same UUID without a byte buffer. */
function hexToUuid(h: string): string {
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${VARIANT[h[16] as string] as string}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The first 4 bytes of a binary (latin1) digest as an unsigned big-endian integer. */
function binaryUint32(s: string): number {
  return ((s.charCodeAt(0) << 24) | (s.charCodeAt(1) << 16) | (s.charCodeAt(2) << 8) | s.charCodeAt(3)) >>> 0;
}

const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Lowercase UUID shape with the version-8 and RFC variant bits this module writes. */
export const PSEUDONYM_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
