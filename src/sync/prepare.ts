/**
 * Turning one page of changes into write ops for the target (no writes here; reads only):
 *
 * 1. latest change per identity (a deletion followed by a resurrection is the resource);
 * 2. resources the other side owns are skipped (`channel.skip`, the echo rule);
 * 3. the batch is transformed (de-identified forward); failures become quarantine records;
 * 4. references are carried per `channel.plan` (link / keep global id / mask / drop);
 * 5. dependencies: synced resources referenced but neither in the page nor on the target
 *    are read from the source, transformed and written in the same bundle, before the
 *    resources that need them (up to a few levels deep), so the target's referential
 *    integrity holds whatever order the types are synced in;
 * 6. a resource whose dependency failed is quarantined too (it would be refused anyway);
 * 7. quarantine records of resources that now go through are deleted in the same bundle.
 */
import type { Resource } from '@medplum/fhirtypes';
import {
  SYNC_ERR_CHANGE_INVALID,
  SYNC_ERR_DEPENDENCY_QUARANTINED,
  SYNC_ERR_TOO_DEEP,
  SYNC_ERR_TRANSFORM_MISSING,
} from '../shared/errors/index.ts';
import { MAX_RESOURCE_DEPTH, nestsDeeperThan } from '../shared/json-depth.ts';
import type { Change, ResourceChange } from '../changes/index.ts';
import { keyOf } from './bundle.ts';
import type { DeleteOp, PutOp, WriteOp } from './bundle.ts';
import type { Channel, RefPlan } from './channel.ts';
import { outgoingMeta } from './marks.ts';
import { collectReferences, lazyIdSets, rewriteReferences } from './references.ts';
import type { RefDecision } from './references.ts';
import { QUARANTINE_SCOPE_SYSTEM, quarantineId, quarantineResource, scopeValue } from './state.ts';
import type { QuarantineRecord } from './state.ts';

/** Reason code of a resource held back because something it references was quarantined. */
export const DEPENDENCY_QUARANTINED = SYNC_ERR_DEPENDENCY_QUARANTINED.code;

/** Levels of dependencies pulled in behind one page. */
const MAX_DEPENDENCY_DEPTH = 4;
/** Ids per existence search. */
const IDS_PER_SEARCH = 50;

/** Counts of one prepared page. */
export interface PrepareCounts {
  resources: number;
  deletes: number;
  dependencies: number;
  skipped: number;
  masked: number;
  dropped: number;
}

/** A page ready to write. */
export interface PreparedPage {
  readonly ops: WriteOp[];
  readonly quarantined: QuarantineRecord[];
  readonly counts: PrepareCounts;
}

/** Per-pass memory shared by the pages of one pass. */
export interface PrepareContext {
  readonly now: () => Date;
  /** Quarantine record ids present on the target, per type (loaded on first use). */
  readonly quarantinedIds: (type: string) => Promise<ReadonlySet<string>>;
}

/**
 * A context for one pass of a channel.
 * @param channel - the channel.
 * @param now - clock.
 * @returns the context.
 */
export function prepareContext(channel: Channel, now: () => Date): PrepareContext {
  const byType = new Map<string, (t: string) => Promise<ReadonlySet<string>>>();
  return {
    now,
    quarantinedIds: (type) => {
      let load = byType.get(type);
      if (load === undefined) {
        load = lazyIdSets(channel.target, {
          identifier: `${QUARANTINE_SCOPE_SYSTEM}|${scopeValue(channel.direction, channel.instanceId, type)}`,
        });
        byType.set(type, load);
      }
      return load('Basic');
    },
  };
}

interface Planned {
  put: PutOp;
  /** Target keys of dependencies with their source (type, id). */
  deps: Map<string, { type: string; id: string }>;
}

/**
 * Prepares one page.
 * @param channel - the channel.
 * @param ctx - the pass context.
 * @param changes - the page's changes, oldest first.
 * @returns ops, quarantine records and counts.
 */
