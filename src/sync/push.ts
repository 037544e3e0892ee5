/**
 * Push wake-up: where a local supports FHIR Subscriptions (rest-hook), the service keeps one
 * Subscription per sent type there, whose notification asks for an immediate pass of that
 * (instance, type). The notification carries nothing: `channel.payload` is absent, so the local
 * sends an empty POST, and no resource (no PHI) ever travels this way. It only says "look now".
 * The cursor stays the only guarantee: a lost or refused notification is caught by the next
 * scheduled pass.
 *
 * Each notification carries a per-instance token in a header (`channel.header`), derived from
 * the push secret so it can be checked without storing it, and compared in constant time.
 * The service's own Subscriptions are tagged and have ids derived from (instance, type), so a
 * reconcile creates what is missing, rewrites what changed (a new public URL or secret) and
 * deletes what is no longer wanted (a type removed from sendTypes).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { BundleEntry, Subscription } from '@medplum/fhirtypes';
import type { LocalInstance } from '../instances/index.ts';
import type { FhirStore } from './fhir-store.ts';
import { stateId } from './ids.ts';
import { SYNC_SYSTEM } from './marks.ts';

/** The header a notification carries its token in. */
export const PUSH_HEADER = 'x-fhir-sync-token';

/** The tag of the service's own Subscriptions on a local. */
export const PUSH_TAG = { system: SYNC_SYSTEM, code: 'push-wakeup' } as const;

/** Where notifications go and how they are authenticated. */
export interface PushSettings {
  /** The service's base URL as the locals reach it (FHIR_SYNC_PUBLIC_URL). */
  readonly publicUrl: string;
  /** At least 32 bytes (FHIR_SYNC_PUSH_SECRET / _FILE); never logged. */
  readonly secret: Uint8Array;
}

/**
 * The token a local sends with notifications for one instance.
 * @param secret - the push secret.
 * @param instanceId - the instance.
 * @returns 64 hex digits.
 */
export function pushToken(secret: Uint8Array, instanceId: string): string {
  return createHmac('sha256', secret).update(`fhir-sync push\u0000${instanceId}`).digest('hex');
}

/**
 * Whether a presented token is the instance's (constant time).
 * @param secret - the push secret.
 * @param instanceId - the instance named in the URL.
 * @param presented - the header value, if any.
 * @returns true when it matches.
 */
export function pushTokenValid(secret: Uint8Array, instanceId: string, presented: string | undefined): boolean {
  if (presented === undefined || presented.length !== 64) {
    return false;
  }
  return timingSafeEqual(Buffer.from(pushToken(secret, instanceId)), Buffer.from(presented));
}

/**
 * The URL a local's Subscription notifies.
 * @param publicUrl - the service's base URL.
 * @param instanceId - the instance.
 * @param resourceType - the sent type.
 * @returns `<publicUrl>/hooks/fhir/<instance>/<type>`.
 */
export function pushEndpoint(publicUrl: string, instanceId: string, resourceType: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/hooks/fhir/${encodeURIComponent(instanceId)}/${resourceType}`;
}

/** The Subscription the service wants on a local for one sent type. */
export function wantedSubscription(instance: LocalInstance, resourceType: string, push: PushSettings): Subscription {
  return {
    resourceType: 'Subscription',
    id: stateId('push', instance.id, resourceType),
    meta: { tag: [{ ...PUSH_TAG }] },
    status: 'requested',
    reason: `fhir-sync wake-up for ${resourceType} (no payload)`,
    criteria: `${resourceType}?`,
    channel: {
      type: 'rest-hook',
      endpoint: pushEndpoint(push.publicUrl, instance.id, resourceType),
      header: [`${PUSH_HEADER}: ${pushToken(push.secret, instance.id)}`],
    },
  };
}

/** What a reconcile did on one local. */
export interface PushReconcile {
  /** The local took the Subscriptions (false: it refused them, so only polling applies). */
  readonly supported: boolean;
  readonly written: number;
  readonly kept: number;
  readonly removed: number;
  /** HTTP status of a refusal. */
  readonly status?: number;
  /** Ids of the Subscriptions wanted, one per sent type in sendTypes order. */
  readonly subscriptionIds: readonly string[];
}

/**
 * Makes the local's tagged Subscriptions exactly one per sent type, in one transaction.
 * @param instance - the local.
 * @param local - its store.
 * @param push - public URL and secret.
 * @returns counts, or `supported: false` when the local refuses Subscriptions.
 */
export async function reconcileSubscriptions(
  instance: LocalInstance,
  local: FhirStore,
  push: PushSettings,
): Promise<PushReconcile> {
  const existing = (await local.searchAll('Subscription', {
    _tag: `${PUSH_TAG.system}|${PUSH_TAG.code}`,
    _count: '200',
  })) as Subscription[];
  const byId = new Map(existing.map((s) => [s.id ?? '', s]));
  const entry: BundleEntry[] = [];
  let kept = 0;
  const wanted = new Set<string>();
  for (const type of instance.sendTypes) {
    const want = wantedSubscription(instance, type, push);
    wanted.add(want.id!);
    const have = byId.get(want.id!);
    if (have !== undefined && have.status === 'active' && sameChannel(have, want)) {
      kept++;
      continue;
    }
    entry.push({ resource: want, request: { method: 'PUT', url: `Subscription/${want.id}` } });
  }
  const written = entry.length;
  for (const s of existing) {
    if (s.id !== undefined && !wanted.has(s.id)) {
      entry.push({ request: { method: 'DELETE', url: `Subscription/${s.id}` } });
    }
  }
  const subscriptionIds = [...wanted];
  if (entry.length === 0) {
    return { supported: true, written: 0, kept, removed: 0, subscriptionIds };
  }
  const answer = await local.transaction({ resourceType: 'Bundle', type: 'transaction', entry });
  if (answer.status >= 400) {
    return { supported: false, written: 0, kept, removed: 0, status: answer.status, subscriptionIds };
  }
  return { supported: true, written, kept, removed: entry.length - written, subscriptionIds };
}

function sameChannel(a: Subscription, b: Subscription): boolean {
  return (
    a.criteria === b.criteria &&
    a.channel?.type === b.channel?.type &&
    a.channel?.endpoint === b.channel?.endpoint &&
    (a.channel?.payload ?? '') === '' &&
    JSON.stringify(a.channel?.header ?? []) === JSON.stringify(b.channel?.header ?? [])
  );
}

/**
 * Reconciles the Subscriptions of every enabled local whose `push` is not `off`. A local that
 * refuses them, or does not answer, is logged and left to polling.
 * @param instances - the registry's locals.
 * @param storeOf - the store of a local.
 * @param push - public URL and secret.
 * @param log - where outcomes go (ids and counts only).
 */
export async function reconcileAllSubscriptions(
  instances: readonly LocalInstance[],
  storeOf: (instance: LocalInstance) => FhirStore,
  push: PushSettings,
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void },
): Promise<void> {
  for (const instance of instances) {
    if (!instance.enabled || instance.push === 'off') {
      continue;
    }
    try {
      const r = await reconcileSubscriptions(instance, storeOf(instance), push);
      if (r.supported) {
        log.info({ instanceId: instance.id, ...r }, 'push subscriptions in place');
      } else {
        log.warn({ instanceId: instance.id, status: r.status }, 'local refused push subscriptions; polling only');
      }
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      log.warn(
        { instanceId: instance.id, errorCode: typeof code === 'string' ? code : 'error' },
        'push subscriptions not reconciled; polling only',
      );
    }
  }
}
