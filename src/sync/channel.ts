/**
 * A channel is one direction of one (instance, type): where changes come from, how a
 * resource is turned into what the target gets, where it goes, and how references are
 * carried. The pass (pass.ts) is the same loop for both directions; the differences live
 * here: the forward channel de-identifies and writes to pseudonymous ids on the global
 * server; the reverse channel (reverse.ts) copies admin resources from the global server to a
 * local under their own ids.
 *
 * Forward reference rules (per reference of a local resource to `Type/id`):
 * - `Type` is a global admin type and the local's `Type/id` carries the `from-global` mark
 *   (it was pushed down by the reverse channel, so `id` is the global's own id): the
 *   reference keeps that id. No dependency: the global owns it.
 * - `Type` is a global admin type created on the local (no mark): `references.localOnlyAdmin`
 *   decides: `send` links to its pseudonym (and it is synced as a dependency), `mask`/`drop`
 *   as below. When the rules exempt the admin type from pseudonyms (the default), a
 *   local-only admin resource gets an id derived from (instance, type, id) instead, so two
 *   locals' resources can never collide on the global.
 * - `Type` is in `sendTypes`: link to the pseudonym; the target is a dependency (written in
 *   the same bundle when the global does not have it yet).
 * - Anything else (e.g. Practitioner when not sent, absolute URLs, `urn:` leftovers):
 *   `references.unsynced` (`mask` = data-absent-reason in place of the reference, or `drop`).
 */
import type { Coding, Resource } from '@medplum/fhirtypes';
import type { Anonymizer } from '../anonymizer/index.ts';
import type { ChangeFeed } from '../changes/index.ts';
import type { GlobalServer, LocalInstance } from '../instances/index.ts';
import type { FhirStore } from './fhir-store.ts';
import { stateId } from './ids.ts';
import { peopleContext } from './people.ts';
import { FROM_GLOBAL_TAG, FROM_LOCAL_TAG, SYNC_SYSTEM, hasTag } from './marks.ts';
import type { CursorCodec } from './seal.ts';
import type { Direction } from './state.ts';

/** How one source reference is carried to the target. */
export type RefPlan =
  | { readonly action: 'link'; readonly targetRef: string; readonly dependency: boolean }
  | { readonly action: 'mask' }
  | { readonly action: 'drop' };

/** Result of transforming one resource. */
export type TransformOutcome =
  | { readonly ok: true; readonly resource: Resource }
  | { readonly ok: false; readonly code: string; readonly location?: string };

/** Everything a pass needs to know about one direction of one (instance, type). */
export interface Channel {
  readonly direction: Direction;
  readonly instanceId: string;
  readonly resourceType: string;
  /** Where changes are read. */
  readonly feed: ChangeFeed;
  /** Where dependencies missing on the target are read. */
  readonly source: FhirStore;
  /** Where data, cursor and quarantine records are written. */
  readonly target: FhirStore;
  readonly codec: CursorCodec;
  /** Rules version recorded with cursors and quarantine records. */
  readonly rulesVersion: string;
  /** Target transaction size, cursor entry included. */
  readonly bundleSize: number;
  /** Changes per feed page. */
  readonly pageSize: number;
  /** The mark added to every resource written. */
  readonly mark: Readonly<Coding>;
  /** Id on the target of a source (type, id). */
  targetId(type: string, id: string): string;
  /** True when a changed resource is not this channel's to send (the other side owns it). */
  skip(resource: Resource): boolean;
  /**
   * De-identifies (forward) or copies (reverse) a batch; output order = input order. Rejects
   * only when what it reads from the source fails (retryable, like any read of the pass).
   */
  transform(resources: readonly Resource[]): Promise<TransformOutcome[]>;
  /** How a reference to a source (type, id) is carried. */
  plan(type: string, id: string): Promise<RefPlan>;
  /** A feed cursor that starts at an instant (backfill), when the feed supports it. */
  rangeCursor?(since: string): string | undefined;
}

