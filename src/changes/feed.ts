/**
 * Builds a ChangeFeed from configuration: checks the options once, picks the kind (`auto`
 * asks the server's CapabilityStatement per type), and runs one poll as
 * reader -> chunks -> assemble() -> pages.
 */
import type { MedplumClient } from '@medplum/core';
import type { CapabilityStatement } from '@medplum/fhirtypes';
import { FEED_ERR_BAD_RESPONSE, FEED_ERR_CONFIG } from '../shared/errors/index.ts';
import { urlPath } from '../shared/fhir-client.ts';
import { aidboxChunks } from './aidbox.ts';
import { decodeCursor } from './cursor.ts';
import { historySource } from './history.ts';
import { getJson } from '../shared/fhir-http.ts';
import { searchChunks } from './search.ts';
import { assemble, keyDigest, Tracker, type Chunk } from './tracker.ts';
import {
  FeedKind,
  type ChangeFeed,
  type ChangeFeedConfig,
  type ChangePage,
  type Cursor,
  type ReadOptions,
} from './types.ts';
import { walkWindows } from './windows.ts';
import { newestChangeAt } from './newest.ts';

export const DEFAULT_SETTLE_MS = 120_000;
export const DEFAULT_PAGE_SIZE = 100;
export const DEFAULT_MAX_CURSOR_KEYS = 1000;
/** Servers commonly cap `_count` at 1000 (Medplum, the HAPI test servers). */
export const MAX_PAGE_SIZE = 1000;

/** I/O of a feed. */
export interface ChangeFeedDeps {
  /** A client from `createFhirClient` (shared/fhir-client.ts). */
  readonly client: MedplumClient;
  /** Local clock, epoch ms. @defaultValue Date.now */
  readonly clock?: () => number;
  /**
   * HMAC key for the (id, version) digests kept in cursors (from the environment, like every
   * secret). Without it cursors keep plain SHA-256 digests, which a guesser could test ids against.
   */
  readonly cursorKeySecret?: string;
}

type ConcreteKind = Exclude<FeedKind, 'auto'>;

interface Settings {
  readonly kind: FeedKind;
  readonly settleMs: number;
  readonly pageSize: number;
  readonly maxCursorKeys: number;
  readonly deletionsQuery: string | undefined;
}

/**
 * Creates a change feed for one FHIR server.
 * @param config - kind and options (validated here; every problem is reported at once).
 * @param deps - the FHIR client and a clock.
 * @returns the feed.
 */
export function createChangeFeed(config: ChangeFeedConfig, deps: ChangeFeedDeps): ChangeFeed {
  const settings = checkConfig(config);
  const clock = deps.clock ?? Date.now;
  const digest = keyDigest(deps.cursorKeySecret);
  let capabilities: Promise<CapabilityStatement> | undefined;
  const kindFor = async (resourceType: string, signal: AbortSignal | undefined): Promise<ConcreteKind> => {
    if (settings.kind !== FeedKind.Auto) {
      return settings.kind;
    }
    const probed = config.probedKinds?.[resourceType];
    if (probed === FeedKind.FhirHistory || probed === FeedKind.SearchLastUpdated) {
      return probed;
    }
    capabilities ??= readCapabilities(deps.client, signal, clock).catch((err: unknown) => {
      capabilities = undefined;
      throw err;
    });
    return pickKind(await capabilities, resourceType);
  };
  return Object.freeze({
    kind: settings.kind,
    pages: (resourceType: string, cursor: Cursor | undefined, options: ReadOptions = {}): AsyncIterable<ChangePage> =>
      run({ settings, client: deps.client, clock, digest, kindFor }, resourceType, cursor, options),
    newestChangeAt: async (resourceType: string, signal?: AbortSignal): Promise<number | undefined> =>
      newestChangeAt(deps.client, await kindFor(resourceType, signal), resourceType, signal, clock),
  });
}

interface RunContext {
  readonly settings: Settings;
  readonly client: MedplumClient;
  readonly clock: () => number;
  readonly digest: (key: string) => string;
  readonly kindFor: (resourceType: string, signal: AbortSignal | undefined) => Promise<ConcreteKind>;
}

async function* run(
  ctx: RunContext,
  resourceType: string,
  cursor: Cursor | undefined,
  options: ReadOptions,
): AsyncGenerator<ChangePage> {
  if (!/^[A-Z][A-Za-z]{1,63}$/.test(resourceType)) {
    throw FEED_ERR_CONFIG.create('resourceType', 'not a FHIR resource type name');
  }
  const pageSize = options.pageSize ?? ctx.settings.pageSize;
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
    throw FEED_ERR_CONFIG.create('pageSize', `must be an integer from 1 to ${MAX_PAGE_SIZE}`);
  }
  const kind = await ctx.kindFor(resourceType, options.signal);
  const tracker = new Tracker(
    decodeCursor(cursor, kind === FeedKind.AidboxChanges ? 'ver' : 'ts', kind),
    ctx.settings.maxCursorKeys,
    ctx.digest,
  );
  const chunks = readerFor(kind, ctx, resourceType, pageSize, options.signal, tracker);
  yield* assemble(chunks, tracker, pageSize, cursor);
}

