/**
 * Public face of src/changes: what changed on a FHIR server since a cursor, for one type.
 *
 * Three kinds behind one interface (ChangeFeed): `aidbox-changes` (Aidbox `$changes`),
 * `fhir-history` (`<Type>/_history`, HAPI), `search-lastupdated` (`_lastUpdated` search,
 * Medplum, with optional deletion stubs), and `auto` (history when `/metadata` declares
 * `history-type` for the type, else search).
 *
 * Guarantee: every change committed on the server is delivered at least once, oldest first,
 * provided (1) no write transaction on the server lasts longer than `settleMs` (clock skew
 * between server nodes included: timestamp feeds compare against the server's own clock via
 * the HTTP `Date` header), and (2) the engine commits a page's cursor only after writing the
 * page. Mechanisms: the committed cursor never passes the settle horizon (server now minus
 * `settleMs`; for Aidbox, head versions seen `settleMs` ago), each poll re-reads from that
 * cursor (overlap), and changes already delivered at or above it are dropped by (id,
 * versionId), whose digests the cursor keeps; ties on one timestamp or version across page
 * boundaries are covered the same way. Memory is bounded by a page plus those digests.
 *
 * Limits: `search-lastupdated` sees current versions only (versions replaced between two
 * polls are never seen, the latest is) and no deletions without `deletionsQuery`; a change
 * can be delivered twice after a restart inside a tie larger than `maxCursorKeys`, or on
 * servers that give no version ids (Aidbox answers without meta), so writes must be
 * idempotent; a transaction longer than `settleMs` can still be missed; `fhir-history`
 * needs `_at=ge..&_at=lt..` ranges (HAPI); `aidbox-changes` needs `pageSize` within
 * Aidbox's `_count` limit.
 */
export type * from './types.ts';
export { FeedKind } from './types.ts';
export {
  createChangeFeed,
  pickKind,
  DEFAULT_MAX_CURSOR_KEYS,
  DEFAULT_PAGE_SIZE,
  DEFAULT_SETTLE_MS,
  MAX_PAGE_SIZE,
  type ChangeFeedDeps,
} from './feed.ts';
export { cursorAt, deliveredUpTo, describeCursor, type CursorSummary } from './cursor.ts';
