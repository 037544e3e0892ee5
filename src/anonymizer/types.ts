/**
 * Contract of the de-identification engine as the sync engine sees it. The engine is pure:
 * resources in, de-identified resources + a report out; no I/O.
 */
import type { Resource } from '@medplum/fhirtypes';

/** Per-call context. */
export interface DeidContext {
  /** Registered id of the local instance the resources come from; scopes every pseudonym. */
  readonly instanceId: string;
  /**
   * Resources that are not de-identified or returned but whose PHI (names, identifiers,
   * phones, addresses, birth dates) is scrubbed from the free text of the batch, e.g. the
   * Patients referred to by a batch of DocumentReferences. Free text of a record whose Patient
   * is neither in the batch nor here cannot be checked and is removed by `scrub` rules.
   */
  readonly related?: readonly Resource[];
}

/** What fired where: counts and element paths, never values. */
export interface DeidReport {
  /** `ruleName` -> number of elements it decided. */
  readonly rules: Readonly<Record<string, number>>;
  /** `ResourceType.path` -> method applied (comma-separated when several rules fired there). */
  readonly paths: Readonly<Record<string, string>>;
  /** Error code -> number of resources that failed with it. */
  readonly failed?: Readonly<Record<string, number>>;
}

export type DeidOutcome =
  | { readonly ok: true; readonly sourceType: string; readonly resource: Resource }
  | {
      readonly ok: false;
      readonly sourceType: string;
      /** Pseudonymous id of the failed resource (never the local id). */
      readonly pseudonymousId: string;
      /** Catalogue code (DEID_ERR_*). */
      readonly code: string;
      /** Where in the resource it failed (element path, no values). */
      readonly location?: string;
    };

export interface Anonymizer {
  /** Hash of the rules in use (also written to meta.tag). */
  readonly rulesVersion: string;
  readonly keyId: string;
  /**
   * De-identifies a batch. Resources of the same batch are scrubbed from each other's
   * free text (e.g. the Patient's names out of an Observation's narrative). Output order
   * follows input order; one failed resource does not fail the batch.
   */
  deidentify(resources: readonly Resource[], context: DeidContext): { outcomes: DeidOutcome[]; report: DeidReport };
  /** The pseudonymous id of a local (type, id): stable, UUID-shaped, scoped by instance. */
  pseudonymousId(instanceId: string, resourceType: string, id: string): string;
}
