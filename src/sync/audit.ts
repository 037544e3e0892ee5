/**
 * Audit trail: every pass, manual trigger, quarantine retry, rules change and instance
 * change becomes one log line and one FHIR `AuditEvent` on the global server: who (the
 * worker, or the API caller's subject), what (action and targets: instance id, resource type,
 * job id, rules version), when, the outcome and counts. Never resource content, never local
 * resource ids. The API reuses `recordAudit` through {@link createAuditSink}.
 */
import type { AuditEvent, AuditEventEntityDetail } from '@medplum/fhirtypes';
import type { Logger } from 'pino';
import type { FhirStore } from './fhir-store.ts';
import { SYNC_SYSTEM } from './marks.ts';

/** One audited action (same shape as the API's `ApiAuditEvent`). */
export interface AuditInput {
  /** Dotted verb, e.g. `sync.pass`, `sync.trigger`, `instance.add`. */
  readonly action: string;
  readonly outcome: 'success' | 'failure';
  readonly actor: { readonly subject: string; readonly via?: string; readonly roles?: readonly string[] };
  /** ISO instant. */
  readonly at: string;
  readonly rulesVersion?: string;
  readonly target?: Readonly<Record<string, string | number | undefined>>;
  readonly counts?: Readonly<Record<string, number>>;
  readonly failureCode?: string;
}

/** Where audit records go. */
export interface AuditDeps {
  readonly logger: Logger;
  /** The global server; when absent only the log line is written. */
  readonly store?: FhirStore;
}

export const AUDIT_SYSTEM = `${SYNC_SYSTEM}:audit`;

/**
 * Writes one audit record: the log line first (always), then the AuditEvent.
 * @param deps - logger and global store.
 * @param event - the action.
 * @throws when the AuditEvent cannot be written (callers decide whether that fails them).
 */
export async function recordAudit(deps: AuditDeps, event: AuditInput): Promise<void> {
  deps.logger.info({ audit: event }, `audit ${event.action} ${event.outcome}`);
  if (deps.store !== undefined) {
    await deps.store.create(auditEventResource(event));
  }
}

/**
 * An audit sink for the API (`(event) => Promise<void>`).
 * @param deps - logger and global store.
 * @returns the sink.
 */
export function createAuditSink(deps: AuditDeps): (event: AuditInput) => Promise<void> {
  return (event) => recordAudit(deps, event);
}

/**
 * The FHIR AuditEvent of an action.
 * @param event - the action.
 * @returns the resource (no id; POSTed).
 */
export function auditEventResource(event: AuditInput): AuditEvent {
  const detail: AuditEventEntityDetail[] = [];
  for (const [k, v] of Object.entries(event.target ?? {})) {
    if (v !== undefined) {
      detail.push({ type: `target.${k}`, valueString: String(v) });
    }
  }
  for (const [k, v] of Object.entries(event.counts ?? {})) {
    detail.push({ type: `count.${k}`, valueString: String(v) });
  }
  if (event.rulesVersion !== undefined) {
    detail.push({ type: 'rulesVersion', valueString: event.rulesVersion });
  }
  return {
    resourceType: 'AuditEvent',
    meta: { tag: [{ system: SYNC_SYSTEM, code: 'audit' }] },
    type: { system: AUDIT_SYSTEM, code: event.action.split('.')[0] ?? event.action },
    subtype: [{ system: AUDIT_SYSTEM, code: event.action }],
    action: actionCode(event.action),
    recorded: event.at,
    outcome: event.outcome === 'success' ? '0' : '8',
    ...(event.failureCode === undefined ? {} : { outcomeDesc: event.failureCode }),
    agent: [
      {
        who: { identifier: { system: `${SYNC_SYSTEM}:actor`, value: event.actor.subject } },
        requestor: true,
        ...(event.actor.roles === undefined || event.actor.roles.length === 0
          ? {}
          : { role: event.actor.roles.map((r) => ({ coding: [{ system: `${SYNC_SYSTEM}:role`, code: r }] })) }),
      },
    ],
    source: { observer: { display: 'fhir-sync' } },
    entity: detail.length === 0 ? undefined : [{ what: { display: event.action }, detail }],
  };
}

function actionCode(action: string): AuditEvent['action'] {
  const verb = action.split('.').pop() ?? '';
  if (verb === 'add' || verb === 'create') {
    return 'C';
  }
  if (verb === 'update' || verb === 'replace' || verb === 'patch') {
    return 'U';
  }
  if (verb === 'remove' || verb === 'delete') {
    return 'D';
  }
  return 'E';
}
