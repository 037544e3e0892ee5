/**
 * The reverse channel: admin resources (default Organization, Location) changed on the
 * global server are copied to every registered local that lists the type in
 * `receiveAdminTypes`, under the same id, with no de-identification (admin data is not
 * PHI). The cursor of (local, type) lives on that local (a `Basic`, in the same transaction
 * as the copies), quarantine records too.
 *
 * No echo, no ping-pong: every copy carries the `from-global` mark and the forward channel
 * never sends a resource with that mark; the reverse channel never sends a global resource
 * with the `from-local` mark (a pseudonymous copy of a local's own admin resource). Marks
 * are ownership marks and survive later edits (tags merge forward), so "global wins": a local
 * edit of a global-owned Organization is never sent up, and the next change on the global
 * overwrites it. Re-sending an unchanged copy creates no new version (identical PUT).
 */
import type { ChangeFeed } from '../changes/index.ts';
import type { GlobalServer, LocalInstance } from '../instances/index.ts';
import type { Channel } from './channel.ts';
import type { FhirStore } from './fhir-store.ts';
import { FROM_GLOBAL_TAG, FROM_LOCAL_TAG, hasTag } from './marks.ts';
import { plainCodec } from './seal.ts';

/** Inputs of {@link reverseChannel}. */
export interface ReverseChannelInput {
  readonly instance: LocalInstance;
  readonly global: GlobalServer;
  readonly resourceType: string;
  /** Change feed over the global server. */
  readonly feed: ChangeFeed;
  readonly local: FhirStore;
  readonly globalStore: FhirStore;
  readonly rangeCursor?: (since: string) => string | undefined;
}

/** Rules version recorded by the reverse channel (nothing is de-identified). */
export const REVERSE_RULES_VERSION = 'none';

/**
 * The reverse channel of (local instance, admin type): global → local.
 * References to other received admin types keep their ids (and are pulled in as
 * dependencies when the local lacks them); references to anything else are masked.
 * @param input - instance and global config, the global's feed, stores.
 * @returns the channel.
 */
export function reverseChannel(input: ReverseChannelInput): Channel {
  const received = new Set(input.instance.receiveAdminTypes);
  return {
    direction: 'reverse',
    instanceId: input.instance.id,
    resourceType: input.resourceType,
    feed: input.feed,
    source: input.globalStore,
    target: input.local,
    codec: plainCodec,
    rulesVersion: REVERSE_RULES_VERSION,
    bundleSize: input.instance.bundleSize,
    pageSize: Math.max(1, input.instance.bundleSize - 1),
    mark: FROM_GLOBAL_TAG,
    targetId: (_type, id) => id,
    outputId: (_type, id) => id,
    skip: (resource) => hasTag(resource, FROM_LOCAL_TAG),
    transform: (resources) => Promise.resolve(resources.map((resource) => ({ ok: true as const, resource }))),
    plan: (type, id) =>
      Promise.resolve(
        received.has(type) ? { action: 'link', targetRef: `${type}/${id}`, dependency: true } : { action: 'mask' },
      ),
    rangeCursor: input.rangeCursor,
  };
}
