import { describe, expect, it } from 'vitest';
import { stateId } from '../../src/sync/ids.ts';
import { outgoingMeta, FROM_LOCAL_TAG, hasTag } from '../../src/sync/marks.ts';
import { sealingCodec } from '../../src/sync/seal.ts';
import {
  cursorId,
  cursorResource,
  parseCursor,
  parseQuarantine,
  quarantineId,
  quarantineResource,
} from '../../src/sync/state.ts';

describe('state resources', () => {
  it('derives stable, UUID-shaped, distinct ids', () => {
    const a = cursorId('forward', 'local-a', 'Patient');
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(cursorId('forward', 'local-a', 'Patient')).toBe(a);
    expect(cursorId('reverse', 'local-a', 'Patient')).not.toBe(a);
    expect(cursorId('forward', 'local-b', 'Patient')).not.toBe(a);
    expect(stateId('a', 'bc')).not.toBe(stateId('ab', 'c'));
    expect(quarantineId('forward', 'local-a', 'Patient', 'x')).not.toBe(a);
  });

  it('round-trips a cursor through a Basic', () => {
    const state = {
      direction: 'forward' as const,
      instanceId: 'local-a',
      resourceType: 'Observation',
      cursor: '{"c":1}',
      updatedAt: '2026-01-01T00:00:00.000Z',
      rulesVersion: 'r1',
    };
    const basic = cursorResource(state);
    expect(basic).toMatchObject({
      resourceType: 'Basic',
      id: cursorId('forward', 'local-a', 'Observation'),
      identifier: [{ value: 'forward/local-a/Observation' }],
    });
    expect(basic.meta?.tag).toEqual([{ system: 'urn:fhir-sync', code: 'sync-state' }]);
    expect(parseCursor(basic)).toEqual(state);
    expect(() => parseCursor({ resourceType: 'Basic', id: 'x', code: {} })).toThrow(
      expect.objectContaining({ code: 'SYNC_ERR_CURSOR_INVALID' }),
    );
  });

  it('round-trips a quarantine record without content', () => {
    const rec = {
      direction: 'forward' as const,
      instanceId: 'local-a',
      resourceType: 'Patient',
      targetId: 'p-1',
      op: 'upsert' as const,
      reasonCode: 'DEID_ERR_X',
      detail: 'Patient.name',
      rulesVersion: 'r1',
      at: '2026-01-02T03:04:05.000Z',
    };
    const basic = quarantineResource(rec);
    expect(basic.id).toBe(quarantineId('forward', 'local-a', 'Patient', 'p-1'));
    const back = parseQuarantine({ ...basic, meta: { ...basic.meta, lastUpdated: rec.at } });
    expect(back).toMatchObject({ ...rec, id: basic.id });
    expect(parseQuarantine({ resourceType: 'Basic', id: 'x', code: {} })).toBeUndefined();
  });
});

describe('marks', () => {
  it('drops server bookkeeping and adds the mark once', () => {
    const meta = outgoingMeta(
      {
        versionId: '3',
        lastUpdated: 'x',
        source: 'http://local#req',
        tag: [{ system: 's', code: 'c' }, { ...FROM_LOCAL_TAG }],
        security: [{ code: 'PSEUDED' }],
      },
      FROM_LOCAL_TAG,
    );
    expect(meta).toEqual({ tag: [{ system: 's', code: 'c' }, { ...FROM_LOCAL_TAG }], security: [{ code: 'PSEUDED' }] });
    expect(hasTag({ resourceType: 'Patient', meta }, FROM_LOCAL_TAG)).toBe(true);
    expect(hasTag({ resourceType: 'Patient' }, FROM_LOCAL_TAG)).toBe(false);
  });
});

describe('cursor sealing', () => {
  const secret = new Uint8Array(32).fill(7);
  it('hides the cursor and opens it again', () => {
    const codec = sealingCodec(secret, 'k1');
    const plain = '{"c":1,"f":"ts","lo":"2026-01-01T00:00:00.000Z","seen":[[1,["patient-123|v2"]]]}';
    const sealed = codec.seal(plain);
    expect(sealed).toMatch(new RegExp(`^s1\\.${Buffer.from('k1').toString('base64url')}\\.`));
    const dotted = sealingCodec(secret, 'key.v2');
    expect(dotted.open(dotted.seal(plain))).toBe(plain);
    expect(sealed).not.toContain('patient-123');
    expect(codec.seal(plain)).not.toBe(sealed);
    expect(codec.open(sealed)).toBe(plain);
  });

  it('refuses other keys, tampering and plain text', () => {
    const sealed = sealingCodec(secret, 'k1').seal('x');
    expect(() => sealingCodec(secret, 'k2').open(sealed)).toThrow(
      expect.objectContaining({ code: 'SYNC_ERR_CURSOR_INVALID' }),
    );
    expect(() => sealingCodec(new Uint8Array(32).fill(8), 'k1').open(sealed)).toThrow(
      expect.objectContaining({ code: 'SYNC_ERR_CURSOR_INVALID' }),
    );
    // A character in the middle of the sealed data: every one of its bits is significant (the last base64 character
    // may carry padding bits a decoder ignores, so changing it may change nothing).
    const dataStart = sealed.lastIndexOf('.') + 1;
    const mid = dataStart + Math.floor((sealed.length - dataStart) / 2);
    const tampered = sealed.slice(0, mid) + (sealed[mid] === 'A' ? 'B' : 'A') + sealed.slice(mid + 1);
    expect(() => sealingCodec(secret, 'k1').open(tampered)).toThrow(
      expect.objectContaining({ code: 'SYNC_ERR_CURSOR_INVALID' }),
    );
    expect(() => sealingCodec(secret, 'k1').open('{"c":1}')).toThrow(
      expect.objectContaining({ code: 'SYNC_ERR_CURSOR_INVALID' }),
    );
  });
});
