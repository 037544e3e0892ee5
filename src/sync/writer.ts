/**
 * Writing planned ops to a server as transactions, with the failure rules of the engine:
 *
 * - 5xx, 429, timeouts and connection errors: retried with exponential backoff and full
 *   jitter; after the last attempt the page fails with SINK_ERR_UNAVAILABLE (retryable: the
 *   job is retried later from the committed cursor, which has not moved).
 * - 412: only the cursor entry carries `ifMatch`, so it means the cursor moved under us.
 *   When the request had been retried, the first attempt may have committed: the caller's
 *   `confirmCursor` re-reads the cursor and accepts when it already holds our value;
 *   otherwise SYNC_ERR_CURSOR_CONFLICT.
 * - Other 4xx: the server refused an entry. The bundle's data entries are bisected (each
 *   half its own transaction, dependencies first) until the refused entries are isolated;
 *   the good ones are written on the way, the refused ones come back as rejections. Then one
 *   last transaction writes the bundle's state (quarantine records for the rejections, the
 *   cursor). A crash in between replays the page: the PUT/DELETEs repeat without new versions
 *   and the rejections are found again, so the result is the same.
 * - Non-atomic answers (200 with failed entries, e.g. Medplum without the transaction
 *   feature): the failed entries are the rejections; the rest is rewritten to be sure.
 */
import type { Bundle, OperationOutcome } from '@medplum/fhirtypes';
import {
  AppError,
  isRetryable,
  SINK_ERR_CLIENT_IDS_REFUSED,
  SINK_ERR_REJECTED,
  SINK_ERR_UNAVAILABLE,
  SYNC_ERR_CURSOR_CONFLICT,
} from '../shared/errors/index.ts';
import { planBundles, transactionBundle } from './bundle.ts';
import type { PutOp, WriteOp } from './bundle.ts';
import { backoffDelay } from '../shared/backoff.ts';
import type { BackoffPolicy } from '../shared/backoff.ts';
import type { FhirStore } from './fhir-store.ts';

