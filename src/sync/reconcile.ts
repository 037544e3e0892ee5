/**
 * Reconciliation of one forward channel: finds what the change feed missed and repairs it.
 *
 * Why: a `_lastUpdated` feed never sees a resource whose `meta.lastUpdated` was back-dated
 * behind the cursor (a restore, an import keeping its timestamps), nor an update that landed
 * while the cursor had already moved past its instant. History feeds can have gaps too
 * (a cursor moved by hand, a global copy deleted). Reconciliation compares the two sides
 * directly instead of trusting the feed.
 *
 * How, per page of the local (`_elements=id,meta`, so a page is ids and timestamps only):
 * 1. the global id of each is its pseudonym (the channel's `targetId`, the anonymizer's keyed
 *    function): the global is searched for exactly those ids, one request per page;
 * 2. missing on the global (or deleted there), or older there than the local's last update
 *    (the global copy was written before the local's latest change): the full resources are
 *    read back from the local and go through the normal prepare → write path (same
 *    de-identification, dependencies, quarantine); an identical re-PUT makes no new version,
 *    so a false "stale" (clock skew) costs a write, never a wrong value.
 * Memory is one page at a time; cost is linear (two searches per page, plus the repairs).
 * The cursor is not touched: the regular passes go on from where they were.
 *
 * Not repaired: resources deleted on the local but still on the global. The global does not
 * record which instance a pseudonymous resource came from, and a `_lastUpdated` search lists
 * no deleted resources, so there is no sound way to tell an orphan from another instance's
 * resource without an id ledger. With `fhir-history` (and Medplum's `deletionsQuery`) the
 * feed carries deletions itself.
 */
import type { Resource } from '@medplum/fhirtypes';
import type { Change } from '../changes/index.ts';
import type { Channel } from './channel.ts';
import type { FhirStore } from './fhir-store.ts';
import type { JobProgress } from './control.ts';
import type { PassDeps, PassRequest } from './pass.ts';
import { rejectionRecord, writerDeps } from './pass.ts';
import { prepareContext, preparePage } from './prepare.ts';
import { writePage } from './writer.ts';

/** What a reconciliation did (counts only, never content). */
export interface ReconcileSummary {
  readonly instanceId: string;
  readonly resourceType: string;
  /** Local resources compared. */
  readonly checked: number;
  /** Absent (or deleted) on the global. */
  readonly missing: number;
  /** Older on the global than the local's last update. */
  readonly stale: number;
  /** Written to the global by the repair (after de-identification). */
  readonly repaired: number;
  readonly quarantined: number;
  readonly transactions: number;
  readonly durationMs: number;
}

/**
 * Runs one reconciliation of (instance, type), forward.
 * @param deps - the same deps as a pass.
 * @param req - instance and type (direction and range are ignored: forward, whole type).
 * @param onProgress - called after every page with running counts.
 * @returns the summary.
 */
export async function runReconcile(
  deps: PassDeps,
  req: PassRequest,
  onProgress?: (p: JobProgress) => Promise<void> | void,
): Promise<ReconcileSummary> {
  const channel = await deps.openChannel({ ...req, direction: 'forward', range: undefined });
  const started = deps.clock().getTime();
  const writer = writerDeps(deps, channel, req.signal);
  const ctx = prepareContext(channel, deps.clock);
  const totals = { checked: 0, missing: 0, stale: 0, repaired: 0, quarantined: 0, transactions: 0, pages: 0 };
  const type = channel.resourceType;
  const query = { _elements: 'id,meta', _count: String(channel.pageSize) };
  for await (const page of channel.source.searchPages(type, query, req.signal)) {
    const live = page.filter((r) => typeof r.id === 'string' && !channel.skip(r));
    totals.checked += live.length;
    const gaps = await findGaps(channel, live, req.signal);
    totals.missing += gaps.missing;
    totals.stale += gaps.stale;
    if (gaps.ids.length > 0) {
      const full = await byIds(channel.source, type, gaps.ids, {}, req.signal);
      const changes: Change[] = full.map((resource) => ({
        kind: 'resource',
        resourceType: type,
        id: resource.id!,
        resource,
      }));
      const prepared = await preparePage(channel, ctx, changes);
      const written = await writePage(writer, prepared.ops, { quarantineOp: (r) => rejectionRecord(channel, ctx, r) });
      const rejected = written.rejections.filter((r) => r.op.role === 'data').length;
      totals.repaired += prepared.counts.resources - rejected;
      totals.quarantined += prepared.quarantined.length + rejected;
      totals.transactions += written.transactions;
    }
    totals.pages++;
    await onProgress?.({
      pages: totals.pages,
      resources: totals.repaired,
      deletes: 0,
      quarantined: totals.quarantined,
    });
  }
  const { pages: _pages, ...counts } = totals;
  const summary: ReconcileSummary = {
    instanceId: channel.instanceId,
    resourceType: type,
    ...counts,
    durationMs: deps.clock().getTime() - started,
  };
  deps.logger.info({ ...summary }, 'reconciliation finished');
  return summary;
}

/** The local ids of a page that are missing or stale on the global. */
async function findGaps(
  channel: Pick<Channel, 'targetId' | 'target' | 'resourceType'>,
  live: readonly Resource[],
  signal: AbortSignal | undefined,
): Promise<{ ids: string[]; missing: number; stale: number }> {
  if (live.length === 0) {
    return { ids: [], missing: 0, stale: 0 };
  }
  const type = channel.resourceType;
  const targetIds = live.map((r) => channel.targetId(type, r.id!));
  const onGlobal = await byIds(channel.target, type, targetIds, { _elements: 'id,meta' }, signal);
  const globalAt = new Map(onGlobal.map((r) => [r.id, Date.parse(r.meta?.lastUpdated ?? '')]));
  const out = { ids: [] as string[], missing: 0, stale: 0 };
  live.forEach((r, i) => {
    const at = globalAt.get(targetIds[i]);
    if (at === undefined) {
      out.missing++;
      out.ids.push(r.id!);
    } else if (Date.parse(r.meta?.lastUpdated ?? '') > at) {
      out.stale++;
      out.ids.push(r.id!);
    }
  });
  return out;
}

/** Ids per `_id` search: keeps URLs well under common server limits (~8 KB) at any page size. */
const IDS_PER_SEARCH = 100;

async function byIds(
  store: FhirStore,
  type: string,
  ids: readonly string[],
  extra: Readonly<Record<string, string>>,
  signal: AbortSignal | undefined,
): Promise<Resource[]> {
  const out: Resource[] = [];
  for (let i = 0; i < ids.length; i += IDS_PER_SEARCH) {
    const chunk = ids.slice(i, i + IDS_PER_SEARCH);
    out.push(
      ...(await store.searchAll(type, { ...extra, _id: chunk.join(','), _count: String(chunk.length) }, signal)),
    );
  }
  return out;
}