export async function preparePage(
  channel: Channel,
  ctx: PrepareContext,
  changes: readonly Change[],
): Promise<PreparedPage> {
  const counts: PrepareCounts = { resources: 0, deletes: 0, dependencies: 0, skipped: 0, masked: 0, dropped: 0 };
  const quarantined: QuarantineRecord[] = [];
  const planned = new Map<string, Planned>();
  const failed = new Set<string>();
  const fail = (type: string, id: string, code: string, detail?: string): void => {
    failed.add(`${type}/${id}`);
    quarantined.push(
      record(channel, ctx, { resourceType: type, targetId: id, op: 'upsert', reasonCode: code, detail }),
    );
  };
  // A change without a usable id is quarantined under its pseudonym; the page goes on.
  const valid = changes.filter((c) => {
    if (validId(c.id)) {
      return true;
    }
    fail(c.resourceType, channel.targetId(c.resourceType, String(c.id)), SYNC_ERR_CHANGE_INVALID.code);
    return false;
  });
  const latest = latestPerResource(valid);
  const resources = latest.filter((c): c is ResourceChange => c.kind === 'resource');
  const kept = resources.filter((c) => !channel.skip(c.resource));
  counts.skipped = resources.length - kept.length;

  await transformBatch(
    channel,
    kept.map((c) => c.resource),
    'data',
    planned,
    fail,
    counts,
  );
  const deletes: DeleteOp[] = latest
    .filter((c) => c.kind === 'deletion')
    .map((c) => ({ kind: 'delete', type: c.resourceType, id: channel.targetId(c.resourceType, c.id), role: 'data' }));
  counts.resources = planned.size;
  counts.deletes = deletes.length;

  await pullDependencies(channel, planned, new Set(deletes.map(keyOf)), fail, counts);
  holdBackDependents(channel, ctx, planned, failed, quarantined);

  const puts = [...planned.values()].map((p) => p.put);
  counts.resources = puts.filter((p) => p.role === 'data').length;
  counts.dependencies = puts.length - counts.resources;
  const unquarantine = await unquarantineOps(channel, ctx, [...puts, ...deletes]);
  const quarantineOps = quarantined.map((q) => quarantinePut(q));
  return { ops: [...puts, ...deletes, ...quarantineOps, ...unquarantine], quarantined, counts };
}

function validId(id: unknown): boolean {
  return typeof id === 'string' && /^[A-Za-z0-9\-.]{1,64}$/.test(id);
}

/** Transforms a batch and plans its PUTs (references carried, id and meta set). */
async function transformBatch(
  channel: Channel,
  sources: readonly Resource[],
  role: 'data' | 'dependency',
  planned: Map<string, Planned>,
  fail: (type: string, id: string, code: string, detail?: string) => void,
  counts: PrepareCounts,
): Promise<void> {
  // Nothing recursive may see a resource nested past the cap (it would exhaust the stack and
  // fail the page): it is quarantined here, whatever the channel's transform.
  const usable = sources.filter((src) => {
    if (!nestsDeeperThan(src, MAX_RESOURCE_DEPTH)) {
      return true;
    }
    fail(src.resourceType, channel.targetId(src.resourceType, src.id ?? ''), SYNC_ERR_TOO_DEEP.code);
    return false;
  });
  const plans = await referencePlans(channel, usable);
  const outcomes = await channel.transform(usable);
  usable.forEach((src, i) => {
    const type = src.resourceType;
    const id = channel.targetId(type, src.id ?? '');
    const outcome = outcomes[i];
    if (outcome === undefined || !outcome.ok) {
      fail(
        type,
        id,
        outcome?.code ?? SYNC_ERR_TRANSFORM_MISSING.code,
        outcome?.ok === false ? outcome.location : undefined,
      );
      return;
    }
    const deps = new Map<string, { type: string; id: string }>();
    const { resource, counts: c } = rewriteReferences(outcome.resource, (parsed) => {
      const found = parsed === undefined || parsed.absolute ? undefined : plans.get(`${parsed.type}/${parsed.id}`);
      return decisionOf(found, deps);
    });
    counts.masked += c.masked;
    counts.dropped += c.dropped;
    deps.delete(`${type}/${id}`);
    const put: PutOp = {
      kind: 'put',
      type,
      id,
      resource: { ...resource, id, meta: outgoingMeta(resource.meta, channel.mark) },
      deps: [...deps.keys()],
      role,
    };
    planned.set(keyOf(put), { put, deps });
  });
}

