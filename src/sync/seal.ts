/**
 * Sealing of feed cursors stored on the global server. A feed cursor may carry local
 * resource ids (the `seen` keys that dedupe re-read changes); the global server must not
 * learn local ids, since they would link pseudonyms back to the local records. So forward
 * cursors are encrypted (AES-256-GCM) with a key derived by HKDF from the anonymizer's
 * secret (another purpose label, so the HMAC key itself is never used for encryption).
 * The key id is part of the sealed text: a cursor sealed under another key cannot be opened
 * (after a key rotation every pseudonym changes anyway, so the sync starts over).
 * Reverse cursors (on the locals, holding global ids) are stored plain.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { SYNC_ERR_CURSOR_INVALID } from '../shared/errors/index.ts';

/** Turns a feed cursor into what is stored, and back. */
export interface CursorCodec {
  seal(cursor: string): string;
  /** @throws AppError SYNC_ERR_CURSOR_INVALID when it cannot be opened. */
  open(stored: string): string;
}

/** Stores cursors as they are. */
export const plainCodec: CursorCodec = Object.freeze({ seal: (c: string) => c, open: (s: string) => s });

const PREFIX = 's1';

/**
 * A codec that encrypts cursors.
 * @param secret - the anonymizer's key bytes.
 * @param keyId - the key's public id (recorded in the sealed text).
 * @returns the codec.
 */
export function sealingCodec(secret: Uint8Array, keyId: string): CursorCodec {
  const key = Buffer.from(hkdfSync('sha256', secret, 'fhir-sync', 'cursor-seal/v1', 32));
  // The key id may hold dots; it travels base64url-encoded so `.` stays the separator.
  const kidText = Buffer.from(keyId, 'utf8').toString('base64url');
  const aad = Buffer.from(`${PREFIX}.${kidText}`);
  return Object.freeze({
    seal(cursor: string): string {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(aad);
      const body = Buffer.concat([cipher.update(cursor, 'utf8'), cipher.final()]);
      return `${PREFIX}.${kidText}.${Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url')}`;
    },
    open(stored: string): string {
      const [prefix, kid, data] = stored.split('.');
      if (prefix !== PREFIX || data === undefined) {
        throw SYNC_ERR_CURSOR_INVALID.create('cursor', 'server', 'not a sealed cursor');
      }
      if (kid !== kidText) {
        throw SYNC_ERR_CURSOR_INVALID.create('cursor', 'server', 'sealed under another key id');
      }
      const raw = Buffer.from(data, 'base64url');
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12)).setAAD(aad);
        decipher.setAuthTag(raw.subarray(raw.length - 16));
        return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8');
      } catch {
        throw SYNC_ERR_CURSOR_INVALID.create('cursor', 'server', 'cannot be opened with this key');
      }
    },
  });
}
