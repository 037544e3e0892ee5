/**
 * Seeded generators of hostile input for the fuzz tests (API requests, synced resources): a
 * failure names its case number and reproduces with the same seed.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** mulberry32: small, seedable, good enough to pick cases. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Gen = ReturnType<typeof prng>;
export const pick = <T>(r: Gen, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

export function nested(depth: number, leaf: unknown, kind: 'array' | 'contained' | 'extension'): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) {
    v =
      kind === 'array'
        ? [v]
        : kind === 'contained'
          ? { resourceType: 'Observation', id: `c${i}`, status: 'final', code: { text: 'x' }, contained: [v] }
          : { url: 'http://example.org/x', extension: [v] };
  }
  return v;
}

/** Path segments and ids: encodings, traversal, huge, non-ASCII, prototype names. */
export const SEGMENTS = [
  'a',
  'local-a',
  'Patient',
  'Observation',
  'NotAType',
  '%ff',
  '%00',
  '..',
  '%2e%2e%2fetc%2fpasswd',
  'x'.repeat(3000),
  '\u00e9\u4e2d',
  '*',
  '1',
  'v1',
  '__proto__',
  'constructor',
];
/** Addresses the network policy must refuse, and some it must accept. */
export const ADDRESSES = [
  'http://169.254.169.254/',
  'http://[fd00:ec2::254]/',
  'http://127.0.0.1:6379/',
  'http://0x7f000001/',
  'http://127.1/',
  'file:///etc/passwd',
  'gopher://127.0.0.1:6379/_INFO',
  'http://user:pass@127.0.0.1:8091/',
  'not a url',
  'http://127.0.0.1:8093/',
];

/**
 * A hostile JSON value: wrong types, huge or odd strings, addresses, secret names, deep nesting,
 * small objects of such values under the keys the API and FHIR use.
 */
export function hostileValue(r: Gen, depth = 0): unknown {
  const k = Math.floor(r() * (depth > 3 ? 9 : 13));
  switch (k) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2:
      return pick(r, [-1, 0, 1e308, -1e308, 2 ** 53 + 1, 0.1]);
    case 3:
      return pick(r, ['', '\u0000', '%ff', '${jndi:ldap://x}', '<script>', 'Liz Conn 123-45-6789', '1986-13-45']);
    case 4:
      return 'x'.repeat(Math.floor(r() * 20_000));
    case 5:
      return pick(r, ADDRESSES);
    case 6:
      return pick(r, ['FHIR_SYNC_SECRET_X', 'DEID_HMAC_KEY', 'API_KEYS', 'PATH', 'Patient', 'redact', 'keep']);
    case 7:
      return pick(r, SEGMENTS);
    case 8:
      return nested(pick(r, [10, 300, 1200]), 'leaf', pick(r, ['array', 'contained', 'extension'] as const));
    case 9:
      return Array.from({ length: Math.floor(r() * 6) }, () => hostileValue(r, depth + 1));
    default: {
      const keys = ['id', 'baseUrl', 'tokenUrl', 'auth', 'sendTypes', 'rules', 'resource', 'resources', 'ids'];
      const extra = ['resourceType', 'path', 'method', '__proto__', 'constructor', 'enabled', 'feed', 'tls'];
      const out: Record<string, unknown> = {};
      for (let i = Math.floor(r() * 6); i > 0; i--) {
        out[pick(r, [...keys, ...extra])] = hostileValue(r, depth + 1);
      }
      return out;
    }
  }
}

let gc: (() => void) | undefined;

/**
 * Heap in use after forced full collections: what the process keeps, not what it churns
 * (a memory bound checked by size, never by time).
 */
export function heapAfterGc(): number {
  if (gc === undefined) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}