/**
 * Reference plans of a batch, keyed by the form each reference takes in the transform's output
 * (`Type/` + channel.outputId): a reference of the output that matches no key came from
 * nowhere in the source and is masked.
 */
async function referencePlans(
  channel: Channel,
  sources: readonly Resource[],
): Promise<Map<string, RefPlan & { source?: { type: string; id: string } }>> {
  const out = new Map<string, RefPlan & { source?: { type: string; id: string } }>();
  for (const src of sources) {
    for (const ref of collectReferences(src)) {
      const key = `${ref.type}/${channel.outputId(ref.type, ref.id)}`;
      if (ref.absolute || out.has(key)) {
        continue;
      }
      out.set(key, { ...(await channel.plan(ref.type, ref.id)), source: { type: ref.type, id: ref.id } });
    }
  }
  return out;
}

function decisionOf(
  plan: (RefPlan & { source?: { type: string; id: string } }) | undefined,
  deps: Map<string, { type: string; id: string }>,
): RefDecision {
  if (plan === undefined) {
    return { action: 'mask' }; // unknown provenance (absolute URL, urn:, or made up by the transform)
  }
  if (plan.action !== 'link') {
    return plan;
  }
  if (plan.dependency && plan.source !== undefined) {
    deps.set(plan.targetRef, plan.source);
  }
  return { action: 'rewrite', reference: plan.targetRef };
}

/** Reads, transforms and plans dependencies the target lacks, level by level. */
async function pullDependencies(
  channel: Channel,
  planned: Map<string, Planned>,
  deleted: ReadonlySet<string>,
  fail: (type: string, id: string, code: string, detail?: string) => void,
  counts: PrepareCounts,
): Promise<void> {
  const checked = new Set<string>();
  for (let depth = 0; depth < MAX_DEPENDENCY_DEPTH; depth++) {
    const wanted = new Map<string, { type: string; id: string }>();
    for (const p of planned.values()) {
      for (const [key, src] of p.deps) {
        if (!planned.has(key) && !deleted.has(key) && !checked.has(key)) {
          wanted.set(key, src);
        }
      }
    }
    if (wanted.size === 0) {
      return;
    }
    wanted.forEach((_, k) => checked.add(k));
    const missing = await missingOnTarget(channel, [...wanted.keys()]);
    const sources: Resource[] = [];
    for (const key of missing) {
      const src = wanted.get(key)!;
      const resource = await channel.source.read(src.type, src.id);
      if (resource !== undefined && !channel.skip(resource)) {
        sources.push(resource);
      }
    }
    const before = planned.size;
    await transformBatch(channel, sources, 'dependency', planned, fail, counts);
    if (planned.size === before) {
      return;
    }
  }
}

/** Which `Type/id` keys the target does not have. */
async function missingOnTarget(channel: Channel, keys: readonly string[]): Promise<string[]> {
  const byType = new Map<string, string[]>();
  for (const key of keys) {
    const [type, id] = key.split('/') as [string, string];
    byType.set(type, [...(byType.get(type) ?? []), id]);
  }
  const missing: string[] = [];
  for (const [type, ids] of byType) {
    for (let i = 0; i < ids.length; i += IDS_PER_SEARCH) {
      const chunk = ids.slice(i, i + IDS_PER_SEARCH);
      const found = await channel.target.searchAll(type, {
        _id: chunk.join(','),
        _elements: 'id',
        _count: String(IDS_PER_SEARCH),
      });
      const present = new Set(found.map((r) => r.id));
      missing.push(...chunk.filter((id) => !present.has(id)).map((id) => `${type}/${id}`));
    }
  }
  return missing;
}

