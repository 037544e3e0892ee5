/**
 * The engine's durable state as FHIR `Basic` resources on the server that receives the data:
 * a cursor per (direction, instance, type) and a quarantine record per (direction, instance,
 * type, pseudonymous id). Keeping them there lets the cursor ride in the same transaction as
 * the data it covers (exactly once: both written or neither) and leaves nothing in Redis that
 * cannot be rebuilt. They hold ids, codes, counts and the feed's opaque cursor; never a
 * resource, never a local resource id (quarantine keys on the pseudonymous id only).
 */
import type { Basic, Extension } from '@medplum/fhirtypes';
import { SYNC_ERR_CURSOR_INVALID } from '../shared/errors/index.ts';
import { stateId } from './ids.ts';
import { STATE_TAG, SYNC_SYSTEM } from './marks.ts';

/** Forward: local → global (cursor on the global). Reverse: global → local (cursor on the local). */
export type Direction = 'forward' | 'reverse';

export const STATE_CODE_SYSTEM = `${SYNC_SYSTEM}:state`;
export const CURSOR_SCOPE_SYSTEM = `${SYNC_SYSTEM}:cursor-scope`;
export const QUARANTINE_SCOPE_SYSTEM = `${SYNC_SYSTEM}:quarantine-scope`;
const EXT = `${SYNC_SYSTEM}:ext:`;

/** What a cursor resource holds. */
export interface CursorState {
  readonly direction: Direction;
  readonly instanceId: string;
  readonly resourceType: string;
  /** The feed's opaque cursor; absent before the first committed page. */
  readonly cursor?: string;
  /** When the cursor was last committed (ISO). */
  readonly updatedAt: string;
  /** Rules version of the anonymizer that produced the covered data (forward only). */
  readonly rulesVersion?: string;
}

/** A cursor as loaded from the server, with the version used for optimistic concurrency. */
export interface StoredCursor {
  readonly state?: CursorState;
  /** Server versionId of the cursor resource; undefined when it does not exist yet. */
  readonly versionId?: string;
}

/** One quarantined change. */
export interface QuarantineRecord {
  readonly direction: Direction;
  readonly instanceId: string;
  readonly resourceType: string;
  /** Id on the target server (pseudonym for forward, the global's own id for reverse). */
  readonly targetId: string;
  readonly op: 'upsert' | 'delete';
  /** Catalogue or server message code (DEID_ERR_*, SINK_ERR_REJECTED, HAPI-xxxx...). */
  readonly reasonCode: string;
  /** Short, value-free detail (HTTP status, element path). */
  readonly detail?: string;
  readonly rulesVersion: string;
  readonly at: string;
}

/**
 * Id of the cursor resource of (direction, instance, type).
 * @param direction - forward or reverse.
 * @param instanceId - local instance id.
 * @param resourceType - resource type.
 * @returns a UUID-shaped id.
 */
export function cursorId(direction: Direction, instanceId: string, resourceType: string): string {
  return stateId('cursor', direction, instanceId, resourceType);
}

/**
 * Id of the quarantine resource of one change.
 * @param direction - forward or reverse.
 * @param instanceId - local instance id.
 * @param resourceType - resource type.
 * @param targetId - pseudonymous (or global) id.
 * @returns a UUID-shaped id.
 */
export function quarantineId(direction: Direction, instanceId: string, resourceType: string, targetId: string): string {
  return stateId('quarantine', direction, instanceId, resourceType, targetId);
}

/**
 * The scope token both kinds of state are searched by (`identifier=<system>|<scope>`); `/`
 * separates the parts because `|` would need escaping in a token search.
 * @param direction - forward or reverse.
 * @param instanceId - local instance id.
 * @param resourceType - resource type.
 * @returns `direction/instance/type`.
 */
export function scopeValue(direction: Direction, instanceId: string, resourceType: string): string {
  return `${direction}/${instanceId}/${resourceType}`;
}

/**
 * Builds the cursor resource.
 * @param state - the cursor state.
 * @returns a Basic with a deterministic id.
 */
