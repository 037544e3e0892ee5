/**
 * The first write of a cursor is conditional (issue 11.2): two processes creating the same
 * cursor at once must not both succeed, or the later one resets a cursor the earlier one has
 * already moved. Runs on the HAPI-like fake (stale ifMatch → 409 HAPI-0989) and on a fake
 * with a Medplum-like answer (412 to If-Match on a missing resource).
 */
import type { Bundle } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { CREATE_ONLY_VERSION, cursorPut, ensureCursor, loadCursor } from '../../src/sync/cursor-store.ts';
import { sendTransaction } from '../../src/sync/writer.ts';
import type { CursorState } from '../../src/sync/state.ts';
import { fakeStore } from './fakes.ts';
import type { FakeStore } from './fakes.ts';

const initial: CursorState = {
  direction: 'forward',
  instanceId: 'site-1',
  resourceType: 'Observation',
  updatedAt: '2026-12-01T00:00:00.000Z',
};

function deps(store: FakeStore): Parameters<typeof ensureCursor>[0] {
  return {
    store,
    retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 },
    sleep: () => Promise.resolve(),
    random: () => 0.5,
  };
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code ?? 'no code';
  }
}

describe('ensureCursor: the first write has a precondition', () => {
  it('sends the creation with the create-only If-Match', async () => {
    const store = fakeStore();
    const seen: Bundle[] = [];
    store.onTransaction = (b) => seen.push(b);
    const created = await ensureCursor(deps(store), initial);
    expect(created.versionId).toBe('1');
    expect(seen[0]!.entry![0]!.request).toMatchObject({ method: 'PUT', ifMatch: `W/"${CREATE_ONLY_VERSION}"` });
  });

  it('two concurrent first writes: exactly one wins, the other gets SYNC_ERR_CURSOR_CONFLICT', async () => {
    const store = fakeStore();
    const results = await Promise.all([
      codeOf(ensureCursor(deps(store), initial)),
      codeOf(ensureCursor(deps(store), initial)),
    ]);
    expect(results.filter((r) => r === undefined)).toHaveLength(1);
    expect(results.filter((r) => r === 'SYNC_ERR_CURSOR_CONFLICT')).toHaveLength(1);
    expect(store.versions([...store.data.keys()].find((k) => k.startsWith('Basic/'))!)).toBe(1);
  });

  it("the loser never resets the winner's moved cursor", async () => {
    const store = fakeStore();
    const d = deps(store);
    const winner = await ensureCursor(d, initial);
    const moved = { ...initial, cursor: 'page-7' };
    expect((await sendTransaction(d, [cursorPut(moved, winner.versionId)])).kind).toBe('ok');
    // The loser read "absent" before the winner created it, and writes only now.
    const realRead = store.read.bind(store);
    let first = true;
    const loserStore: FakeStore = Object.assign(Object.create(store) as FakeStore, {
      read: (type: string, id: string, signal?: AbortSignal) => {
        const stale = first;
        first = false;
        return stale ? Promise.resolve(undefined) : realRead(type, id, signal);
      },
    });
    expect(await codeOf(ensureCursor(deps(loserStore), initial))).toBe('SYNC_ERR_CURSOR_CONFLICT');
    expect((await loadCursor(d, 'forward', 'site-1', 'Observation')).state?.cursor).toBe('page-7');
  });

  it('a server answering 412 to If-Match on a missing resource still gets its cursor (plain PUT fallback)', async () => {
    const store = fakeStore();
    const realTransaction = store.transaction.bind(store);
    store.transaction = async (bundle, signal) => {
      const req = bundle.entry?.[0]?.request;
      if (req?.ifMatch === `W/"${CREATE_ONLY_VERSION}"` && store.get(req.url) === undefined) {
        return { status: 412, body: undefined };
      }
      return realTransaction(bundle, signal);
    };
    const created = await ensureCursor(deps(store), initial);
    expect(created.versionId).toBe('1');
  });

  it('a server ignoring the precondition: a 200 (replaced, not created) is reported as a conflict', async () => {
    const store = fakeStore();
    await ensureCursor(deps(store), initial);
    const realTransaction = store.transaction.bind(store);
    const realRead = store.read.bind(store);
    // Simulate the race: this process read "absent", and the server drops If-Match.
    store.read = () => Promise.resolve(undefined);
    store.transaction = (bundle, signal) => {
      for (const e of bundle.entry ?? []) {
        delete e.request!.ifMatch;
      }
      return realTransaction(bundle, signal);
    };
    expect(await codeOf(ensureCursor(deps(store), initial))).toBe('SYNC_ERR_CURSOR_CONFLICT');
    store.read = realRead;
  });
});
