/**
 * One pass of one channel: read changes from the committed cursor → de-identify (forward)
 * → build transaction bundles → write them to the target → commit the cursor, page by page.
 *
 * Exactly once: the cursor lives on the target (a `Basic`) and each page's cursor is PUT in
 * the same transaction as the page's data, with `ifMatch` on the version this pass read. A
 * crash before the commit leaves neither; after it, both. A replayed page rewrites the same
 * PUT/DELETEs (identical content: no new versions). Nothing here touches Redis.
 *
 * A backfill (`range.since`) reads from an instant instead of the cursor and does not move
 * the cursor: it only rewrites what is already covered (idempotent), and the regular passes
 * go on from where they were.
 */
import type { Logger } from 'pino';
import { deliveredUpTo } from '../changes/index.ts';
import { SYNC_ERR_RANGE_UNSUPPORTED } from '../shared/errors/index.ts';
import type { Channel } from './channel.ts';
import type { JobProgress, SyncRange } from './control.ts';
import { cursorPut, ensureCursor, loadCursor } from './cursor-store.ts';
import type { SyncMetrics } from './metrics.ts';
import { prepareContext, preparePage, quarantinePut, record } from './prepare.ts';
import type { PrepareContext, PrepareCounts, PreparedPage } from './prepare.ts';
import type { CursorState, Direction, StoredCursor } from './state.ts';
import { writePage } from './writer.ts';
import type { PageWriteResult, Rejection, RetryPolicy, WriterDeps } from './writer.ts';
import type { PutOp } from './bundle.ts';

/** What to run. */
export interface PassRequest {
  readonly instanceId: string;
  readonly resourceType: string;
  /** @defaultValue 'forward' */
  readonly direction?: Direction;
  readonly range?: SyncRange;
  readonly signal?: AbortSignal;
  /**
   * Called once the feed has nothing more to prepare (the last commit may still be in flight):
   * a sweep starts its next wave then, so the next types' first reads overlap this one's end.
   */
  readonly onDrained?: () => void;
}

/** I/O of a pass, all injected. */
export interface PassDeps {
  /** The channel for a request; refuses unregistered/disabled instances and unsynced types. */
  readonly openChannel: (req: PassRequest) => Promise<Channel>;
  readonly logger: Logger;
  readonly clock: () => Date;
  readonly retry: RetryPolicy;
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly random: () => number;
  readonly metrics?: SyncMetrics;
  /** Told when a target turns out to cap bundle size (the engine remembers it for later passes). */
  readonly onBundleCap?: (target: string, refused: number, size: number) => void;
}

/** What a pass did (counts and cursors, never content). */
export interface PassSummary {
  readonly instanceId: string;
  readonly resourceType: string;
  readonly direction: Direction;
  readonly rulesVersion: string;
  readonly pages: number;
  readonly resources: number;
  readonly deletes: number;
  readonly quarantined: number;
  readonly dependencies: number;
  readonly skipped: number;
  readonly masked: number;
  readonly dropped: number;
  readonly transactions: number;
  /** Stored (sealed) cursor before and after; undefined for backfills and first passes. */
  readonly cursorBefore?: string;
  readonly cursorAfter?: string;
  readonly durationMs: number;
  /**
   * Seconds between the newest change on the source and the committed cursor's position, read
   * at the end of the pass; undefined for backfills and feeds without instants (Aidbox).
   */
  readonly lagSeconds?: number;
}

/**
 * Runs one pass.
 * @param deps - channel factory, logger, clock, retry policy.
 * @param req - instance, type, direction, optional backfill range.
 * @param onProgress - called after every committed page with running counts.
 * @returns the summary.
 */
