/**
 * Reading a server's answer to a transaction (pure). Every entry's status is checked, not
 * only the HTTP status: some servers (Medplum without the transaction feature) answer 200
 * with failed entries. A DELETE answered 404 or 410 counts as done. Server diagnostics can
 * echo submitted values, so only message codes (`HAPI-0535`) and issue codes are kept.
 */
import type { Bundle, OperationOutcome } from '@medplum/fhirtypes';
import type { WriteOp } from './bundle.ts';

/** The outcome of one entry. */
export interface EntryResult {
  readonly status: number;
  /** Version id the server reports (from `etag` or `location`), when any. */
  readonly versionId?: string;
}

/** What to do with a transaction's answer. */
export type TransactionAnswer =
  /** Every entry done. */
  | { readonly kind: 'ok'; readonly entries: readonly EntryResult[] }
  /** The server refused the whole transaction (4xx other than 412/429), or some entries of a non-atomic answer. */
  | {
      readonly kind: 'rejected';
      readonly status: number;
      readonly codes: readonly string[];
      readonly failedEntries?: readonly number[];
    }
  /** The cursor's ifMatch failed: another pass moved it. */
  | { readonly kind: 'conflict'; readonly status: number }
  /** 5xx, 429, or a malformed answer: try again later. */
  | { readonly kind: 'retry'; readonly status: number; readonly reason: string };

/** Server message codes of a version conflict (HAPI: HAPI-0989 wrapped in HAPI-0550). */
const VERSION_CONFLICT_CODES: ReadonlySet<string> = new Set(['HAPI-0989']);

/**
 * Classifies an HTTP answer to a transaction POST.
 * @param status - HTTP status.
 * @param body - parsed JSON body (or undefined).
 * @param ops - the ops the bundle was built from (entry order).
 * @returns the classification.
 */
export function readTransactionAnswer(status: number, body: unknown, ops: readonly WriteOp[]): TransactionAnswer {
  if (status === 429 || status >= 500) {
    return { kind: 'retry', status, reason: `HTTP ${status}` };
  }
  if (status === 412) {
    return { kind: 'conflict', status };
  }
  if (status >= 400) {
    const codes = outcomeCodes(body);
    // HAPI answers a failed ifMatch with 409 HAPI-0989 ("not the current version"), not 412.
    return status === 409 && codes.some((c) => VERSION_CONFLICT_CODES.has(c))
      ? { kind: 'conflict', status }
      : { kind: 'rejected', status, codes };
  }
  const bundle = body as Bundle | undefined;
  if (bundle?.resourceType !== 'Bundle' || !Array.isArray(bundle.entry) || bundle.entry.length !== ops.length) {
    return { kind: 'retry', status, reason: 'not a transaction-response matching the request' };
  }
  const entries = bundle.entry.map((e) => ({
    status: parseStatus(e.response?.status),
    versionId: versionOf(e.response?.etag, e.response?.location, e.resource?.meta?.versionId),
  }));
  const failed: number[] = [];
  for (let i = 0; i < entries.length; i++) {
    const s = entries[i]!.status;
    const op = ops[i]!;
    if (op.kind === 'delete' && (s === 404 || s === 410)) {
      continue;
    }
    if (s === 412 && op.role === 'cursor') {
      return { kind: 'conflict', status: s };
    }
    if (s === 429 || s >= 500 || Number.isNaN(s)) {
      return { kind: 'retry', status: s, reason: `entry ${i} answered ${Number.isNaN(s) ? 'no status' : s}` };
    }
    if (s >= 300) {
      failed.push(i);
    }
  }
  if (failed.length > 0) {
    const firstOutcome = bundle.entry[failed[0]!]?.response?.outcome;
    return {
      kind: 'rejected',
      status: entries[failed[0]!]!.status,
      codes: outcomeCodes(firstOutcome),
      failedEntries: failed,
    };
  }
  return { kind: 'ok', entries };
}

/**
 * Value-free codes of an OperationOutcome: issue codes and `HAPI-nnnn` message codes.
 * @param body - a parsed body.
 * @returns codes such as `processing`, `HAPI-0535`.
 */
export function outcomeCodes(body: unknown): string[] {
  const outcome = body as OperationOutcome | undefined;
  if (outcome?.resourceType !== 'OperationOutcome') {
    return [];
  }
  const codes = new Set<string>();
  for (const issue of outcome.issue ?? []) {
    if (typeof issue.code === 'string') {
      codes.add(issue.code);
    }
    for (const hapi of (issue.diagnostics ?? '').matchAll(/\bHAPI-\d{4}\b/g)) {
      codes.add(hapi[0]);
    }
  }
  return [...codes];
}

function parseStatus(s: string | undefined): number {
  const m = /^\s*(\d{3})/.exec(s ?? '');
  return m === null ? Number.NaN : Number(m[1]);
}

/**
 * The version id of a transaction-response entry, from wherever the server put it: the ETag
 * (`W/"3"`, HAPI), the location (`Type/id/_history/3`), or only the returned resource's
 * `meta.versionId` (Medplum: no etag, no `_history` in the location).
 * @param etag - the entry's etag.
 * @param location - the entry's location.
 * @param metaVersion - the returned resource's meta.versionId.
 * @returns the version id, if any.
 */
export function versionOf(
  etag: string | undefined,
  location: string | undefined,
  metaVersion?: string,
): string | undefined {
  const fromEtag = etag === undefined ? null : /^(?:W\/)?"?([^"]+)"?$/.exec(etag.trim());
  if (fromEtag !== null) {
    return fromEtag[1];
  }
  const fromLocation = location === undefined ? null : /\/_history\/([^/?]+)/.exec(location);
  return fromLocation?.[1] ?? (metaVersion === '' ? undefined : metaVersion);
}
