/**
 * A channel is one direction of one (instance, type): where changes come from, how a
 * resource is turned into what the target gets, where it goes, and how references are
 * carried. The pass (pass.ts) is the same loop for both directions; the differences live
 * here: the forward channel de-identifies and writes to pseudonymous ids on the global
 * server; the reverse channel (reverse.ts) copies admin resources from the global server to a
 * local under their own ids.
 *
 * Forward reference rules (what a reference and an id become on the global): references.ts.
 */
import type { Coding, Resource } from '@medplum/fhirtypes';
import type { Anonymizer } from '../anonymizer/index.ts';
import type { ChangeFeed } from '../changes/index.ts';
import type { GlobalServer, LocalInstance } from '../instances/index.ts';
import type { FhirStore } from './fhir-store.ts';
import { peopleContext } from './people.ts';
import { FROM_GLOBAL_TAG, FROM_LOCAL_TAG, hasTag } from './marks.ts';
import { forwardReferences } from './references.ts';
import type { CursorCodec } from './seal.ts';
import type { Direction } from './state.ts';

import type { RefPlan } from './references.ts';
export type { RefPlan };

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
  /**
   * The id a reference to a source (type, id) carries in what `transform` returns (the
   * anonymiser's pseudonym forward; the id itself in reverse): reference plans are keyed by it.
   */
  outputId(type: string, id: string): string;
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
  const refs = forwardReferences({ instance, global, anonymizer, local: input.local });
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
    targetId: (type, id) => refs.targetId(type, id),
    outputId: (type, id) => refs.outputId(type, id),
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
    plan: (type, id) => refs.plan(type, id),
    rangeCursor: input.rangeCursor,
  };
}
