/**
 * Contract of a change feed: what changed on one FHIR server, for one resource type, since a
 * cursor. The sync engine only knows this interface, never which kind of server it reads.
 */
import type { Resource } from '@medplum/fhirtypes';

/** Opaque, JSON-safe resume point. Only the feed that produced it can interpret it. */
export type Cursor = string;

/** A resource version that was created or updated. */
export interface ResourceChange {
  readonly kind: 'resource';
  readonly resourceType: string;
  readonly id: string;
  readonly versionId?: string;
  readonly lastUpdated?: string;
  readonly resource: Resource;
}

/** A deletion (the resource body is absent or irrelevant). */
export interface DeletionChange {
  readonly kind: 'deletion';
  readonly resourceType: string;
  readonly id: string;
  readonly versionId?: string;
  readonly lastUpdated?: string;
}

export type Change = ResourceChange | DeletionChange;

/**
 * One page of changes and the cursor that is safe to commit once the page is written.
 * Changes come oldest first; one resource can appear more than once (a pass keeps the latest:
 * `latestPerResource` in src/sync/prepare.ts).
 * A page can be empty: it then only moves the cursor on (e.g. once changes have settled).
 */
export interface ChangePage {
  readonly changes: readonly Change[];
  /** Resume point after this page; never past anything not in this or an earlier page. */
  readonly cursor: Cursor;
}

export interface ReadOptions {
  /** Upper bound on changes per page. */
  readonly pageSize?: number;
  readonly signal?: AbortSignal;
}

/** The kinds of feed; `auto` picks `fhir-history` or `search-lastupdated` from `/metadata`. */
export const FeedKind = {
  AidboxChanges: 'aidbox-changes',
  FhirHistory: 'fhir-history',
  SearchLastUpdated: 'search-lastupdated',
  Auto: 'auto',
} as const;
export type FeedKind = (typeof FeedKind)[keyof typeof FeedKind];

/** How a feed reads one server. Every field is optional except `kind`. */
export interface ChangeFeedConfig {
  readonly kind: FeedKind;
  /**
   * Settle window in ms: the committed cursor never passes changes younger than this (server
   * time for timestamp feeds, local elapsed time since the head was seen for Aidbox). Must
   * exceed the server's longest write transaction plus clock skew between its nodes.
   * @defaultValue 120000
   */
  readonly settleMs?: number;
  /**
   * Changes per page (and per server request).
   * @defaultValue 100
   */
  readonly pageSize?: number;
  /**
   * Most (id, version) keys a cursor may carry for dedupe; size it above the number of changes
   * expected within `settleMs`. Inside a tie larger than this, pages carry the last cursor that
   * fitted (safe; a restart re-reads the tie); inside the settle window, a poll stops before a
   * page whose keys would not fit, and that page comes once older changes have settled.
   * @defaultValue 1000
   */
  readonly maxCursorKeys?: number;
  /**
   * `search-lastupdated` only: extra query that lists deletions as stubs, e.g. Medplum's
   * `_deleted=true`. Without it deletions are invisible to that kind.
   */
  readonly deletionsQuery?: string;
  /**
   * `auto` only: the kind per type that `fhir-sync doctor` found by asking the server (a
   * saved server profile). Wins over the CapabilityStatement, which can declare a history the
   * server then refuses.
   */
  readonly probedKinds?: Readonly<Record<string, 'fhir-history' | 'search-lastupdated'>>;
}

export interface ChangeFeed {
  /** A {@link FeedKind} for the feeds of this module (kept `string` so fakes can name themselves). */
  readonly kind: string;
  /**
   * Streams pages of changes after `cursor` (undefined = from the beginning).
   * Memory is bounded by one page.
   */
  pages(resourceType: string, cursor: Cursor | undefined, options?: ReadOptions): AsyncIterable<ChangePage>;
  /**
   * When the newest change of a type happened on the server (epoch ms), for the lag; undefined
   * when the feed cannot tell (Aidbox versions) or the server has none.
   */
  newestChangeAt?(resourceType: string, signal?: AbortSignal): Promise<number | undefined>;
}
