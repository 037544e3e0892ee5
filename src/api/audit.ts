/**
 * Builds and writes the API's audit events (manual syncs, rule changes, instance changes,
 * quarantine retries). Events carry who, what, when, the rules version and ids/counts;
 * never request bodies. A failing audit sink does not undo the action that already
 * happened: the event then goes to the log stream at error level, so it is not lost.
 */
import type { FastifyRequest } from 'fastify';
import type { ApiAuditEvent, AuditSink } from './types.ts';

/** What a route says about the action it audits. */
export interface AuditInput {
  readonly action: string;
  readonly outcome: ApiAuditEvent['outcome'];
  readonly rulesVersion?: string;
  readonly target?: ApiAuditEvent['target'];
  readonly counts?: ApiAuditEvent['counts'];
  readonly failureCode?: string;
}

/** Writes one audit event for the request's principal. */
export type RequestAuditor = (request: FastifyRequest, input: AuditInput) => Promise<void>;

/**
 * Binds the audit sink and the clock.
 * @param sink - where events go (the sync side's recordAudit in production).
 * @param now - clock.
 * @returns the per-request auditor.
 */
export function createAuditor(sink: AuditSink, now: () => Date): RequestAuditor {
  return async (request, input) => {
    const p = request.principal;
    const event: ApiAuditEvent = {
      ...input,
      actor: p
        ? { subject: p.subject, via: p.via, roles: p.roles }
        : { subject: 'anonymous', via: 'api-key', roles: [] },
      at: now().toISOString(),
    };
    try {
      await sink(event);
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code;
      request.log.error(
        { audit: event, sinkErrorCode: typeof code === 'string' ? code : undefined },
        'audit sink failed',
      );
    }
  };
}

/** What the audited action adds to its event once it has run. */
export type AuditResultFields = Pick<AuditInput, 'target' | 'counts' | 'rulesVersion'>;

/**
 * Runs an action and audits it either way: success with what `describe` adds, failure with
 * the error's catalogue code (then rethrows).
 * @param auditor - the request auditor.
 * @param request - the request (its principal is the actor).
 * @param input - action, target and rules version known before running.
 * @param run - the action.
 * @param describe - fields to add from the result.
 * @returns the action's result.
 */
export async function audited<T>(
  auditor: RequestAuditor,
  request: FastifyRequest,
  input: Omit<AuditInput, 'outcome' | 'failureCode'>,
  run: () => Promise<T>,
  describe?: (result: T) => AuditResultFields,
): Promise<T> {
  let result: T;
  try {
    result = await run();
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    await auditor(request, { ...input, outcome: 'failure', failureCode: typeof code === 'string' ? code : 'unknown' });
    throw err;
  }
  const more = describe?.(result) ?? {};
  await auditor(request, { ...input, ...more, target: { ...input.target, ...more.target }, outcome: 'success' });
  return result;
}
