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
import { readTransactionAnswer } from './response.ts';
import type { TransactionAnswer } from './response.ts';

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
  const rejections: Rejection[] = [];
  let cursorVersion: string | undefined;
  let transactions = 0;
  const send = async (batch: readonly WriteOp[]): Promise<TransactionAnswer> => {
    transactions++;
    return sendTransaction(deps, batch);
  };
  const noteCursor = (batch: readonly WriteOp[], answer: TransactionAnswer): void => {
    const i = batch.findIndex((o) => o.role === 'cursor');
    if (i >= 0 && answer.kind === 'ok') {
      cursorVersion = answer.entries[i]?.versionId;
    }
  };
  const commitState = async (state: readonly WriteOp[]): Promise<void> => {
    for (const planned of planBundles(
      state.filter((o) => o.role !== 'cursor'),
      { bundleSize: deps.bundleSize, cursor: state.find((o): o is PutOp => o.role === 'cursor') },
    )) {
      const answer = await send(planned.ops);
      await settle(planned.ops, answer, () => {
        throw SINK_ERR_REJECTED.createWith({ location: deps.store.base }, [
          'sync state',
          answerStatus(answer),
          codesOf(answer),
        ]);
      });
    }
  };
  /** Handles ok/conflict; calls `onRejected` for a refusal. */
  const settle = async (
    batch: readonly WriteOp[],
    answer: TransactionAnswer,
    onRejected: () => Promise<void> | void,
  ): Promise<void> => {
    switch (answer.kind) {
      case 'ok':
        noteCursor(batch, answer);
        return;
      case 'conflict':
        cursorVersion = await confirmOrThrow(options, batch);
        return;
      case 'rejected':
        await onRejected();
        return;
      case 'retry':
        throw new Error('unreachable: retry answers are consumed by sendTransaction');
      default:
        answer satisfies never;
    }
  };
  let largestAccepted = 0;
  const bisect = async (data: readonly WriteOp[]): Promise<void> => {
    if (data.length === 0) {
      return;
    }
    const answer = await send(data);
    if (answer.kind === 'ok') {
      largestAccepted = Math.max(largestAccepted, data.length);
    }
    await settle(data, answer, async () => {
      if (answer.kind !== 'rejected') {
        return;
      }
      if (answer.failedEntries !== undefined) {
        const failed = new Set(answer.failedEntries);
        data.forEach((op, i) => failed.has(i) && rejections.push({ op, status: answer.status, codes: answer.codes }));
        await bisect(data.filter((_, i) => !failed.has(i)));
      } else if (data.length === 1) {
        const op = data[0]!;
        // A delete of something the target never had: some servers (Medplum) refuse the whole
        // transaction with 404 instead of answering that entry 404. Gone is gone: done.
        if (op.kind === 'delete' && (answer.status === 404 || answer.status === 410)) {
          return;
        }
        if (op.kind === 'put' && answer.status === 404) {
          throw SINK_ERR_CLIENT_IDS_REFUSED.createWith({ location: deps.store.base }, [deps.store.base]);
        }
        rejections.push({ op, status: answer.status, codes: answer.codes });
      } else {
        const mid = Math.ceil(data.length / 2);
        await bisect(data.slice(0, mid));
        await bisect(data.slice(mid));
      }
    });
  };

  for (const planned of planBundles(ops, { bundleSize: deps.bundleSize, cursor: options.cursor })) {
    const answer = await send(planned.ops);
    await settle(planned.ops, answer, async () => {
      const before = rejections.length;
      largestAccepted = 0;
      const data = planned.ops.filter((o) => !STATE_ROLES.has(o.role));
      await bisect(data);
      if (rejections.length === before && data.length > 1 && largestAccepted > 0) {
        deps.onBundleCap?.(planned.ops.length, largestAccepted);
      }
      const found = rejections
        .slice(before)
        .filter((r) => r.op.role === 'data' || r.op.role === 'dependency')
        .map(options.quarantineOp);
      await commitState([...planned.ops.filter((o) => STATE_ROLES.has(o.role)), ...found]);
    });
  }
  return { cursorVersion, rejections, transactions };
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
