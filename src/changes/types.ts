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

/** One page of changes and the cursor that is safe to commit once the page is written. */
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

export interface ChangeFeed {
  readonly kind: string;
  /**
   * Streams pages of changes after `cursor` (undefined = from the beginning).
   * Memory is bounded by one page.
   */
  pages(resourceType: string, cursor: Cursor | undefined, options?: ReadOptions): AsyncIterable<ChangePage>;
}