/** Backoff for retryable failures of one transaction (delays: shared/backoff.ts). */
export interface RetryPolicy extends BackoffPolicy {
  /** @defaultValue 6 */
  readonly attempts: number;
  /** @defaultValue 500 */
  readonly baseDelayMs: number;
  /** @defaultValue 30000 */
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = Object.freeze({ attempts: 6, baseDelayMs: 500, maxDelayMs: 30_000 });

/** What the writer needs. */
export interface WriterDeps {
  readonly store: FhirStore;
  readonly bundleSize: number;
  readonly retry: RetryPolicy;
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** In [0, 1). */
  readonly random: () => number;
  readonly signal?: AbortSignal;
  /** Called before each retry (for logs/metrics): attempt number and a value-free reason. */
  readonly onRetry?: (attempt: number, reason: string, delayMs: number) => void;
  /**
   * Called when a refused bundle went through whole once split, nothing in it refused: the
   * server caps bundle size (Medplum: 50), and `size` is the largest part it accepted.
   */
  readonly onBundleCap?: (refused: number, size: number) => void;
}

/** A data op the server refused. */
export interface Rejection {
  readonly op: WriteOp;
  readonly status: number;
  readonly codes: readonly string[];
}

/** What one page's write did. */
export interface PageWriteResult {
  /** Version id of the cursor resource after the commit (when a cursor was written). */
  readonly cursorVersion?: string;
  readonly rejections: readonly Rejection[];
  readonly transactions: number;
}

/** Options of {@link writePage}. */
export interface PageWriteOptions {
  /** The cursor PUT (with ifMatch), written last. */
  readonly cursor?: PutOp;
  /** The quarantine record PUT for a rejection. */
  readonly quarantineOp: (rejection: Rejection) => PutOp;
  /** On 412: the cursor's version if it already holds our value, else undefined. */
  readonly confirmCursor?: () => Promise<string | undefined>;
}

const STATE_ROLES = new Set<WriteOp['role']>(['quarantine', 'cursor']);

/**
 * Writes one page's ops (and its cursor) to the target.
 * @param deps - store, bundle size, retry policy, sleep and random.
 * @param ops - data, dependency, quarantine and unquarantine ops.
 * @param options - cursor op, quarantine op factory, cursor confirmation.
 * @returns the cursor version, the rejections and the number of transactions sent.
 */
export async function writePage(
  deps: WriterDeps,
  ops: readonly WriteOp[],
  options: PageWriteOptions,
): Promise<PageWriteResult> {
  const w: PageWrite = { deps, options, rejections: [], cursorVersion: undefined, transactions: 0, largestAccepted: 0 };
  for (const planned of planBundles(ops, { bundleSize: deps.bundleSize, cursor: options.cursor })) {
    const answer = await send(w, planned.ops);
    await settle(w, planned.ops, answer, () => isolateRefused(w, planned.ops));
  }
  return { cursorVersion: w.cursorVersion, rejections: w.rejections, transactions: w.transactions };
}

/** The state of one {@link writePage} call, shared by its steps. */
interface PageWrite {
  readonly deps: WriterDeps;
  readonly options: PageWriteOptions;
  readonly rejections: Rejection[];
  cursorVersion: string | undefined;
  transactions: number;
  /** The largest data part the server accepted while bisecting the current bundle. */
  largestAccepted: number;
}

type RejectedAnswer = Extract<TransactionAnswer, { kind: 'rejected' }>;

async function send(w: PageWrite, batch: readonly WriteOp[]): Promise<TransactionAnswer> {
  w.transactions++;
  return sendTransaction(w.deps, batch);
}

function noteCursor(w: PageWrite, batch: readonly WriteOp[], answer: TransactionAnswer): void {
  const i = batch.findIndex((o) => o.role === 'cursor');
  if (i >= 0 && answer.kind === 'ok') {
    w.cursorVersion = answer.entries[i]?.versionId;
  }
}

/** Handles ok/conflict; calls `onRejected` for a refusal. */
async function settle(
  w: PageWrite,
  batch: readonly WriteOp[],
  answer: TransactionAnswer,
  onRejected: () => Promise<void> | void,
): Promise<void> {
  switch (answer.kind) {
    case 'ok':
      noteCursor(w, batch, answer);
      return;
    case 'conflict':
      w.cursorVersion = await confirmOrThrow(w.options, batch);
      return;
    case 'rejected':
      await onRejected();
      return;
    case 'retry':
      throw new Error('unreachable: retry answers are consumed by sendTransaction');
    default:
      answer satisfies never;
  }
}

/**
 * A refused bundle: bisects its data to isolate the refused entries (writing the good ones),
 * then commits the bundle's state with quarantine records for what was refused.
 */
async function isolateRefused(w: PageWrite, bundle: readonly WriteOp[]): Promise<void> {
  const before = w.rejections.length;
  w.largestAccepted = 0;
  const data = bundle.filter((o) => !STATE_ROLES.has(o.role));
  await bisect(w, data);
  if (w.rejections.length === before && data.length > 1 && w.largestAccepted > 0) {
    w.deps.onBundleCap?.(bundle.length, w.largestAccepted);
  }
  const found = w.rejections
    .slice(before)
    .filter((r) => r.op.role === 'data' || r.op.role === 'dependency')
    .map(w.options.quarantineOp);
  await commitState(w, [...bundle.filter((o) => STATE_ROLES.has(o.role)), ...found]);
}

async function commitState(w: PageWrite, state: readonly WriteOp[]): Promise<void> {
  for (const planned of planBundles(
    state.filter((o) => o.role !== 'cursor'),
    { bundleSize: w.deps.bundleSize, cursor: state.find((o): o is PutOp => o.role === 'cursor') },
  )) {
    const answer = await send(w, planned.ops);
    await settle(w, planned.ops, answer, () => {
      throw SINK_ERR_REJECTED.createWith({ location: w.deps.store.base }, [
        'sync state',
        answerStatus(answer),
        codesOf(answer),
      ]);
    });
  }
}

async function bisect(w: PageWrite, data: readonly WriteOp[]): Promise<void> {
  if (data.length === 0) {
    return;
  }
  const answer = await send(w, data);
  if (answer.kind === 'ok') {
    w.largestAccepted = Math.max(w.largestAccepted, data.length);
  }
  await settle(w, data, answer, async () => {
    if (answer.kind !== 'rejected') {
      return;
    }
    await splitRejected(w, data, answer);
  });
}

/** One refused part: its failed entries when the server named them, else its halves, down to single entries. */
async function splitRejected(w: PageWrite, data: readonly WriteOp[], answer: RejectedAnswer): Promise<void> {
  if (answer.failedEntries !== undefined) {
    const failed = new Set(answer.failedEntries);
    data.forEach((op, i) => failed.has(i) && w.rejections.push({ op, status: answer.status, codes: answer.codes }));
    await bisect(
      w,
      data.filter((_, i) => !failed.has(i)),
    );
  } else if (data.length === 1) {
    const op = data[0]!;
    // A delete of something the target never had: some servers (Medplum) refuse the whole
    // transaction with 404 instead of answering that entry 404. Gone is gone: done.
    if (op.kind === 'delete' && (answer.status === 404 || answer.status === 410)) {
      return;
    }
    if (op.kind === 'put' && answer.status === 404) {
      throw SINK_ERR_CLIENT_IDS_REFUSED.createWith({ location: w.deps.store.base }, [w.deps.store.base]);
    }
    w.rejections.push({ op, status: answer.status, codes: answer.codes });
  } else {
    const mid = Math.ceil(data.length / 2);
    await bisect(w, data.slice(0, mid));
    await bisect(w, data.slice(mid));
  }
}

async function confirmOrThrow(options: PageWriteOptions, batch: readonly WriteOp[]): Promise<string> {
  const cursor = batch.find((o) => o.role === 'cursor');
  const confirmed =
    cursor === undefined || options.confirmCursor === undefined ? undefined : await options.confirmCursor();
  if (confirmed === undefined) {
    const [direction, instance, type] = cursorScope(cursor);
    throw SYNC_ERR_CURSOR_CONFLICT.createWith({ direction }, [instance, type]);
  }
  return confirmed;
}

function cursorScope(op: WriteOp | undefined): [string, string, string] {
  const id = (op?.kind === 'put' ? op.resource : undefined) as { identifier?: { value?: string }[] } | undefined;
  const [d = '?', i = '?', t = '?'] = (id?.identifier?.[0]?.value ?? '').split('/');
  return [d, i, t];
}

/**
 * POSTs one transaction, retrying retryable failures with exponential backoff and full jitter.
 * @param deps - store, retry policy, sleep, random, signal.
 * @param ops - the ops (one bundle).
 * @returns a non-retry answer.
 * @throws AppError SINK_ERR_UNAVAILABLE (retryable) after the last attempt.
 */
export async function sendTransaction(
  deps: Pick<WriterDeps, 'store' | 'retry' | 'sleep' | 'random' | 'signal' | 'onRetry'>,
  ops: readonly WriteOp[],
): Promise<TransactionAnswer> {
  const bundle = transactionBundle(ops);
  let reason = 'no attempt';
  for (let attempt = 1; attempt <= deps.retry.attempts; attempt++) {
    try {
      const raw = await deps.store.transaction(bundle, deps.signal);
      const answer = readTransactionAnswer(raw.status, raw.body, ops);
      if (answer.kind === 'rejected' && answer.status === 409 && attempt === 1 && deps.retry.attempts > 1) {
        // Two channels creating the same dependency at once: HAPI refuses the later transaction
        // with 409. Once the other one commits, the same PUT is an update, so one more attempt
        // settles it; a 409 that lasts is a refusal like any other.
        reason = 'HTTP 409 (concurrent write)';
      } else if (answer.kind !== 'retry') {
        return answer;
      } else {
        reason = answer.reason;
      }
    } catch (err) {
      if (!isRetryable(err)) {
        throw err;
      }
      reason = err instanceof AppError ? err.code : 'network error';
    }
    if (attempt < deps.retry.attempts) {
      const delay = backoffDelay(deps.retry, attempt, deps.random);
      deps.onRetry?.(attempt, reason, delay);
      await deps.sleep(delay, deps.signal);
    }
  }
  throw SINK_ERR_UNAVAILABLE.createWith({ location: deps.store.base }, [deps.store.base, deps.retry.attempts, reason]);
}

/**
 * Runs a read with the same retry policy as transactions (retryable errors only).
 * @param deps - retry policy, sleep, random, signal.
 * @param fn - the read.
 * @returns its result.
 * @throws the last error once attempts are exhausted, or the first non-retryable one.
 */
export async function retrying<T>(
  deps: Pick<WriterDeps, 'retry' | 'sleep' | 'random' | 'signal' | 'onRetry'>,
  fn: () => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isRetryable(err) || attempt >= deps.retry.attempts) {
        throw err;
      }
      const delay = backoffDelay(deps.retry, attempt, deps.random);
      deps.onRetry?.(attempt, err instanceof AppError ? err.code : 'error', delay);
      await deps.sleep(delay, deps.signal);
    }
  }
}

function answerStatus(a: TransactionAnswer): number {
  return 'status' in a ? a.status : 200;
}

function codesOf(a: TransactionAnswer): string {
  return a.kind === 'rejected' && a.codes.length > 0 ? a.codes.join(',') : 'no code';
}

// ---- Reading a server's answer to a transaction ----
/*
 * Reading a server's answer to a transaction (pure). Every entry's status is checked, not
 * only the HTTP status: some servers (Medplum without the transaction feature) answer 200
 * with failed entries. A DELETE answered 404 or 410 counts as done. Server diagnostics can
 * echo submitted values, so only message codes (`HAPI-0535`) and issue codes are kept.
 */

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
