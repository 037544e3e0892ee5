import { describe, expect, it } from 'vitest';
import type { Change } from '../../src/changes/index.ts';
import { latestPerResource } from '../../src/sync/index.ts';
import { del, res } from '../changes/support/items.ts';

const c = (...items: { change: Change }[]): Change[] => items.map((i) => i.change);

describe('latestPerResource', () => {
  it('keeps the latest version of each resource', () => {
    const out = latestPerResource(c(res('a', '1', 1), res('b', '1', 2), res('a', '2', 3)));
    expect(out.map((x) => `${x.id}/${x.versionId}`)).toEqual(['b/1', 'a/2']);
  });

  it('never loses a deletion that is the latest change', () => {
    const out = latestPerResource(c(res('a', '1', 1), res('a', '2', 2), del('a', '3', 3)));
    expect(out).toEqual([expect.objectContaining({ kind: 'deletion', id: 'a', versionId: '3' })]);
  });

  it('lets a resurrection (a version after the deletion) come through as a resource', () => {
    const out = latestPerResource(c(res('a', '1', 1), del('a', '2', 2), res('a', '3', 3)));
    expect(out).toEqual([expect.objectContaining({ kind: 'resource', id: 'a', versionId: '3' })]);
  });

  it('prefers the higher numeric version even when it came first', () => {
    const out = latestPerResource(c(res('a', '5', 5), res('a', '4', 4)));
    expect(out.map((x) => x.versionId)).toEqual(['5']);
  });

  it('keeps resources of different types with the same id apart', () => {
    const out = latestPerResource(c(res('a', '1', 1, 'Basic'), res('a', '1', 1, 'Patient')));
    expect(out).toHaveLength(2);
  });
});
