/**
 * Checks of a server's connection settings against the service's policies (issue 10),
 * applied when instances.yaml is loaded and on every change through the registry (API):
 *
 * - every `*Env` secret reference names an instance secret (`FHIR_SYNC_SECRET_*`), never
 *   one of the service's own variables (DEID_HMAC_KEY, API_KEYS, REDIS_URL, ...);
 * - `baseUrl` and `tokenUrl` pass the network policy as written (literal addresses, odd
 *   IPv4 notations normalised by URL parsing, `localhost`, metadata host names); the
 *   addresses names resolve to are checked again at connect time by the FHIR transport;
 * - `tls.caFile` lies in the CA directory (symlinks are resolved at connect time).
 *
 * Each problem carries the catalogue code of its kind, so the registry can answer with it.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { relative, resolve, isAbsolute } from 'node:path';
import type { NetEnv } from '../shared/env.ts';
import { DEFAULT_CONNECTION_POLICY, isSecretEnvName, SECRET_ENV_PREFIX } from '../shared/fhir-client.ts';
import type { ConnectionPolicy } from '../shared/fhir-client.ts';
import {
  SYNC_ERR_ADDRESS_REFUSED,
  SYNC_ERR_CA_FILE_REFUSED,
  SYNC_ERR_OPTIONS,
  SYNC_ERR_SECRET_REF_REFUSED,
} from '../shared/errors/index.ts';
import { checkUrl, createNetPolicy, ownEndpointRules } from '../shared/net-policy.ts';
import type { NetRule } from '../shared/net-policy.ts';
import type { RawProblem } from './schema.ts';
import type { ServerConnection } from './types.ts';

const SECRET_FIELDS = ['tokenEnv', 'usernameEnv', 'passwordEnv', 'clientIdEnv', 'clientSecretEnv'] as const;

/**
 * Policy problems of one server's connection settings.
 * @param server - a schema-valid server (global or local).
 * @param policy - network policy and CA directory. @defaultValue DEFAULT_CONNECTION_POLICY
 * @returns problems with paths relative to the server, each with its code.
 */
export function connectionProblems(
  server: Pick<ServerConnection, 'baseUrl' | 'auth' | 'tls'>,
  policy: ConnectionPolicy = DEFAULT_CONNECTION_POLICY,
): RawProblem[] {
  const problems: RawProblem[] = [];
  const auth = server.auth as Readonly<Record<string, unknown>>;
  for (const field of SECRET_FIELDS) {
    const name = auth[field];
    if (typeof name === 'string' && !isSecretEnvName(name)) {
      problems.push({
        path: ['auth', field],
        message: `must name an instance secret (${SECRET_ENV_PREFIX}*); other environment variables are never sent`,
        code: SYNC_ERR_SECRET_REF_REFUSED.code,
      });
    }
  }
  const urls: [readonly (string | number)[], unknown][] = [
    [['baseUrl'], server.baseUrl],
    [['auth', 'tokenUrl'], auth.tokenUrl],
  ];
  for (const [path, url] of urls) {
    const why = typeof url === 'string' ? checkUrl(policy.net, url) : undefined;
    if (why !== undefined) {
      problems.push({
        path,
        message: `is refused by the network policy (${why})`,
        code: SYNC_ERR_ADDRESS_REFUSED.code,
      });
    }
  }
  if (server.tls !== undefined && !insideDir(server.tls.caFile, policy.caDir)) {
    problems.push({
      path: ['tls', 'caFile'],
      message: 'must be a file in the CA directory (FHIR_SYNC_CA_DIR)',
      code: SYNC_ERR_CA_FILE_REFUSED.code,
    });
  }
  return problems;
}

function insideDir(file: string, dir: string): boolean {
  const rel = relative(resolve(dir), resolve(file));
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

/** The service's own endpoints, denied to FHIR connections. */
export interface OwnEndpoints {
  /** REDIS_URL. */
  readonly redisUrl: string;
  /** Where the API (or the metrics app) listens, when this process serves one. */
  readonly api?: { readonly host: string; readonly port: number };
}

/**
 * The connection policy of the service from its settings: FHIR_SYNC_NET_ALLOW and
 * FHIR_SYNC_NET_DENY (see net-policy.ts for the syntax; built-in denials always apply),
 * FHIR_SYNC_CA_DIR, plus the service's own Redis and API endpoints (their names resolved
 * once here, best effort; this machine's interface addresses too).
 * @param net - network policy text and CA directory (src/shared/env.ts).
 * @param own - Redis URL and API address.
 * @param io - DNS lookup and interface addresses (tests).
 * @returns the frozen policy.
 * @throws AppError SYNC_ERR_OPTIONS with `details.problems` for unparsable entries.
 */
export async function connectionPolicyOf(
  net: NetEnv,
  own: OwnEndpoints,
  io: { lookup?: (host: string) => Promise<readonly string[]>; localAddresses?: readonly string[] } = {},
): Promise<ConnectionPolicy> {
  const problems: string[] = [];
  const localAddresses = io.localAddresses ?? interfaceAddresses();
  const extraDeny: NetRule[] = [];
  const endpoint = async (host: string, port: number): Promise<void> => {
    extraDeny.push(...ownEndpointRules(host, port, localAddresses));
    const bare = host.replace(/^\[|\]$/g, '');
    if (isIP(bare) === 0 && bare !== 'localhost') {
      const addresses = await (io.lookup ?? dnsAddresses)(bare).catch(() => [] as readonly string[]);
      for (const a of addresses) {
        extraDeny.push(...ownEndpointRules(a, port, localAddresses));
      }
    }
  };
  try {
    const redis = new URL(own.redisUrl);
    await endpoint(redis.hostname, redis.port === '' ? 6379 : Number(redis.port));
  } catch {
    problems.push('REDIS_URL is not a URL');
  }
  if (own.api !== undefined) {
    await endpoint(own.api.host, own.api.port);
  }
  const built = createNetPolicy({ allow: net.allow, deny: net.deny, extraDeny });
  problems.push(...built.problems.map((p) => `FHIR_SYNC_NET_${p.startsWith('allow') ? 'ALLOW' : 'DENY'} ${p}`));
  if (problems.length > 0) {
    throw SYNC_ERR_OPTIONS.createWith({ problems }, ['network policy', problems.join('; ')]);
  }
  return Object.freeze({ net: built.policy, caDir: net.caDir });
}

async function dnsAddresses(host: string): Promise<readonly string[]> {
  return (await lookup(host, { all: true })).map((a) => a.address);
}

function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flatMap((list) => list ?? [])
    .map((i) => i.address);
}
