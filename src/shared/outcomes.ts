/**
 * OperationOutcome is the error currency at every FHIR boundary: errors leave the service
 * as outcomes (API answers, quarantine reasons) and server answers come in as outcomes.
 */
import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';
import { AppError } from './errors/index.ts';

/**
 * Builds an OperationOutcome from an error. Only the code and the message (built from the
 * catalogue template, never from resource content) are carried.
 * @param err - anything thrown.
 * @returns the outcome.
 */
export function toOperationOutcome(err: unknown): OperationOutcome {
  if (err instanceof AppError) {
    const issue: OperationOutcomeIssue = {
      severity: 'error',
      code: err.status >= 500 ? 'exception' : err.status === 404 ? 'not-found' : 'processing',
      details: { coding: [{ system: 'urn:fhir-sync:error-code', code: err.code }], text: err.message },
    };
    if (typeof err.details.location === 'string') {
      issue.expression = [err.details.location];
    }
    return { resourceType: 'OperationOutcome', issue: [issue] };
  }
  return {
    resourceType: 'OperationOutcome',
    issue: [{ severity: 'error', code: 'exception', details: { text: 'Internal error' } }],
  };
}

/**
 * The HTTP status an error should be answered with.
 * @param err - anything thrown.
 * @returns an HTTP status code.
 */
export function statusOf(err: unknown): number {
  return err instanceof AppError ? err.status : 500;
}

/**
 * Reads the issue texts of an OperationOutcome a server sent back. Server diagnostics can
 * echo submitted values, so callers must not log these for resources with PHI.
 * @param value - a parsed response body.
 * @returns the issue texts, empty when the body is no outcome.
 */
export function outcomeIssueCodes(value: unknown): string[] {
  if (
    typeof value !== 'object' ||
    value === null ||
    (value as { resourceType?: unknown }).resourceType !== 'OperationOutcome'
  ) {
    return [];
  }
  const issues = (value as OperationOutcome).issue ?? [];
  return issues.map((i) => `${i.severity}:${i.code}`);
}
