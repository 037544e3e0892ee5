/**
 * The marks the service puts on what it writes, and the tests that read them.
 *
 * Marks mean ownership, not "last writer": `from-local` is on every de-identified resource
 * the forward channel writes to the global server, `from-global` on every admin resource the
 * reverse channel writes to a local. Because FHIR servers merge tags forward on update (HAPI
 * by default), a mark stays on the resource through later edits; that is exactly the rule we
 * want: a global-owned Organization edited on a local is still global-owned (global wins, the
 * local edit is not sent up), and a pseudonymous copy of a local's own Organization edited on
 * the global is still local-derived (never pushed down). So an echo is impossible by
 * construction: each channel writes only resources it marks and skips every resource that
 * carries the other channel's mark. Identical re-PUTs create no version on HAPI/Medplum, so
 * retries do not echo either.
 */
import type { Coding, Meta, Resource } from '@medplum/fhirtypes';

/** CodeSystem of the engine's own tags and codes. */
export const SYNC_SYSTEM = 'urn:fhir-sync';

/** On resources written to the global server by the forward channel. */
export const FROM_LOCAL_TAG: Readonly<Coding> = Object.freeze({ system: SYNC_SYSTEM, code: 'from-local' });
/** On admin resources written to a local by the reverse channel. */
export const FROM_GLOBAL_TAG: Readonly<Coding> = Object.freeze({ system: SYNC_SYSTEM, code: 'from-global' });
/** On the engine's state resources (cursors, quarantine records). */
export const STATE_TAG: Readonly<Coding> = Object.freeze({ system: SYNC_SYSTEM, code: 'sync-state' });

/**
 * Whether a resource carries a tag.
 * @param resource - any resource.
 * @param tag - system and code to look for.
 * @returns true when present.
 */
export function hasTag(resource: Resource, tag: Readonly<Coding>): boolean {
  return (resource.meta?.tag ?? []).some((t) => t.system === tag.system && t.code === tag.code);
}

/**
 * The meta of a resource about to be written elsewhere: server-owned fields dropped
 * (versionId, lastUpdated, source carry the origin server's bookkeeping), the mark added.
 * @param meta - the original meta.
 * @param mark - the tag to add.
 * @returns a new meta.
 */
export function outgoingMeta(meta: Meta | undefined, mark: Readonly<Coding>): Meta {
  const { versionId: _v, lastUpdated: _l, source: _s, ...rest } = meta ?? {};
  const tags = (rest.tag ?? []).filter((t) => !(t.system === mark.system && t.code === mark.code));
  return { ...rest, tag: [...tags, { ...mark }] };
}
