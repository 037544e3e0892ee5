/**
 * Quarantine: changes the engine could not deliver (de-identification failed, the target
 * refused them with a 4xx, or something they reference was quarantined). Records are
 * `Basic` resources on the target server (forward: the global), written in the same
 * transaction as the cursor that passes over them, so they are as durable and exactly-once
 * as the data. A record holds the instance, type, target (pseudonymous) id, reason code,
 * rules version and time: never the resource, never the local id.
 *
 * Retrying (after a rules fix): the local id behind a pseudonym is not stored anywhere, so
 * the retry lists the ids of the type on the source (`_elements=id`), computes their target
 * ids, and runs the matches through the normal page pipeline (de-identify, references,
 * dependencies; the record is deleted in the same bundle when it goes through, rewritten when
 * it fails again). A record whose resource no longer exists on the source, or that recorded
 * a deletion, becomes a DELETE on the target plus the record's deletion.
 */
import type { Basic } from '@medplum/fhirtypes';
import type { ResourceChange } from '../changes/index.ts';
import type { DeleteOp } from './bundle.ts';
import type { Channel } from './channel.ts';
import type { QuarantineItem } from './control.ts';
import type { FhirStore } from './fhir-store.ts';
import { prepareContext, preparePage, quarantinePut, record } from './prepare.ts';
import { QUARANTINE_SCOPE_SYSTEM, STATE_CODE_SYSTEM, parseQuarantine, scopeValue } from './state.ts';
import type { Direction, QuarantineRecord } from './state.ts';
import { writePage } from './writer.ts';
import type { WriterDeps } from './writer.ts';

/** A stored record with its resource id. */
export type StoredQuarantine = QuarantineRecord & { readonly id: string };

/** Filter of {@link listQuarantineRecords}. */
export interface QuarantineFilter {
  readonly direction?: Direction;
  readonly instanceId?: string;
  readonly resourceType?: string;
  /** Record ids (the `QuarantineItem.id`s). */
  readonly ids?: readonly string[];
}

/**
 * Lists quarantine records on a server.
 * @param store - the server (the global for forward records).
 * @param filter - optional direction, instance, type and record ids.
 * @returns the records, oldest first.
 */
export async function listQuarantineRecords(
  store: FhirStore,
  filter: QuarantineFilter = {},
): Promise<StoredQuarantine[]> {
  const direction = filter.direction ?? 'forward';
  const query: Record<string, string> =
    filter.instanceId !== undefined && filter.resourceType !== undefined
      ? { identifier: `${QUARANTINE_SCOPE_SYSTEM}|${scopeValue(direction, filter.instanceId, filter.resourceType)}` }
      : { code: `${STATE_CODE_SYSTEM}|quarantine` };
  const ids = filter.ids === undefined ? undefined : new Set(filter.ids);
  const found = await store.searchAll('Basic', { ...query, _count: '1000' });
  return found
    .flatMap((b) => {
      const rec = parseQuarantine(b as Basic);
      return rec === undefined ? [] : [rec];
    })
    .filter((r) => r.direction === direction)
    .filter((r) => filter.instanceId === undefined || r.instanceId === filter.instanceId)
    .filter((r) => filter.resourceType === undefined || r.resourceType === filter.resourceType)
    .filter((r) => ids === undefined || ids.has(r.id))
    .sort((a, b) => a.at.localeCompare(b.at));
}

/**
 * A record as the API shows it.
 * @param r - a stored record.
 * @returns the item.
 */
export function toQuarantineItem(r: StoredQuarantine): QuarantineItem {
  return {
    id: r.id,
    instanceId: r.instanceId,
    resourceType: r.resourceType,
    pseudonymousId: r.targetId,
    reasonCode: r.reasonCode,
    rulesVersion: r.rulesVersion,
    at: r.at,
  };
}

/** What a retry did. */
export interface RetryOutcome {
  readonly retried: number;
  readonly delivered: number;
  readonly deleted: number;
  readonly stillQuarantined: number;
  /** Records of unregistered/disabled instances or unsent types, left as they are. */
  readonly skipped?: number;
}

/**
 * Retries the records of one channel's (instance, type).
 * @param channel - the channel (its feed is not used).
 * @param writer - writer deps over the channel's target.
 * @param records - records of that (direction, instance, type).
 * @param now - clock.
 * @returns counts.
 */
export async function retryQuarantined(
  channel: Channel,
  writer: WriterDeps,
  records: readonly StoredQuarantine[],
  now: () => Date,
): Promise<RetryOutcome> {
  const ctx = prepareContext(channel, now);
  const wanted = new Map(records.filter((r) => r.op === 'upsert').map((r) => [r.targetId, r]));
  const sourceIds =
    wanted.size === 0 ? [] : await channel.source.searchAll(channel.resourceType, { _elements: 'id', _count: '1000' });
  const changes: ResourceChange[] = [];
  for (const { id } of sourceIds) {
    if (id !== undefined && wanted.has(channel.targetId(channel.resourceType, id))) {
      wanted.delete(channel.targetId(channel.resourceType, id));
      const resource = await channel.source.read(channel.resourceType, id, writer.signal);
      if (resource !== undefined) {
        changes.push({ kind: 'resource', resourceType: channel.resourceType, id, resource });
      }
    }
  }
  // Deletions, and upserts whose resource is gone from the source: delete on the target.
  const gone = [...records.filter((r) => r.op === 'delete'), ...wanted.values()];
  const deletes: DeleteOp[] = gone.flatMap((r) => [
    { kind: 'delete', type: r.resourceType, id: r.targetId, role: 'data' } as const,
    { kind: 'delete', type: 'Basic', id: r.id, role: 'unquarantine' } as const,
  ]);
  const prepared = await preparePage(channel, ctx, changes);
  const written = await writePage(writer, [...prepared.ops, ...deletes], {
    quarantineOp: (rej) =>
      quarantinePut(
        record(channel, ctx, {
          resourceType: rej.op.type,
          targetId: rej.op.id,
          op: rej.op.kind === 'delete' ? 'delete' : 'upsert',
          reasonCode: rej.codes.find((c) => c.startsWith('HAPI-')) ?? 'SINK_ERR_REJECTED',
          detail: `HTTP ${rej.status}`,
        }),
      ),
  });
  const stillQuarantined = prepared.quarantined.length + written.rejections.filter((r) => r.op.role === 'data').length;
  return { retried: records.length, delivered: prepared.counts.resources, deleted: gone.length, stillQuarantined };
}
