/**
 * What a registered server is, found by asking it (read-only): reachable, authenticated, FHIR
 * version, which sent types it keeps a history for, clock skew, and from that the feed kind the
 * service uses for each type and why. Behaviour that differs between servers is probed, not
 * assumed; probes that need writes (ties, atomicity, bundle caps, client-chosen ids) are not
 * made here: the engine learns bundle caps and refusals of client ids as it writes.
 */
import type { CapabilityStatement } from '@medplum/fhirtypes';
import { createFhirClient } from '../shared/fhir-client.ts';
import type { FhirClientOptions } from '../shared/fhir-client.ts';
import { fhirRequest } from '../shared/fhir-http.ts';
import { AppError } from '../shared/errors/index.ts';
import { toFhirConnection } from './connection.ts';
import type { FeedConfig, ServerConnection } from './types.ts';

/** The feed kind used for one type, and why. */
export interface TypeProbe {
  readonly resourceType: string;
  readonly kind: string;
  readonly why: string;
}

/** What one server answered. */
export interface ServerProbe {
  readonly name: string;
  readonly baseUrl: string;
  readonly reachable: boolean;
  readonly authOk: boolean;
  readonly fhirVersion?: string;
  readonly software?: string;
  /** Server clock minus local clock, in seconds (from the Date header). */
  readonly clockSkewSeconds?: number;
  readonly types: readonly TypeProbe[];
  /** Why the probe failed, as a code and status (never a body). */
  readonly problem?: string;
}

/**
 * Probes one server.
 * @param name - its name in the registry (`global` or an instance id).
 * @param server - its connection settings.
 * @param feed - its feed settings.
 * @param types - the types synced from it.
 * @param options - client options (env for secrets, network policy, fetch for tests).
 * @returns what was found.
 */
export async function probeServer(
  name: string,
  server: ServerConnection,
  feed: FeedConfig,
  types: readonly string[],
  options: FhirClientOptions = {},
): Promise<ServerProbe> {
  const base = { name, baseUrl: server.baseUrl };
  let cs: CapabilityStatement | undefined;
  let skew: number | undefined;
  let client: ReturnType<typeof createFhirClient>;
  try {
    client = createFhirClient(toFhirConnection(server), options);
    const started = Date.now();
    const res = await fhirRequest(client, client.fhirUrl('metadata').toString(), { method: 'GET' });
    const date = Date.parse(res.headers.get('date') ?? '');
    skew = Number.isFinite(date) ? Math.round((date - (started + Date.now()) / 2) / 1000) : undefined;
    if (res.status === 401 || res.status === 403) {
      return { ...base, reachable: true, authOk: false, types: [], problem: `HTTP ${res.status}` };
    }
    if (res.status >= 300 || res.body === undefined) {
      return { ...base, reachable: true, authOk: true, types: [], problem: `HTTP ${res.status} on /metadata` };
    }
    cs = res.body as CapabilityStatement;
  } catch (err) {
    const code = err instanceof AppError ? err.code : err instanceof Error ? err.name : 'error';
    return { ...base, reachable: false, authOk: false, types: [], problem: code };
  }
  return {
    ...base,
    reachable: true,
    authOk: true,
    ...(cs.fhirVersion === undefined ? {} : { fhirVersion: cs.fhirVersion }),
    ...(cs.software?.name === undefined ? {} : { software: `${cs.software.name} ${cs.software.version ?? ''}`.trim() }),
    ...(skew === undefined ? {} : { clockSkewSeconds: skew }),
    types: await Promise.all(types.map((t) => feedChoice(cs, feed, t, client))),
  };
}

/**
 * The feed kind used for a type, and why (the same rule as the feed's `auto`), checked by
 * asking for one history entry: a server can declare `history-type` and still refuse it.
 */
async function feedChoice(
  cs: CapabilityStatement,
  feed: FeedConfig,
  resourceType: string,
  client: ReturnType<typeof createFhirClient>,
): Promise<TypeProbe> {
  const rest = cs.rest?.find((r) => r.mode === 'server') ?? cs.rest?.[0];
  const history =
    rest?.resource?.find((r) => r.type === resourceType)?.interaction?.some((i) => i.code === 'history-type') ?? false;
  if (feed.kind !== 'auto') {
    const warn = feed.kind === 'fhir-history' && !history ? ' (the server does not declare history-type for it!)' : '';
    return { resourceType, kind: feed.kind, why: `configured${warn}` };
  }
  const refused = history ? await historyRefused(client, resourceType) : undefined;
  if (refused !== undefined) {
    return {
      resourceType,
      kind: 'search-lastupdated',
      why: `auto: history-type declared but _history answered ${refused}; back-dated lastUpdated values are missed`,
    };
  }
  return history
    ? { resourceType, kind: 'fhir-history', why: 'auto: the server declares history-type and answers it' }
    : {
        resourceType,
        kind: 'search-lastupdated',
        why: 'auto: no history-type declared; back-dated lastUpdated values are missed',
      };
}

/** The status of a refused `Type/_history?_count=1`, or undefined when it answers. */
async function historyRefused(
  client: ReturnType<typeof createFhirClient>,
  resourceType: string,
): Promise<number | undefined> {
  try {
    const url = client.fhirUrl(resourceType, '_history').toString() + '?_count=1';
    const res = await fhirRequest(client, url, { method: 'GET' });
    return [404, 405, 410, 501].includes(res.status) ? res.status : undefined;
  } catch {
    return undefined; // unknown: keep what the server declares
  }
}
