/**
 * What the HTTP layer needs from the rest of the service, as small interfaces. The app
 * takes each of these as an option (no module singletons), so route tests inject in-memory
 * doubles and `main.ts` injects the real sync engine, registry and rules store.
 */
import type { Registry } from 'prom-client';
import type { FastifyBaseLogger } from 'fastify';
import type { SyncControl } from '../sync/control.ts';
import type { AuthConfig } from './auth/config.ts';
import type { RulesStore } from '../anonymizer/index.ts';

/** The three roles of the service, as an `as const` object plus a union of the same name. */
export const Role = {
  /** Manual syncs, instance registry, quarantine. */
  operator: 'operator',
  /** De-identification rules. */
  compliance: 'compliance',
  /** Read-only GETs. */
  viewer: 'viewer',
} as const;
export type Role = (typeof Role)[keyof typeof Role];

/** Every role may read; a route that only reads lists all of them. */
export const READ_ROLES: readonly Role[] = [Role.viewer, Role.operator, Role.compliance];

/** Who is calling: from a verified JWT or a static API key. Never holds the token. */
export interface Principal {
  /** JWT `sub`, or the API key's name. Used as the author of audit events and rule versions. */
  readonly subject: string;
  readonly roles: readonly Role[];
  readonly via: 'jwt' | 'api-key';
}

/**
 * One audit event from the API: who, what, when, outcome, and references/counts only (never
 * resource content). Written by the injected audit function (the sync side turns it into a
 * log line and a FHIR AuditEvent on the global server).
 */
export interface ApiAuditEvent {
  /** Dotted verb, e.g. `sync.trigger`, `rules.replace`, `instance.add`. */
  readonly action: string;
  readonly outcome: 'success' | 'failure';
  readonly actor: { readonly subject: string; readonly via: Principal['via']; readonly roles: readonly Role[] };
  /** ISO instant. */
  readonly at: string;
  /** Hash of the rules in use when the action ran. */
  readonly rulesVersion?: string;
  /** Ids the action touched: instance id, resource type, job id, rules version. */
  readonly target?: Readonly<Record<string, string | number | undefined>>;
  /** Counts only (e.g. resources retried). */
  readonly counts?: Readonly<Record<string, number>>;
  /** Catalogue code when the action failed. */
  readonly failureCode?: string;
}

/** Writes one audit event; the API waits for it so an action is never unaudited. */
export type AuditSink = (event: ApiAuditEvent) => Promise<void>;

/** A registered local instance as the API shows it. The registry owns the real shape. */
export interface InstanceRecord {
  readonly id: string;
}

/**
 * The instance registry as the API uses it. The registry validates every change and
 * persists it (config/instances.yaml); invalid input throws a coded AppError.
 */
export interface InstanceRegistryLike {
  list(): Promise<readonly InstanceRecord[]>;
  get(id: string): Promise<InstanceRecord | undefined>;
  add(input: Readonly<Record<string, unknown>>): Promise<InstanceRecord>;
  update(id: string, patch: Readonly<Record<string, unknown>>): Promise<InstanceRecord>;
  remove(id: string): Promise<void>;
}

/** Everything `buildApp` takes. */
export interface AppOptions {
  readonly sync: SyncControl;
  readonly instances: InstanceRegistryLike;
  readonly rules: RulesStore;
  /** prom-client registry exposed at GET /metrics. */
  readonly metrics: Registry;
  readonly audit: AuditSink;
  readonly auth: AuthConfig;
  /** A pino logger (or any Fastify-compatible one); defaults to no logging. */
  readonly logger?: FastifyBaseLogger;
  /**
   * Largest accepted request body in bytes.
   * @defaultValue 1 MiB
   */
  readonly bodyLimit?: number;
  /** Requests per window per client address; `false` turns the limit off (tests). */
  readonly rateLimit?: { readonly max: number; readonly timeWindowMs: number } | false;
  /**
   * Serve OpenAPI at /docs (JSON at /docs/json).
   * @defaultValue true
   */
  readonly docs?: boolean;
  /**
   * How long /readyz waits for the sync side before answering "not ready".
   * @defaultValue 3000
   */
  readonly readyTimeoutMs?: number;
  /**
   * Time a client has to send a whole request (headers and body), in milliseconds; after it
   * the connection gets a 408 problem and is closed.
   * @defaultValue 30000
   */
  readonly requestTimeoutMs?: number;
  /**
   * Trust X-Forwarded-For from a reverse proxy (the client address keys the rate limit).
   * @defaultValue false
   */
  readonly trustProxy?: boolean | string;
  /**
   * JSON schemas of instance records and bodies.
   * @defaultValue the registry's record schema (instanceRecordJsonSchema); bodies are checked by the registry
   */
  readonly instanceSchemas?: {
    readonly recordSchema?: object;
    readonly createSchema?: object;
    readonly patchSchema?: object;
  };
  /** Clock for audit timestamps (tests). */
  readonly now?: () => Date;
  /** The push secret: with it, POST /hooks/fhir/{instance}/{type} takes the locals' wake-ups. */
  readonly pushSecret?: Uint8Array;
}
