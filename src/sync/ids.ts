/**
 * Deterministic, UUID-shaped ids for the engine's own state resources (cursors, quarantine
 * records). UUID-shaped so every target accepts them (Medplum requires UUIDs, HAPI accepts
 * them under any id strategy); derived by hashing a namespace plus the parts, so the same
 * (instance, type) always maps to the same resource and a retried PUT is idempotent. The
 * namespace keeps them apart from the anonymizer's pseudonyms, which are keyed HMACs.
 */
import { createHash } from 'node:crypto';

const NAMESPACE = 'fhir-sync/state/v1';

/**
 * A stable UUID-shaped id (version nibble 5, RFC 4122 variant) for the given parts.
 * @param parts - e.g. `['cursor', 'forward', 'local-a', 'Patient']`.
 * @returns a lower-case UUID string.
 */
export function stateId(...parts: readonly string[]): string {
  const hash = createHash('sha256').update(NAMESPACE);
  for (const p of parts) {
    hash.update('\u0000').update(p);
  }
  const b = hash.digest().subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
