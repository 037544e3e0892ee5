/**
 * Reading and creating cursor resources on the server that receives a channel's data.
 * Moving a cursor is never done here: it goes into the same transaction as its data (see
 * writer.ts), with `ifMatch` on the version read here, so two passes that somehow run at
 * once cannot both move it (the second transaction fails whole with 412).
 */
import type { Basic } from '@medplum/fhirtypes';
import { SINK_ERR_CLIENT_IDS_REFUSED, SINK_ERR_REJECTED, SYNC_ERR_CURSOR_CONFLICT } from '../shared/errors/index.ts';
import type { PutOp } from './bundle.ts';
import { cursorId, cursorResource, parseCursor } from './state.ts';
import type { CursorState, Direction, StoredCursor } from './state.ts';
import { retrying, sendTransaction } from './writer.ts';
import type { WriterDeps } from './writer.ts';

/**
 * Loads the cursor of (direction, instance, type), retrying transient failures.
 * @param deps - the store holding it, retry policy.
 * @param direction - forward (on the global) or reverse (on the local).
 * @param instanceId - local instance id.
 * @param resourceType - resource type.
 * @returns the state and its version; both undefined when there is none yet.
 */
export async function loadCursor(
  deps: CursorDeps,
  direction: Direction,
  instanceId: string,
  resourceType: string,
): Promise<StoredCursor> {
  const basic = (await retrying(deps, () =>
    deps.store.read('Basic', cursorId(direction, instanceId, resourceType), deps.signal),
  )) as Basic | undefined;
  if (basic === undefined) {
    return {};
  }
  return { state: parseCursor(basic), versionId: basic.meta?.versionId };
}

/**
 * `If-Match` of a version no resource ever has (versions start at 1): a create-only
 * precondition. HAPI creates the resource when absent and answers 409 HAPI-0989 when it exists
 * (checked live, test/sync/cursor-store.int.test.ts). FHIR has no standard create-only header
 * for a client-chosen id, and HAPI ignores `If-None-Match` on PUT.
 */
export const CREATE_ONLY_VERSION = '0';

type CursorDeps = Pick<WriterDeps, 'store' | 'retry' | 'sleep' | 'random' | 'signal'>;

/**
 * Makes sure the cursor resource exists so that every commit can use `ifMatch`. The first
 * write is conditional too: two processes starting the same (instance, type) at once must not
 * both create it, or the later one would reset a cursor the earlier one already moved.
 * @param deps - the store holding it, retry policy.
 * @param initial - the state to create when absent (no cursor value).
 * @returns the stored cursor with its version id.
 * @throws SYNC_ERR_CURSOR_CONFLICT when another process created it first (retryable: the
 *   next attempt reads it).
 */
export async function ensureCursor(deps: CursorDeps, initial: CursorState): Promise<StoredCursor> {
  const current = await loadCursor(deps, initial.direction, initial.instanceId, initial.resourceType);
  if (current.versionId !== undefined) {
    return current;
  }
  let answer = await sendTransaction(deps, [cursorPut(initial, CREATE_ONLY_VERSION)]);
  if (answer.kind === 'conflict') {
    const now = await loadCursor(deps, initial.direction, initial.instanceId, initial.resourceType);
    if (now.versionId !== undefined) {
      throw lostCreation(initial);
    }
    // Still absent: this server refuses If-Match on a missing resource (412, as HTTP allows).
    // Fall back to a plain PUT; its 200-vs-201 answer still tells whether we replaced someone's.
    answer = await sendTransaction(deps, [cursorPut(initial)]);
  }
  if (answer.kind === 'rejected' && answer.status === 404) {
    throw SINK_ERR_CLIENT_IDS_REFUSED.createWith({ location: deps.store.base }, [deps.store.base]);
  }
  if (answer.kind === 'conflict') {
    throw lostCreation(initial);
  }
  if (answer.kind !== 'ok') {
    throw SINK_ERR_REJECTED.createWith({ location: deps.store.base }, [
      'cursor creation',
      'status' in answer ? answer.status : 0,
      answer.kind,
    ]);
  }
  // 200 instead of 201: the resource existed, the precondition was ignored and another
  // process's cursor was replaced. Its next commit then fails on ifMatch and re-reads; this one
  // stops here so that only one of the two goes on from the state just written.
  if (answer.entries[0]?.status === 200) {
    throw lostCreation(initial);
  }
  // No version in the answer (some servers): read it back, so the first commit is conditional too.
  const versionId =
    answer.entries[0]?.versionId ??
    (await loadCursor(deps, initial.direction, initial.instanceId, initial.resourceType)).versionId;
  return { state: initial, versionId };
}

function lostCreation(initial: CursorState): Error {
  return SYNC_ERR_CURSOR_CONFLICT.createWith({ direction: initial.direction }, [
    initial.instanceId,
    initial.resourceType,
  ]);
}

/**
 * The PUT of a cursor resource, guarded by the version the pass read.
 * @param state - the new state.
 * @param versionId - the version it replaces (`CREATE_ONLY_VERSION` for creation; omitted:
 *   unconditional, only as a fallback for servers refusing If-Match on a missing resource).
 * @returns the op.
 */
export function cursorPut(state: CursorState, versionId?: string): PutOp {
  const resource = cursorResource(state);
  return {
    kind: 'put',
    type: 'Basic',
    id: resource.id!,
    resource,
    role: 'cursor',
    ...(versionId === undefined ? {} : { ifMatch: `W/"${versionId}"` }),
  };
}
