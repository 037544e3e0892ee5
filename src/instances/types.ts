/**
 * The shape of config/instances.yaml once loaded: the global server and the registered
 * local instances (the allow-list of the sync engine). Everything here is validated and
 * deep-frozen by the loader; code downstream never re-checks it. Secrets never appear:
 * authentication names environment variables, and the values are read only when a client
 * is built.
 */
import type { FhirAuth } from '../shared/fhir-client.ts';

/**
 * How a server is authenticated: by reference to environment variables, never inline. It is
 * the FHIR client's own `FhirAuth`, so the registry and the client cannot drift apart.
 */
export type AuthRef = FhirAuth;

/** Where a FHIR server lives and how to talk to it. */
export interface ServerConnection {
  /** Server root, always ending with `/`, e.g. `http://127.0.0.1:8091/`. */
  readonly baseUrl: string;
  /** Path of the FHIR base below `baseUrl`, e.g. `fhir`. The FHIR base is `baseUrl + fhirUrlPath`. */
  readonly fhirUrlPath: string;
  readonly auth: AuthRef;
  /** Trust exactly this CA (PEM file) for TLS instead of the system roots. */
  readonly tls?: { readonly caFile: string };
  /**
   * Per-request timeout in milliseconds.
   * @defaultValue 30000
   */
  readonly timeoutMs: number;
  /**
   * Largest answer body read from this server, in bytes.
   * @defaultValue 33554432 (32 MiB, the FHIR client's default)
   */
  readonly maxResponseBytes?: number;
  /**
   * Largest transaction bundle written to this server, cursor entry included.
   * @defaultValue 100
   */
  readonly bundleSize: number;
}

/** Kinds of change feed a local can be read with (the `FeedKind` values of src/changes). */
export const FEED_KINDS = ['fhir-history', 'aidbox-changes', 'search-lastupdated', 'auto'] as const;
export type FeedKind = (typeof FEED_KINDS)[number];

/**
 * What happens to a reference the global server cannot resolve because its target type is
 * not synced: `mask` keeps the element and replaces the reference by a data-absent-reason
 * extension (`masked`), so required elements stay present; `drop` removes the element.
 */
export const UNSYNCED_RULES = ['mask', 'drop'] as const;
export type UnsyncedRule = (typeof UNSYNCED_RULES)[number];

/**
 * What happens to an admin resource (e.g. an Organization) created on the local and not
 * pushed down from the global: `send` syncs it forward like clinical data (de-identified,
 * pseudonymous id; the admin type must then be in `sendTypes`), `mask`/`drop` treat
 * references to it like references to an unsynced type.
 */
export const LOCAL_ADMIN_RULES = ['send', 'mask', 'drop'] as const;
export type LocalAdminRule = (typeof LOCAL_ADMIN_RULES)[number];

/** How one local's changes are read; passed to the change feed factory (`ChangeFeedConfig`). */
export interface FeedConfig {
  readonly kind: FeedKind;
  /**
   * Changes per page asked of the feed. Defaults to the global's bundle size minus one (the
   * cursor entry), so a page fits one transaction.
   */
  readonly pageSize?: number;
  /** Settle window in ms (feed default 120000). */
  readonly settleMs?: number;
  /** Most dedupe keys a feed cursor may carry (feed default 1000). */
  readonly maxCursorKeys?: number;
  /** `search-lastupdated` only: query listing deletions (e.g. Medplum's `_deleted=true`). */
  readonly deletionsQuery?: string;
}

/** One registered local FHIR server. */
export interface LocalInstance extends ServerConnection {
  /** Stable id, `[a-z0-9][a-z0-9-]{0,31}`; scopes pseudonyms and cursors. */
  readonly id: string;
  readonly enabled: boolean;
  readonly feed: FeedConfig;
  /** Resource types sent to the global server (de-identified). */
  readonly sendTypes: readonly string[];
  /** Admin types received from the global server (reverse channel); a subset of `global.adminTypes`. */
  readonly receiveAdminTypes: readonly string[];
  /** Push wake-up: `auto` subscribes on the local when the service has a public URL; `off` polls only. */
  readonly push: 'auto' | 'off';
  /** node-cron expression for this instance's passes. */
  readonly schedule: string;
  /** node-cron expression of reconciliation passes (src/sync/reconcile.ts); none when absent. */
  readonly reconcileSchedule?: string;
  readonly references: {
    readonly unsynced: UnsyncedRule;
    readonly localOnlyAdmin: LocalAdminRule;
  };
}

/** The global (headquarters) server. */
export interface GlobalServer extends ServerConnection {
  /** Types the global server owns and pushes down (reverse channel). */
  readonly adminTypes: readonly string[];
  /** How the reverse channel reads the global server's admin changes. */
  readonly feed: FeedConfig;
}

/** The whole file, validated and frozen. */
export interface InstancesConfig {
  readonly version: 1;
  readonly global: GlobalServer;
  readonly instances: readonly LocalInstance[];
}

/** One configuration problem and where it is (`file:line:column`, plus the YAML path). */
export interface ConfigProblem {
  readonly path: string;
  /** Catalogue code of a policy problem (secret reference, address, CA file). */
  readonly code?: string;
  readonly line?: number;
  readonly column?: number;
  readonly message: string;
}
