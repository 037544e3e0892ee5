/**
 * The conditional first write of a cursor against a real HAPI server: the create-only
 * If-Match (`W/"0"`) creates when absent and is refused when present, so of two processes
 * creating the same cursor at once exactly one wins and the other gets the conflict code.
 */
import { describe, expect, it } from 'vitest';
import { ensureCursor, loadCursor } from '../../src/sync/cursor-store.ts';
import type { CursorState } from '../../src/sync/state.ts';
import { fhirUrls } from '../servers/urls.ts';
import { storeAt, uniq } from './live.ts';

function deps(): Parameters<typeof ensureCursor>[0] {
  return {
    store: storeAt(fhirUrls().global),
    retry: { attempts: 3, baseDelayMs: 50, maxDelayMs: 200 },
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    random: Math.random,
  };
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

describe('first cursor write on HAPI', () => {
  it('two racing creations: exactly one wins, the other gets SYNC_ERR_CURSOR_CONFLICT', async () => {
    const initial: CursorState = {
      direction: 'forward',
      instanceId: `race-${uniq()}`,
      resourceType: 'Observation',
      updatedAt: new Date().toISOString(),
    };
    const results = await Promise.all([0, 1, 2].map(() => codeOf(ensureCursor(deps(), initial))));
    // Whoever read "absent" after another's creation just returns the stored cursor; what must
    // never happen is two creations both succeeding (version 2 would mean one replaced the other).
    expect(results.filter((r) => r !== undefined && r !== 'SYNC_ERR_CURSOR_CONFLICT')).toEqual([]);
    const stored = await loadCursor(deps(), 'forward', initial.instanceId, 'Observation');
    expect(stored.versionId).toBe('1');
  });

  it('a creation after another process created and moved the cursor is refused, the cursor kept', async () => {
    const initial: CursorState = {
      direction: 'forward',
      instanceId: `late-${uniq()}`,
      resourceType: 'Patient',
      updatedAt: new Date().toISOString(),
    };
    await ensureCursor(deps(), initial);
    // The late process read "absent" earlier; simulate that stale read, then it writes.
    const late = deps();
    const realRead = late.store.read.bind(late.store);
    let first = true;
    const staleStore = {
      ...late.store,
      read: (type: string, id: string, signal?: AbortSignal) => {
        const stale = first;
        first = false;
        return stale ? Promise.resolve(undefined) : realRead(type, id, signal);
      },
      transaction: late.store.transaction.bind(late.store),
    };
    expect(await codeOf(ensureCursor({ ...late, store: staleStore }, initial))).toBe('SYNC_ERR_CURSOR_CONFLICT');
    expect((await loadCursor(deps(), 'forward', initial.instanceId, 'Patient')).versionId).toBe('1');
  });
});
