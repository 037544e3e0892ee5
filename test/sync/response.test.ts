import type { Resource } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import type { WriteOp } from '../../src/sync/bundle.ts';
import { outcomeCodes, readTransactionAnswer, versionOf } from '../../src/sync/writer.ts';

const ops: WriteOp[] = [
  { kind: 'put', type: 'Patient', id: 'a', resource: { resourceType: 'Patient' } as Resource, role: 'data' },
  { kind: 'delete', type: 'Observation', id: 'b', role: 'data' },
  {
    kind: 'put',
    type: 'Basic',
    id: 'c',
    resource: { resourceType: 'Basic' } as Resource,
    role: 'cursor',
    ifMatch: 'W/"1"',
  },
];
const response = (...statuses: string[]) => ({
  resourceType: 'Bundle',
  type: 'transaction-response',
  entry: statuses.map((status, i) => ({ response: { status, etag: `W/"${i + 2}"` } })),
});

describe('transaction answers', () => {
  it('accepts 2xx entries and 404/410 on DELETE, and reads versions', () => {
    const a = readTransactionAnswer(200, response('201 Created', '404 Not Found', '200 OK'), ops);
    expect(a).toEqual({
      kind: 'ok',
      entries: [
        { status: 201, versionId: '2' },
        { status: 404, versionId: '3' },
        { status: 200, versionId: '4' },
      ],
    });
    expect(readTransactionAnswer(200, response('200', '410 Gone', '200'), ops).kind).toBe('ok');
  });

  it('classifies failures', () => {
    expect(readTransactionAnswer(503, undefined, ops)).toMatchObject({ kind: 'retry', status: 503 });
    expect(readTransactionAnswer(429, undefined, ops)).toMatchObject({ kind: 'retry' });
    expect(readTransactionAnswer(412, undefined, ops)).toMatchObject({ kind: 'conflict' });
    const outcome = {
      resourceType: 'OperationOutcome',
      issue: [
        {
          severity: 'error',
          code: 'processing',
          diagnostics: 'HAPI-0535: Transaction bundle contains multiple resources with ID: Patient/Jane Doe',
        },
      ],
    };
    const rejected = readTransactionAnswer(400, outcome, ops);
    expect(rejected).toEqual({ kind: 'rejected', status: 400, codes: ['processing', 'HAPI-0535'] });
    expect(JSON.stringify(rejected)).not.toContain('Jane');
  });

  it('checks every entry of a 200 answer (non-atomic servers)', () => {
    expect(readTransactionAnswer(200, response('201', '409 Conflict', '200'), ops)).toMatchObject({
      kind: 'rejected',
      status: 409,
      failedEntries: [1],
    });
    expect(readTransactionAnswer(200, response('201', '200', '412 Precondition Failed'), ops)).toMatchObject({
      kind: 'conflict',
    });
    expect(readTransactionAnswer(200, response('201', '500', '200'), ops)).toMatchObject({ kind: 'retry' });
    expect(readTransactionAnswer(200, response('201'), ops)).toMatchObject({ kind: 'retry' });
    expect(readTransactionAnswer(200, { resourceType: 'OperationOutcome' }, ops)).toMatchObject({ kind: 'retry' });
    expect(readTransactionAnswer(200, response('201', 'weird', '200'), ops)).toMatchObject({ kind: 'retry' });
  });

  it('reads version ids from etags and locations', () => {
    expect(versionOf('W/"7"', undefined)).toBe('7');
    expect(versionOf(undefined, 'Basic/x/_history/9')).toBe('9');
    expect(versionOf(undefined, undefined)).toBeUndefined();
    expect(outcomeCodes('nope')).toEqual([]);
  });
});

describe('HAPI version conflicts', () => {
  it('reads 409 HAPI-0989 as a cursor conflict, other 409s as rejections', () => {
    const conflict = {
      resourceType: 'OperationOutcome',
      issue: [
        {
          severity: 'error',
          code: 'processing',
          diagnostics: 'HAPI-0550: HAPI-0989: Trying to update Basic/x/_history/5 but this is not the current version',
        },
      ],
    };
    expect(readTransactionAnswer(409, conflict, ops)).toEqual({ kind: 'conflict', status: 409 });
    const refs = {
      resourceType: 'OperationOutcome',
      issue: [
        {
          severity: 'error',
          code: 'processing',
          diagnostics:
            'HAPI-0515: Unable to delete Patient/x because at least one resource has a reference to this resource',
        },
      ],
    };
    expect(readTransactionAnswer(409, refs, ops)).toEqual({
      kind: 'rejected',
      status: 409,
      codes: ['processing', 'HAPI-0515'],
    });
  });
});
