import type { Resource } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { dependencyOrder, lastPerIdentity, planBundles } from '../../src/sync/bundle.ts';
import type { PutOp, WriteOp } from '../../src/sync/bundle.ts';

const put = (type: string, id: string, deps: string[] = [], role: PutOp['role'] = 'data'): PutOp => ({
  kind: 'put',
  type,
  id,
  resource: { resourceType: type, id } as Resource,
  deps,
  role,
});
const del = (type: string, id: string): WriteOp => ({ kind: 'delete', type, id, role: 'data' });
const keys = (ops: readonly WriteOp[]): string[] =>
  ops.map((o) => `${o.kind === 'put' ? 'PUT' : 'DEL'} ${o.type}/${o.id}`);

describe('bundle planning', () => {
  it('keeps one op per identity, the last one (a resurrection wins as the resource)', () => {
    const ops = [
      put('Patient', 'a'),
      del('Patient', 'b'),
      del('Patient', 'a'),
      put('Patient', 'b'),
      put('Patient', 'c'),
    ];
    expect(keys(lastPerIdentity(ops))).toEqual(['DEL Patient/a', 'PUT Patient/b', 'PUT Patient/c']);
  });

  it('orders PUTs after their dependencies, stably, deletes last', () => {
    const ops = [
      put('Observation', 'o1', ['Patient/p', 'Encounter/e']),
      del('Observation', 'gone'),
      put('Encounter', 'e', ['Patient/p']),
      put('Patient', 'p'),
      put('Observation', 'o2', ['Patient/zzz-not-here']),
    ];
    expect(keys(dependencyOrder(ops))).toEqual([
      'PUT Patient/p',
      'PUT Encounter/e',
      'PUT Observation/o1',
      'PUT Observation/o2',
      'DEL Observation/gone',
    ]);
  });

  it('keeps cycles in input order', () => {
    const ops = [
      put('Observation', 'a', ['Observation/b']),
      put('Observation', 'b', ['Observation/a']),
      put('Patient', 'p'),
    ];
    expect(keys(dependencyOrder(ops))).toEqual(['PUT Patient/p', 'PUT Observation/a', 'PUT Observation/b']);
  });

  it('splits by bundle size with the cursor last, in the last bundle', () => {
    const ops = Array.from({ length: 7 }, (_, i) => put('Patient', `p${i}`));
    const cursor = put('Basic', 'cur', [], 'cursor');
    const plan = planBundles(ops, { bundleSize: 4, cursor: { ...cursor, ifMatch: 'W/"3"' } });
    expect(plan.map((b) => b.ops.length)).toEqual([4, 4]);
    const last = plan[1]!.bundle.entry!;
    expect(last[3]).toMatchObject({ request: { method: 'PUT', url: 'Basic/cur', ifMatch: 'W/"3"' } });
    expect(plan[0]!.bundle).toMatchObject({ resourceType: 'Bundle', type: 'transaction' });
    expect(plan[0]!.bundle.entry![0]).toEqual({
      resource: { resourceType: 'Patient', id: 'p0' },
      request: { method: 'PUT', url: 'Patient/p0' },
    });
    expect(planBundles(ops.slice(0, 3), { bundleSize: 4, cursor }).map((b) => b.ops.length)).toEqual([4]);
    expect(planBundles([], { bundleSize: 4 })).toEqual([]);
  });

  it('writes DELETE entries without a body', () => {
    const [b] = planBundles([del('Observation', 'x')], { bundleSize: 10 });
    expect(b!.bundle.entry).toEqual([{ request: { method: 'DELETE', url: 'Observation/x' } }]);
  });

  it('never puts one identity twice in a bundle', () => {
    const ops = [put('Patient', 'a'), put('Patient', 'a', ['Organization/o']), del('Patient', 'a')];
    const plan = planBundles(ops, { bundleSize: 100 });
    expect(keys(plan[0]!.ops)).toEqual(['DEL Patient/a']);
  });
});