function readerFor(
  kind: ConcreteKind,
  ctx: RunContext,
  resourceType: string,
  pageSize: number,
  signal: AbortSignal | undefined,
  tracker: Tracker,
): AsyncIterable<Chunk> {
  const { client, clock, settings } = ctx;
  // The horizon comes from the first answer only: a claim made by a read may only be combined
  // with a horizon fixed no later than that read.
  let serverNow: number | undefined;
  const onServerTime = (ms: number): void => {
    if (serverNow === undefined) {
      tracker.raiseHorizon(ms - settings.settleMs);
    }
    serverNow = Math.max(serverNow ?? ms, ms);
  };
  switch (kind) {
    case FeedKind.AidboxChanges:
      return aidboxChunks({ client, resourceType, signal, clock, settleMs: settings.settleMs, pageSize }, tracker);
    case FeedKind.FhirHistory:
      return walkWindows(historySource({ client, resourceType, signal, clock, onServerTime }), {
        start: tracker.position,
        end: Number.POSITIVE_INFINITY,
        openFrom: () => serverNow,
        pageSize,
      });
    case FeedKind.SearchLastUpdated:
      return searchChunks(
        { client, resourceType, signal, clock, onServerTime, pageSize, deletionsQuery: settings.deletionsQuery },
        tracker.position,
      );
    default:
      return kind satisfies never;
  }
}

async function readCapabilities(
  client: MedplumClient,
  signal: AbortSignal | undefined,
  clock: () => number,
): Promise<CapabilityStatement> {
  const url = client.fhirUrl('metadata').toString();
  const answer = await getJson(client, url, signal, clock);
  const cs = answer.body as CapabilityStatement | undefined;
  if (cs?.resourceType !== 'CapabilityStatement') {
    throw FEED_ERR_BAD_RESPONSE.create(urlPath(url), 'not a CapabilityStatement');
  }
  return cs;
}

/**
 * The kind `auto` picks for a type: `fhir-history` when the server declares `history-type`
 * for it, else `search-lastupdated`.
 * @param cs - the server's CapabilityStatement.
 * @param resourceType - the type.
 * @returns the concrete kind.
 */
export function pickKind(cs: CapabilityStatement, resourceType: string): ConcreteKind {
  const rest = cs.rest?.find((r) => r.mode === 'server') ?? cs.rest?.[0];
  const entry = rest?.resource?.find((r) => r.type === resourceType);
  const history = entry?.interaction?.some((i) => i.code === 'history-type') ?? false;
  return history ? FeedKind.FhirHistory : FeedKind.SearchLastUpdated;
}

function checkConfig(config: ChangeFeedConfig): Settings {
  const problems: string[] = [];
  const int = (name: string, value: number | undefined, fallback: number, min: number, max: number): number => {
    const v = value ?? fallback;
    if (!Number.isInteger(v) || v < min || v > max) {
      problems.push(`${name}: must be an integer from ${min} to ${max}`);
    }
    return v;
  };
  if (!Object.values(FeedKind).includes(config.kind)) {
    problems.push(`kind: must be one of ${Object.values(FeedKind).join(', ')}`);
  }
  const settleMs = int('settleMs', config.settleMs, DEFAULT_SETTLE_MS, 0, 24 * 3_600_000);
  const pageSize = int('pageSize', config.pageSize, DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE);
  const maxCursorKeys = int('maxCursorKeys', config.maxCursorKeys, DEFAULT_MAX_CURSOR_KEYS, 1, 1_000_000);
  const deletionsQuery = config.deletionsQuery;
  if (deletionsQuery !== undefined) {
    if (config.kind !== FeedKind.SearchLastUpdated && config.kind !== FeedKind.Auto) {
      problems.push('deletionsQuery: only used by search-lastupdated');
    }
    if (!/^[A-Za-z_][\w.:-]*=[^&#\s]+(&[A-Za-z_][\w.:-]*=[^&#\s]+)*$/.test(deletionsQuery)) {
      problems.push('deletionsQuery: must be name=value pairs joined by &');
    } else if (/(^|&)(_lastUpdated|_sort|_count)[=:]/.test(deletionsQuery)) {
      problems.push('deletionsQuery: must not set _lastUpdated, _sort or _count');
    }
  }
  if (problems.length > 0) {
    throw FEED_ERR_CONFIG.createWith({ problems }, ['change feed', problems.join('; ')]);
  }
  return Object.freeze({ kind: config.kind, settleMs, pageSize, maxCursorKeys, deletionsQuery });
}