export async function runPass(
  deps: PassDeps,
  req: PassRequest,
  onProgress?: (p: JobProgress) => Promise<void> | void,
): Promise<PassSummary> {
  const channel = await deps.openChannel(req);
  const log = deps.logger.child({
    direction: channel.direction,
    instanceId: channel.instanceId,
    resourceType: channel.resourceType,
  });
  const started = deps.clock().getTime();
  const writer = writerDeps(deps, channel, req.signal);
  const pass: PassState = {
    channel,
    writer,
    ctx: prepareContext(channel, deps.clock),
    clock: deps.clock,
    totals: emptyTotals(),
    stored: undefined,
    onProgress,
  };

  // 1. Where to start: the committed cursor on the target (created empty on the first pass), or a backfill instant.
  pass.stored = req.range === undefined ? await ensureCursor(writer, emptyCursor(channel, deps.clock())) : undefined;
  const cursorBefore = pass.stored?.state?.cursor;
  let position = startPosition(channel, req.range, cursorBefore);
  log.info({ cursorBefore: short(cursorBefore), backfill: req.range !== undefined }, 'pass started');

  // 2. Page by page: prepare (skip echoes, de-identify, carry references, pull dependencies),
  //    then write data + cursor in one transaction. Pipelined: page N+1 is read and prepared
  //    while page N is being written; commits stay in feed order with one in flight, and each
  //    commit's precondition is the version the previous commit produced.
  let inFlight: Promise<void> = Promise.resolve();
  let lagSeconds: number | undefined;
  try {
    for await (const page of channel.feed.pages(channel.resourceType, position, {
      pageSize: channel.pageSize,
      signal: req.signal,
    })) {
      if (page.changes.length === 0 && page.cursor === position) {
        continue;
      }
      position = page.cursor;
      const prepared = await preparePage(channel, pass.ctx, page.changes);
      await inFlight; // a failed commit stops the pass here, before anything later is written
      inFlight = commitPage(pass, prepared, page.cursor);
      inFlight.catch(() => undefined); // observed by the next await; no unhandled rejection meanwhile
    }
    req.onDrained?.();
    // The lag probe reads the source only: it runs while the last commit is written.
    // The lag is optional: a failed probe leaves it unknown, and a failed commit must not leave
    // the probe's rejection unhandled.
    const lag = req.range === undefined ? lagOf(channel, position, req.signal).catch(() => undefined) : undefined;
    await inFlight;
    lagSeconds = await lag;
  } finally {
    // A read or prepare failure must not leave a write running behind the failed pass.
    await inFlight.catch(() => undefined);
  }

  // 3. Report: counts, duration, cursors; never content.
  const summary = passSummary(pass, cursorBefore, deps.clock().getTime() - started, lagSeconds);
  log.info({ ...summary, cursorBefore: short(cursorBefore), cursorAfter: short(summary.cursorAfter) }, 'pass finished');
  return summary;
}

/** Running counts of a pass. */
interface PassTotals {
  pages: number;
  resources: number;
  deletes: number;
  quarantined: number;
  dependencies: number;
  skipped: number;
  masked: number;
  dropped: number;
  transactions: number;
}

/** What the commits of one pass share: the cursor version each commit's precondition needs, and the totals. */
interface PassState {
  readonly channel: Channel;
  readonly writer: WriterDeps;
  readonly ctx: PrepareContext;
  readonly clock: () => Date;
  readonly totals: PassTotals;
  /** The committed cursor and its version; undefined for backfills (they do not move the cursor). */
  stored: StoredCursor | undefined;
  readonly onProgress: ((p: JobProgress) => Promise<void> | void) | undefined;
}

function emptyTotals(): PassTotals {
  return {
    pages: 0,
    resources: 0,
    deletes: 0,
    quarantined: 0,
    dependencies: 0,
    skipped: 0,
    masked: 0,
    dropped: 0,
    transactions: 0,
  };
}

/** Writes one prepared page with its cursor in one transaction, then counts it and reports progress. */
async function commitPage(pass: PassState, prepared: PreparedPage, cursor: string): Promise<void> {
  const { channel, writer, totals } = pass;
  const state: CursorState = { ...emptyCursor(channel, pass.clock()), cursor: channel.codec.seal(cursor) };
  const cursorOp = pass.stored === undefined ? undefined : cursorPut(state, pass.stored.versionId);
  const written = await writePage(writer, prepared.ops, {
    cursor: cursorOp,
    quarantineOp: (r) => rejectionRecord(channel, pass.ctx, r),
    confirmCursor: () => confirmCursor(writer, channel, cursor),
  });
  if (pass.stored !== undefined) {
    // A server that reports no version in its answer: read it back rather than lose the
    // precondition of the next commit.
    const versionId =
      written.cursorVersion ??
      (await loadCursor(writer, channel.direction, channel.instanceId, channel.resourceType)).versionId;
    pass.stored = { state, versionId: versionId ?? pass.stored.versionId };
  }
  add(totals, prepared.counts, prepared.quarantined.length, written);
  await pass.onProgress?.({
    pages: totals.pages,
    resources: totals.resources,
    deletes: totals.deletes,
    quarantined: totals.quarantined,
  });
}

function passSummary(
  pass: PassState,
  cursorBefore: string | undefined,
  durationMs: number,
  lagSeconds: number | undefined,
): PassSummary {
  const { channel } = pass;
  return {
    instanceId: channel.instanceId,
    resourceType: channel.resourceType,
    direction: channel.direction,
    rulesVersion: channel.rulesVersion,
    ...pass.totals,
    cursorBefore,
    cursorAfter: pass.stored?.state?.cursor,
    durationMs,
    ...(lagSeconds === undefined ? {} : { lagSeconds }),
  };
}