/** Quarantines, to a fixpoint, every planned PUT that depends on a failed key. */
function holdBackDependents(
  channel: Channel,
  ctx: PrepareContext,
  planned: Map<string, Planned>,
  failed: Set<string>,
  out: QuarantineRecord[],
): void {
  let changed = true;
  while (changed) {
    changed = false;
    for (const [key, p] of planned) {
      if ([...p.deps.keys()].some((d) => failed.has(d))) {
        planned.delete(key);
        failed.add(key);
        out.push(
          record(channel, ctx, {
            resourceType: p.put.type,
            targetId: p.put.id,
            op: 'upsert',
            reasonCode: DEPENDENCY_QUARANTINED,
          }),
        );
        changed = true;
      }
    }
  }
}

async function unquarantineOps(channel: Channel, ctx: PrepareContext, ops: readonly WriteOp[]): Promise<DeleteOp[]> {
  const out: DeleteOp[] = [];
  for (const op of ops) {
    const qid = quarantineId(channel.direction, channel.instanceId, op.type, op.id);
    if ((await ctx.quarantinedIds(op.type)).has(qid)) {
      out.push({ kind: 'delete', type: 'Basic', id: qid, role: 'unquarantine' });
    }
  }
  return out;
}

/**
 * A quarantine record for this channel.
 * @param channel - the channel.
 * @param ctx - clock source.
 * @param r - what and why.
 * @returns the record.
 */
export function record(
  channel: Channel,
  ctx: Pick<PrepareContext, 'now'>,
  r: Pick<QuarantineRecord, 'resourceType' | 'targetId' | 'op' | 'reasonCode' | 'detail'>,
): QuarantineRecord {
  return {
    direction: channel.direction,
    instanceId: channel.instanceId,
    rulesVersion: channel.rulesVersion,
    at: ctx.now().toISOString(),
    ...r,
  };
}

/**
 * The PUT of a quarantine record.
 * @param q - the record.
 * @returns the op.
 */
export function quarantinePut(q: QuarantineRecord): PutOp {
  const resource = quarantineResource(q);
  return { kind: 'put', type: 'Basic', id: resource.id!, resource, role: 'quarantine' };
}

// ---- One change per resource ----
/*
 * Reduces a run of changes to what a writer must apply: one change per resource, the latest.
 * A transaction may not touch one resource twice (HAPI-0535, Medplum, Azure), and the global
 * server only needs the final state. "Latest" is the later version when both versionIds are
 * integers, else the later position in feed order (feeds deliver oldest first). A deletion
 * that is the latest survives; a resurrection (a version after a deletion) wins as a resource.
 */

/**
 * The latest change per (resourceType, id), in the order of their last appearance.
 * @param changes - changes in feed order.
 * @returns at most one change per resource.
 */
export function latestPerResource(changes: readonly Change[]): Change[] {
  const winner = new Map<string, number>();
  changes.forEach((change, i) => {
    const key = `${change.resourceType}/${change.id}`;
    const current = winner.get(key);
    if (current === undefined || !isOlder(change, changes[current] as Change)) {
      winner.set(key, i);
    }
  });
  const keep = new Set(winner.values());
  return changes.filter((_, i) => keep.has(i));
}

function isOlder(candidate: Change, current: Change): boolean {
  const a = numericVersion(candidate.versionId);
  const b = numericVersion(current.versionId);
  return a !== undefined && b !== undefined && a < b;
}

function numericVersion(v: string | undefined): number | undefined {
  return v !== undefined && /^\d{1,15}$/.test(v) ? Number(v) : undefined;
}