/** Inputs of {@link forwardChannel}. */
export interface ForwardChannelInput {
  readonly instance: LocalInstance;
  readonly global: GlobalServer;
  readonly resourceType: string;
  readonly feed: ChangeFeed;
  readonly anonymizer: Anonymizer;
  readonly local: FhirStore;
  readonly globalStore: FhirStore;
  readonly codec: CursorCodec;
  readonly rangeCursor?: (since: string) => string | undefined;
}

/**
 * The forward channel of (instance, type): local → de-identified → global.
 * @param input - instance and global config, feed, anonymizer, stores, cursor codec.
 * @returns the channel.
 */
export function forwardChannel(input: ForwardChannelInput): Channel {
  const { instance, global, anonymizer } = input;
  const adminTypes = new Set(global.adminTypes);
  const sendTypes = new Set(instance.sendTypes);
  const globalOwned = lazyIdSets(input.local, { _tag: `${SYNC_SYSTEM}|${FROM_GLOBAL_TAG.code}` });
  const pseudo = (type: string, id: string): string => {
    const p = anonymizer.pseudonymousId(instance.id, type, id);
    // Rules usually exempt admin types from pseudonyms (their ids are the global's). A
    // local-only admin resource sent forward still needs an id no other local can take.
    return p === id && adminTypes.has(type) ? stateId('local-admin', instance.id, type, id) : p;
  };
  const unsynced: RefPlan = { action: instance.references.unsynced };
  return {
    direction: 'forward',
    instanceId: instance.id,
    resourceType: input.resourceType,
    feed: input.feed,
    source: input.local,
    target: input.globalStore,
    codec: input.codec,
    rulesVersion: anonymizer.rulesVersion,
    bundleSize: global.bundleSize,
    pageSize: instance.feed.pageSize ?? Math.max(1, global.bundleSize - 1),
    mark: FROM_LOCAL_TAG,
    targetId: pseudo,
    skip: (resource) => hasTag(resource, FROM_GLOBAL_TAG),
    transform: async (resources) => {
      // The people of the batch come along as context, so one type sent on its own is
      // scrubbed against its Patient's and relatives' names (people.ts).
      const related = resources.length === 0 ? [] : await peopleContext(resources, input.local);
      return anonymizer
        .deidentify(resources, { instanceId: instance.id, related })
        .outcomes.map((o) =>
          o.ok ? { ok: true, resource: o.resource } : { ok: false, code: o.code, location: o.location },
        );
    },
    plan: async (type, id) => {
      if (adminTypes.has(type)) {
        if ((await globalOwned(type)).has(id)) {
          return { action: 'link', targetRef: `${type}/${id}`, dependency: false };
        }
        const rule = instance.references.localOnlyAdmin;
        return rule === 'send'
          ? { action: 'link', targetRef: `${type}/${pseudo(type, id)}`, dependency: true }
          : { action: rule };
      }
      return sendTypes.has(type)
        ? { action: 'link', targetRef: `${type}/${pseudo(type, id)}`, dependency: true }
        : unsynced;
    },
    rangeCursor: input.rangeCursor,
  };
}

/**
 * Per-type sets of ids found by a search, loaded once per channel (one pass) on first use.
 * @param store - where to search.
 * @param query - the search (ids only are asked for).
 * @returns a loader per type.
 */
export function lazyIdSets(
  store: FhirStore,
  query: Readonly<Record<string, string>>,
): (type: string) => Promise<ReadonlySet<string>> {
  const cache = new Map<string, Promise<ReadonlySet<string>>>();
  return (type) => {
    let hit = cache.get(type);
    if (hit === undefined) {
      hit = store
        .searchAll(type, { ...query, _elements: 'id', _count: '1000' })
        .then((rs) => new Set(rs.flatMap((r) => (r.id === undefined ? [] : [r.id]))));
      cache.set(type, hit);
    }
    return hit;
  };
}
