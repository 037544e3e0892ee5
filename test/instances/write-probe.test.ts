/**
 * Contract tests of the doctor's write probes: each server behaviour is replayed by a small
 * in-memory server answering with the shapes the vendors document (HAPI: atomic, stale
 * If-Match → 409 whole; Medplum: at most 50 entries per transaction, 400 above, and 404 to a
 * PUT of a new client-chosen id when that is off; a non-atomic batch-like server: 200 with a
 * failed entry, the good one kept). Every probe resource is deleted afterwards.
 */
import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { runWriteProbes } from '../../src/instances/write-probe.ts';

interface Behaviour {
  readonly cap?: number;
  readonly clientIds?: boolean;
  readonly atomic?: boolean;
}

function server(b: Behaviour): {
  post: (bundle: Bundle) => Promise<{ status: number; body: unknown }>;
  ids: Map<string, number>;
} {
  const ids = new Map<string, number>();
  const outcome = (code: string) => ({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code }] });
  const post = (bundle: Bundle): Promise<{ status: number; body: unknown }> => {
    const entries = bundle.entry ?? [];
    if (bundle.type === 'batch') {
      const id = /_id=(.+)$/.exec(entries[0]!.request!.url)![1]!;
      const found = ids.has(id) ? 1 : 0;
      return Promise.resolve({
        status: 200,
        body: { resourceType: 'Bundle', entry: [{ resource: { resourceType: 'Bundle', total: found } }] },
      });
    }
    if (b.cap !== undefined && entries.length > b.cap) {
      return Promise.resolve({ status: 400, body: outcome('invalid') });
    }
    const staged = new Map(ids);
    const answers: BundleEntry[] = [];
    for (const e of entries) {
      const id = e.request!.url.split('/')[1]!;
      if (e.request!.method === 'DELETE') {
        staged.delete(id);
        answers.push({ response: { status: '204 No Content' } });
      } else if (!staged.has(id) && b.clientIds === false) {
        return Promise.resolve({ status: 404, body: outcome('not-found') });
      } else if (e.request!.ifMatch !== undefined && e.request!.ifMatch !== `W/"${staged.get(id) ?? 0}"`) {
        if (b.atomic !== false) {
          return Promise.resolve({ status: 409, body: outcome('conflict') });
        }
        answers.push({ response: { status: '412 Precondition Failed' } });
      } else {
        staged.set(id, (staged.get(id) ?? 0) + 1);
        answers.push({ response: { status: '201 Created' } });
      }
    }
    ids.clear();
    staged.forEach((v, k) => ids.set(k, v));
    return Promise.resolve({
      status: 200,
      body: { resourceType: 'Bundle', type: 'transaction-response', entry: answers },
    });
  };
  return { post, ids };
}

describe('write probes (recorded server behaviours)', () => {
  it('HAPI: ids yes, atomic, takes the configured size; nothing left', async () => {
    const s = server({});
    expect(await runWriteProbes(s.post, 100)).toEqual({ clientIds: true, atomic: true, bundleCap: 100 });
    expect(s.ids.size).toBe(0);
  });

  it('Medplum: the 50-entry cap is found by halving', async () => {
    const s = server({ cap: 50 });
    expect(await runWriteProbes(s.post, 100)).toMatchObject({ clientIds: true, atomic: true, bundleCap: 50 });
    expect(s.ids.size).toBe(0);
  });

  it('client-chosen ids refused: reported, nothing else probed', async () => {
    const s = server({ clientIds: false });
    expect(await runWriteProbes(s.post, 100)).toEqual({
      clientIds: false,
      problem: 'HTTP 404 to a PUT of a new client-chosen id',
    });
  });

  it('non-atomic: a failed entry leaves the good one written, which the probe sees', async () => {
    const s = server({ atomic: false });
    expect(await runWriteProbes(s.post, 10)).toMatchObject({ clientIds: true, atomic: false, bundleCap: 10 });
    expect(s.ids.size).toBe(0);
  });
});
