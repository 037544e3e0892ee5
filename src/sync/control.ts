/**
 * What the HTTP API (and the CLI) may ask of the sync side. The API knows only this
 * interface; sync knows nothing of HTTP. Everything here carries references and counts,
 * never resources or PHI.
 */

export interface SyncRange {
  /** Start the pass from this instant instead of the committed cursor (backfill). */
  readonly since?: string;
  /** Aidbox version range `lower,upper` for a backfill. */
  readonly versionRange?: { readonly lower: number; readonly upper?: number };
}

export interface JobProgress {
  readonly pages: number;
  readonly resources: number;
  readonly deletes: number;
  readonly quarantined: number;
}

export type JobState = 'waiting' | 'active' | 'completed' | 'failed' | 'delayed' | 'unknown';

export interface JobInfo {
  readonly id: string;
  readonly kind: 'pass' | 'reverse' | 'sweep' | 'quarantine-retry' | 'reconcile';
  readonly instanceId: string;
  readonly resourceType?: string;
  readonly state: JobState;
  readonly progress: JobProgress;
  readonly createdAt?: string;
  readonly finishedAt?: string;
  /** Error code (catalogue) when failed; never resource content. */
  readonly failedCode?: string;
}

export interface TypeStatus {
  readonly instanceId: string;
  readonly resourceType: string;
  /** The committed cursor (opaque). */
  readonly cursor?: string;
  /** Seconds between the newest change on the local and the committed cursor, when known. */
  readonly lagSeconds?: number;
  readonly lastPassAt?: string;
  readonly lastPassResult?: 'ok' | 'failed';
  readonly quarantineCount: number;
}

export interface QuarantineItem {
  readonly id: string;
  readonly instanceId: string;
  readonly resourceType: string;
  readonly pseudonymousId: string;
  readonly reasonCode: string;
  readonly rulesVersion: string;
  readonly at: string;
}

export interface SyncControl {
  /** Enqueues a pass for one (instance, type). Refuses unregistered instances or types. */
  triggerSync(instanceId: string, resourceType: string, range?: SyncRange): Promise<{ jobId: string }>;
  /** Enqueues a reconciliation of one forward (instance, type) (reconcile.ts). */
  triggerReconcile(instanceId: string, resourceType: string): Promise<{ jobId: string }>;
  /**
   * A push notification for one (instance, type): enqueues an immediate pass, coalesced with
   * any already waiting. The cursor stays the only guarantee: a lost wake-up is caught by the
   * next scheduled pass.
   */
  wake(instanceId: string, resourceType: string): Promise<{ jobId: string }>;
  getJob(jobId: string): Promise<JobInfo | undefined>;
  status(): Promise<TypeStatus[]>;
  listQuarantine(filter?: { instanceId?: string; resourceType?: string }): Promise<QuarantineItem[]>;
  /** Re-enqueues quarantined items (e.g. after a rules fix). */
  retryQuarantine(filter?: {
    instanceId?: string;
    resourceType?: string;
    ids?: readonly string[];
  }): Promise<{ jobId: string }>;
  /** Redis and the global server reachable. */
  ready(): Promise<{ redis: boolean; global: boolean }>;
}
