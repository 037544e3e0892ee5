/**
 * Reading and creating cursor resources on the server that receives a channel's data.
 * Moving a cursor is never done here: it goes into the same transaction as its data (see
 * writer.ts), with `ifMatch` on the version read here, so two passes that somehow run at
 * once cannot both move it (the second transaction fails whole with 412).
 */
import type { Basic } from '@medplum/fhirtypes';
import { SINK_ERR_CLIENT_IDS_REFUSED, SINK_ERR_REJECTED } from '../shared/errors/index.ts';
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
  deps: Pick<WriterDeps, 'store' | 'retry' | 'sleep' | 'random' | 'signal'>,
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
 * Makes sure the cursor resource exists so that every commit can use `ifMatch`.
 * @param deps - the store holding it, retry policy.
 * @param initial - the state to create when absent (no cursor value).
 * @returns the stored cursor with its version id.
 */
export async function ensureCursor(
  deps: Pick<WriterDeps, 'store' | 'retry' | 'sleep' | 'random' | 'signal'>,
  initial: CursorState,
): Promise<StoredCursor> {
  const current = await loadCursor(deps, initial.direction, initial.instanceId, initial.resourceType);
  if (current.versionId !== undefined) {
    return current;
  }
  const op = cursorPut(initial);
  const answer = await sendTransaction(deps, [op]);
  if (answer.kind === 'rejected' && answer.status === 404) {
    throw SINK_ERR_CLIENT_IDS_REFUSED.createWith({ location: deps.store.base }, [deps.store.base]);
  }
  if (answer.kind !== 'ok') {
    throw SINK_ERR_REJECTED.createWith({ location: deps.store.base }, [
      'cursor creation',
      'status' in answer ? answer.status : 0,
      answer.kind,
    ]);
  }
  // No version in the answer (some servers): read it back, so the first commit is conditional too.
  const versionId =
    answer.entries[0]?.versionId ??
    (await loadCursor(deps, initial.direction, initial.instanceId, initial.resourceType)).versionId;
  return { state: initial, versionId };
}

/**
 * The PUT of a cursor resource, guarded by the version the pass read.
 * @param state - the new state.
 * @param versionId - the version it replaces (omitted: unconditional, for creation).
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
