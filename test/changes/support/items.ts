/** Builders for feed items in unit tests. */
import type { Resource } from '@medplum/fhirtypes';
import type { Change, ChangePage } from '../../../src/changes/index.ts';
import { changeKey, type Item } from '../../../src/changes/tracker.ts';

export function res(id: string, versionId: string, pos: number, resourceType = 'Basic'): Item {
  const lastUpdated = new Date(pos).toISOString();
  const resource = { resourceType, id, meta: { versionId, lastUpdated } } as Resource;
  const change: Change = { kind: 'resource', resourceType, id, versionId, lastUpdated, resource };
  return { change, pos, key: changeKey(change) };
}

export function del(id: string, versionId: string, pos: number, resourceType = 'Basic'): Item {
  const change: Change = { kind: 'deletion', resourceType, id, versionId };
  return { change, pos, key: changeKey(change) };
}

export async function collect(pages: AsyncIterable<ChangePage>): Promise<ChangePage[]> {
  const out: ChangePage[] = [];
  for await (const p of pages) {
    out.push(p);
  }
  return out;
}

export function ids(pages: readonly ChangePage[]): string[] {
  return pages.flatMap((p) => p.changes.map((c) => `${c.id}/${c.versionId ?? '?'}`));
}