export function cursorResource(state: CursorState): Basic {
  const ext: Extension[] = [
    { url: `${EXT}direction`, valueCode: state.direction },
    { url: `${EXT}instance`, valueString: state.instanceId },
    { url: `${EXT}resource-type`, valueCode: state.resourceType },
    { url: `${EXT}updated-at`, valueInstant: state.updatedAt },
  ];
  if (state.cursor !== undefined) {
    ext.push({ url: `${EXT}cursor`, valueString: state.cursor });
  }
  if (state.rulesVersion !== undefined) {
    ext.push({ url: `${EXT}rules-version`, valueString: state.rulesVersion });
  }
  return {
    resourceType: 'Basic',
    id: cursorId(state.direction, state.instanceId, state.resourceType),
    meta: { tag: [{ ...STATE_TAG }] },
    code: { coding: [{ system: STATE_CODE_SYSTEM, code: 'cursor' }] },
    identifier: [
      { system: CURSOR_SCOPE_SYSTEM, value: scopeValue(state.direction, state.instanceId, state.resourceType) },
    ],
    extension: ext,
  };
}

/**
 * Reads a cursor resource back.
 * @param basic - a Basic from the server.
 * @returns the state.
 * @throws AppError SYNC_ERR_CURSOR_INVALID when a required field is missing.
 */
export function parseCursor(basic: Basic): CursorState {
  const direction = extValue(basic, 'direction');
  const instanceId = extValue(basic, 'instance');
  const resourceType = extValue(basic, 'resource-type');
  const updatedAt = extValue(basic, 'updated-at');
  if (
    (direction !== 'forward' && direction !== 'reverse') ||
    instanceId === undefined ||
    resourceType === undefined ||
    updatedAt === undefined
  ) {
    throw SYNC_ERR_CURSOR_INVALID.create(
      `Basic/${basic.id ?? '?'}`,
      'server',
      'missing direction, instance, resource-type or updated-at',
    );
  }
  return {
    direction,
    instanceId,
    resourceType,
    updatedAt,
    cursor: extValue(basic, 'cursor'),
    rulesVersion: extValue(basic, 'rules-version'),
  };
}

/**
 * Builds a quarantine resource.
 * @param rec - the record.
 * @returns a Basic with a deterministic id (re-quarantining overwrites).
 */
export function quarantineResource(rec: QuarantineRecord): Basic {
  const ext: Extension[] = [
    { url: `${EXT}direction`, valueCode: rec.direction },
    { url: `${EXT}instance`, valueString: rec.instanceId },
    { url: `${EXT}resource-type`, valueCode: rec.resourceType },
    { url: `${EXT}target-id`, valueString: rec.targetId },
    { url: `${EXT}op`, valueCode: rec.op },
    { url: `${EXT}reason`, valueCode: rec.reasonCode },
    { url: `${EXT}rules-version`, valueString: rec.rulesVersion },
  ];
  if (rec.detail !== undefined) {
    ext.push({ url: `${EXT}detail`, valueString: rec.detail });
  }
  return {
    resourceType: 'Basic',
    id: quarantineId(rec.direction, rec.instanceId, rec.resourceType, rec.targetId),
    meta: { tag: [{ ...STATE_TAG }] },
    code: { coding: [{ system: STATE_CODE_SYSTEM, code: 'quarantine' }] },
    identifier: [
      { system: QUARANTINE_SCOPE_SYSTEM, value: scopeValue(rec.direction, rec.instanceId, rec.resourceType) },
    ],
    created: rec.at.slice(0, 10),
    extension: ext,
  };
}

/**
 * Reads a quarantine resource back.
 * @param basic - a Basic from the server.
 * @returns the record, or undefined when it is not one.
 */
export function parseQuarantine(
  basic: Basic,
): (QuarantineRecord & { readonly id: string; readonly lastUpdated?: string }) | undefined {
  const direction = extValue(basic, 'direction');
  const op = extValue(basic, 'op');
  const fields = ['instance', 'resource-type', 'target-id', 'reason', 'rules-version'].map((k) => extValue(basic, k));
  if (
    (direction !== 'forward' && direction !== 'reverse') ||
    (op !== 'upsert' && op !== 'delete') ||
    fields.some((f) => f === undefined) ||
    basic.id === undefined
  ) {
    return undefined;
  }
  const [instanceId, resourceType, targetId, reasonCode, rulesVersion] = fields as string[];
  return {
    id: basic.id,
    direction,
    op,
    instanceId: instanceId!,
    resourceType: resourceType!,
    targetId: targetId!,
    reasonCode: reasonCode!,
    rulesVersion: rulesVersion!,
    detail: extValue(basic, 'detail'),
    at: basic.meta?.lastUpdated ?? basic.created ?? '',
    lastUpdated: basic.meta?.lastUpdated,
  };
}

function extValue(basic: Basic, name: string): string | undefined {
  const e = basic.extension?.find((x) => x.url === `${EXT}${name}`);
  return e?.valueString ?? e?.valueCode ?? e?.valueInstant;
}