/**
 * The lag as documented: newest change on the source minus the newest change the committed
 * cursor has delivered (0 once caught up). A failed probe only leaves the lag unknown.
 */
async function lagOf(
  channel: Channel,
  position: string | undefined,
  signal?: AbortSignal,
): Promise<number | undefined> {
  const at = position === undefined ? undefined : deliveredUpTo(position);
  if (at === undefined || channel.feed.newestChangeAt === undefined) {
    return undefined;
  }
  const newest = await channel.feed.newestChangeAt(channel.resourceType, signal).catch(() => undefined);
  return newest === undefined ? undefined : Math.max(0, Math.round((newest - at) / 100) / 10);
}

export function writerDeps(deps: PassDeps, channel: Channel, signal: AbortSignal | undefined): WriterDeps {
  return {
    store: channel.target,
    bundleSize: channel.bundleSize,
    retry: deps.retry,
    sleep: deps.sleep,
    random: deps.random,
    signal,
    onBundleCap: (refused, size) => deps.onBundleCap?.(channel.target.base, refused, size),
    onRetry: (attempt, reason, delayMs) => {
      deps.metrics?.transactionRetried(channel.instanceId, channel.direction);
      deps.logger.warn(
        { instanceId: channel.instanceId, resourceType: channel.resourceType, attempt, reason, delayMs },
        'retrying after a transient failure',
      );
    },
  };
}

function emptyCursor(channel: Channel, now: Date): CursorState {
  return {
    direction: channel.direction,
    instanceId: channel.instanceId,
    resourceType: channel.resourceType,
    updatedAt: now.toISOString(),
    rulesVersion: channel.rulesVersion,
  };
}

function startPosition(channel: Channel, range: SyncRange | undefined, stored: string | undefined): string | undefined {
  if (range === undefined) {
    return stored === undefined ? undefined : channel.codec.open(stored);
  }
  if (range.versionRange !== undefined || range.since === undefined) {
    throw SYNC_ERR_RANGE_UNSUPPORTED.create(
      channel.instanceId,
      range.since === undefined ? 'without since' : 'versionRange',
      channel.feed.kind,
    );
  }
  const cursor = channel.rangeCursor?.(range.since);
  if (cursor === undefined) {
    throw SYNC_ERR_RANGE_UNSUPPORTED.create(channel.instanceId, 'since', channel.feed.kind);
  }
  return cursor;
}

/** After a 412 on a retried commit: did our own first attempt commit this cursor? */
async function confirmCursor(writer: WriterDeps, channel: Channel, cursor: string): Promise<string | undefined> {
  const now = await loadCursor(writer, channel.direction, channel.instanceId, channel.resourceType);
  const value = now.state?.cursor;
  return value !== undefined && channel.codec.open(value) === cursor ? now.versionId : undefined;
}

export function rejectionRecord(channel: Channel, ctx: PrepareContext, r: Rejection): PutOp {
  const hapi = r.codes.find((c) => c.startsWith('HAPI-'));
  const detail = `HTTP ${r.status}${r.codes.length > 0 ? ` ${r.codes.join(',')}` : ''}`;
  return quarantinePut(
    record(channel, ctx, {
      resourceType: r.op.type,
      targetId: r.op.id,
      op: r.op.kind === 'delete' ? 'delete' : 'upsert',
      reasonCode: hapi ?? 'SINK_ERR_REJECTED',
      detail,
    }),
  );
}

function add(totals: PassTotals, counts: PrepareCounts, quarantined: number, written: PageWriteResult): void {
  const rejected = written.rejections.filter((r) => r.op.role === 'data' || r.op.role === 'dependency');
  totals.pages++;
  totals.resources += counts.resources - rejected.filter((r) => r.op.role === 'data' && r.op.kind === 'put').length;
  totals.deletes += counts.deletes - rejected.filter((r) => r.op.kind === 'delete').length;
  totals.dependencies += counts.dependencies - rejected.filter((r) => r.op.role === 'dependency').length;
  totals.quarantined += quarantined + rejected.length;
  totals.skipped += counts.skipped;
  totals.masked += counts.masked;
  totals.dropped += counts.dropped;
  totals.transactions += written.transactions;
}

/** Cursors can be long (sealed, with dedupe keys): logs get the head only. */
function short(cursor: string | undefined): string | undefined {
  return cursor === undefined ? undefined : cursor.length > 48 ? `${cursor.slice(0, 48)}…(${cursor.length})` : cursor;
}
