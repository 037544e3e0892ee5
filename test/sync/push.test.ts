/**
 * The push Subscriptions a reconcile keeps on a local (src/sync/push.ts): one per sent type,
 * without payload, with the instance's token; kept when unchanged, rewritten when the public URL
 * changes, deleted when the type is no longer sent.
 */
import type { Subscription } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { parseInstances } from '../../src/instances/index.ts';
import { pushToken, reconcileSubscriptions } from '../../src/sync/index.ts';
import { wantedSubscription } from '../../src/sync/push.ts';
import { fakeStore } from './fakes.ts';

const instanceWith = (types: string) =>
  parseInstances(
    `version: 1\nglobal: { baseUrl: http://global/ }\ninstances:\n  - id: a\n    baseUrl: http://local-a/\n    sendTypes: [${types}]\n`,
    { source: 't' },
  ).config.instances[0]!;
const secret = Buffer.from('push-secret-for-tests-0123456789abcdef');

describe('push subscriptions on a local', () => {
  it('wants one rest-hook Subscription per type, without payload, with the token header', () => {
    const s = wantedSubscription(instanceWith('Patient'), 'Patient', { publicUrl: 'https://sync.example/', secret });
    expect(s).toMatchObject({ criteria: 'Patient?', status: 'requested', channel: { type: 'rest-hook' } });
    expect(s.channel.payload).toBeUndefined();
    expect(s.channel.endpoint).toBe('https://sync.example/hooks/fhir/a/Patient');
    expect(s.channel.header).toEqual([`x-fhir-sync-token: ${pushToken(secret, 'a')}`]);
  });

  it('creates what is missing, keeps what is active and unchanged, rewrites and deletes the rest', async () => {
    const local = fakeStore('http://local-a/fhir');
    const push = { publicUrl: 'https://sync.example', secret };
    const first = await reconcileSubscriptions(instanceWith('Patient, Observation'), local, push);
    expect(first).toMatchObject({ supported: true, written: 2, kept: 0, removed: 0 });
    // The local activates them; a second reconcile changes nothing.
    for (const [key, stored] of local.data) {
      if (key.startsWith('Subscription/')) {
        local.put({ ...(stored.resource as Subscription), status: 'active' });
      }
    }
    expect(await reconcileSubscriptions(instanceWith('Patient, Observation'), local, push)).toMatchObject({
      written: 0,
      kept: 2,
      removed: 0,
    });
    // Observation no longer sent, and the service moved: Patient rewritten, Observation deleted.
    const moved = await reconcileSubscriptions(instanceWith('Patient'), local, {
      ...push,
      publicUrl: 'https://new.example',
    });
    expect(moved).toMatchObject({ written: 1, kept: 0, removed: 1 });
    const left = [...local.data.values()].flatMap((s) =>
      s.deleted || s.resource?.resourceType !== 'Subscription' ? [] : [s.resource],
    );
    expect(left.map((s) => [s.criteria, s.channel.endpoint])).toEqual([
      ['Patient?', 'https://new.example/hooks/fhir/a/Patient'],
    ]);
  });
});
