/**
 * When the newest change of a type happened on a server: the other end of a channel's lag
 * (newest change on the local vs the committed cursor's position). One small read: the first
 * entry of `_history` (servers list history newest first) or of a search sorted by
 * `-_lastUpdated`. Aidbox version feeds have no instant to compare with: no answer.
 */
import type { Bundle } from '@medplum/fhirtypes';
import type { MedplumClient } from '@medplum/core';
import { asBundle, getJson } from '../shared/fhir-http.ts';
import type { FeedKind } from './types.ts';

/**
 * The instant of the newest change of a type, in epoch ms.
 * @param client - the server's client.
 * @param kind - the feed kind in use for the type (not `auto`).
 * @param resourceType - the type.
 * @param signal - abort.
 * @param clock - local clock.
 * @returns the instant, or undefined when the server has no change of the type or no way to say.
 */
export async function newestChangeAt(
  client: MedplumClient,
  kind: Exclude<FeedKind, 'auto'>,
  resourceType: string,
  signal: AbortSignal | undefined,
  clock: () => number,
): Promise<number | undefined> {
  if (kind === 'aidbox-changes') {
    return undefined;
  }
  const url =
    kind === 'fhir-history'
      ? `${client.fhirUrl(resourceType, '_history').toString()}?_count=1`
      : `${client.fhirUrl(resourceType).toString()}?_sort=-_lastUpdated&_count=1`;
  const answer = await getJson(client, url, signal, clock);
  const bundle: Bundle = asBundle(answer.body, kind === 'fhir-history' ? 'history' : 'searchset', url);
  const first = bundle.entry?.[0];
  const stamp = first?.resource?.meta?.lastUpdated ?? first?.response?.lastModified;
  const ms = stamp === undefined ? Number.NaN : Date.parse(stamp);
  return Number.isFinite(ms) ? ms : undefined;
}
